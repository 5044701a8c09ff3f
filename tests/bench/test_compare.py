"""`compare_steps`: latency per step and per-round ratios, in the same rounds; `run_rounds` for self-timed measures."""

import pytest
import torch

from fa_compress.bench.compare import compare_steps
from fa_compress.bench.interleave import round_orders, run_rounds
from fa_compress.errors import ConfigError


class _Clock:
    """A fake `perf_counter`. Each call of a step advances it by the step's cost times the load of its round
    (two steps, one call per visit: visits 2r and 2r+1 make round r; round 0 is the warm-up)."""

    def __init__(self, loads: list[float]) -> None:
        self.now, self.visits, self.loads = 0.0, 0, loads

    def __call__(self) -> float:
        return self.now

    def step(self, cost_s: float):
        def run() -> None:
            self.now += cost_s * self.loads[self.visits // 2]
            self.visits += 1
        return run


def test_per_round_ratios_cancel_a_load_that_hits_both_steps(monkeypatch):
    """A step costing twice another, timed while the load changes from round to round: the latencies
    spread with the load, the per-round ratio is exactly 2 with a zero-width interval."""
    from fa_compress.bench import interleave

    clock = _Clock([1.0, 1.0, 3.0, 1.5, 5.0, 1.0, 2.0])
    monkeypatch.setattr(interleave.time, "perf_counter", clock)
    timings = compare_steps({"slow": clock.step(0.024), "fast": clock.step(0.012)}, warmup=1, rounds=6, calls=1)
    slow, fast = timings["slow"], timings["fast"]
    assert slow.samples_s == pytest.approx((0.024, 0.072, 0.036, 0.12, 0.024, 0.048))
    assert (slow.calls_per_round, slow.latency.n_runs) == (1, 6)
    assert slow.latency.median_ms == pytest.approx(42.0) and slow.mean_ms == pytest.approx(54.0)
    ratio = slow.ratio_to(fast)
    assert (ratio.median, ratio.low, ratio.high, ratio.n_rounds, ratio.noisy) == (2.0, 2.0, 2.0, 6, False)
    assert fast.ratio_to(slow).median == 0.5


def test_short_steps_are_visited_for_several_calls_and_the_mean_keeps_every_call():
    calls: list[str] = []
    timings = compare_steps({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, warmup=1, rounds=2,
                            calls=5)
    assert timings["a"].calls_per_round == 5
    assert calls.count("a") == 5 * (1 + 2)  # one warm-up round and two timed ones, 5 calls per visit
    assert timings["a"].mean_ms >= timings["a"].latency.min_ms


def test_steps_run_in_inference_mode_unless_they_train():
    modes: list[bool] = []
    step = lambda: modes.append(torch.is_inference_mode_enabled())  # noqa: E731
    compare_steps({"x": step}, warmup=1, rounds=2, calls=1)
    assert modes and all(modes)
    modes.clear()
    w = torch.ones(3, requires_grad=True)

    def train_step() -> None:
        modes.append(torch.is_inference_mode_enabled())
        (w * 2).sum().backward()  # fails inside inference mode

    compare_steps({"train": train_step}, warmup=1, rounds=2, calls=1, inference=False)
    assert modes and not any(modes) and w.grad is not None


def test_bad_counts_fail_before_any_step_runs():
    calls: list[str] = []
    with pytest.raises(ConfigError, match="rounds"):
        compare_steps({"a": lambda: calls.append("a")}, warmup=1, rounds=0)
    with pytest.raises(ConfigError, match="calls per visit"):
        compare_steps({"a": lambda: calls.append("a")}, warmup=1, rounds=1, calls=0)
    assert calls == []


def test_run_rounds_collects_what_each_measure_returns_in_the_seeded_orders():
    order: list[str] = []

    def measure(name: str):
        def run() -> str:
            order.append(name)
            return f"{name}{len(order)}"
        return run

    names = ["a", "b", "c"]
    results = run_rounds({n: measure(n) for n in names}, warmup=1, rounds=4, seed=2)
    assert {k: len(v) for k, v in results.items()} == {n: 4 for n in names}
    assert order[3:] == [n for r in round_orders(names, 4, seed=2) for n in r]  # after the warm-up round
    assert results["a"][0] == f"a{order.index('a', 3) + 1}"  # what the measure returned, not a time
