"""Timing several artifacts against each other: interleaved rounds (default) or one after the other.

On a shared machine the load changes from second to second. Timed one after the other, artifact A
may meet a quiet phase and B a busy one, and their ratio measures the machine, not the models.
Interleaved, every round times each artifact once, in a freshly shuffled (seeded) order, so slow
phases hit every artifact alike, and the ratio of two artifacts is taken per round.

>>> samples = time_steps({"dense": dense_step, "pruned": pruned_step}, warmup=5, rounds=30)
>>> ratio_stats(samples["pruned"], samples["dense"]).median      # pruned / dense latency, < 1 is faster

A call much shorter than the scheduler's time slice is mostly noise on a busy machine: `facompress
bench` visits each artifact for several calls per round (`calls_per_sample`, ~10 ms a visit) and
takes each visit's fastest call for the ratio (being descheduled only ever adds time) and the mean
of its calls for the latency.

`order="sequential"` keeps the old way (all warm-up and timed runs of A, then of B, ...), for
comparison: `benchmarks/bench_stability.py` measures both on a loaded machine.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping, Sequence

import torch

from ..errors import ConfigError

ORDERS = ("interleaved", "sequential")
MIN_SAMPLE_S = 0.010  # a timed sample shorter than ~10 ms is mostly scheduler noise on a busy machine
MAX_CALLS = 50


def check_rounds(warmup: int, rounds: int, order: str = "interleaved") -> None:
    """`ConfigError` for a warm-up or round count below 1, or an unknown order."""
    if warmup < 1:
        raise ConfigError(f"--warmup (untimed rounds before timing) must be >= 1, got {warmup}")
    if rounds < 1:
        raise ConfigError(f"--rounds (timed runs of each artifact) must be >= 1, got {rounds}")
    if order not in ORDERS:
        raise ConfigError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")


def round_orders(names: Sequence[str], rounds: int, *, seed: int = 0) -> list[list[str]]:
    """The order of `names` in each of `rounds` interleaved rounds: every name once per round, the
    order shuffled per round by a generator seeded with `seed` (the same seed, the same orders)."""
    rng = random.Random(seed)
    orders = []
    for _ in range(rounds):
        order = list(names)
        rng.shuffle(order)
        orders.append(order)
    return orders


def calls_per_sample(steps: Mapping[str, Callable[[], None]], min_sample_s: float = MIN_SAMPLE_S) -> int:
    """How many calls one visit should hold so the fastest step's visit lasts `min_sample_s` (1 for
    steps that are slow enough already, at most `MAX_CALLS`); each step is timed 3 times to find out."""
    fastest = min(min(_timed(step) for _ in range(3)) for step in steps.values())
    return max(1, min(MAX_CALLS, math.ceil(min_sample_s / max(fastest, 1e-6))))


def repeated(step: Callable[[], None], calls: int) -> Callable[[], None]:
    """A step that runs `step` `calls` times (time it, then divide by `calls`)."""
    if calls == 1:
        return step

    def run() -> None:
        for _ in range(calls):
            step()

    return run


def _timed(step: Callable[[], None]) -> float:
    start = time.perf_counter()
    step()  # each step ends synchronised (host outputs, or an explicit device sync)
    return time.perf_counter() - start


def time_visits(steps: Mapping[str, Callable[[], None]], *, warmup: int, rounds: int, calls: int = 1,
                order: str = "interleaved", seed: int = 0) -> dict[str, list[tuple[float, ...]]]:
    """Seconds of each call, grouped by visit: `rounds` visits of each step, `calls` timed calls per visit.

    interleaved: `warmup` untimed rounds, then `rounds` timed rounds, each visiting every step once in
    the order `round_orders` gives; visit i of every step comes from round i (pair them for ratios).
    sequential: each step's warm-up and timed visits, then the next step's.
    """
    check_rounds(warmup, rounds, order)
    visit = lambda step: tuple(_timed(step) for _ in range(calls))  # noqa: E731
    samples: dict[str, list[tuple[float, ...]]] = {name: [] for name in steps}
    with torch.inference_mode():
        if order == "sequential":
            for name, step in steps.items():
                for _ in range(warmup * calls):
                    step()
                samples[name] = [visit(step) for _ in range(rounds)]
            return samples
        for round_names in round_orders(list(steps), warmup, seed=seed + 1_000_003):
            for name in round_names:
                for _ in range(calls):
                    steps[name]()
        for round_names in round_orders(list(steps), rounds, seed=seed):
            for name in round_names:
                samples[name].append(visit(steps[name]))
    return samples


def time_steps(steps: Mapping[str, Callable[[], None]], *, warmup: int, rounds: int,
               order: str = "interleaved", seed: int = 0) -> dict[str, list[float]]:
    """Seconds per call of each step: `rounds` timed calls of each after `warmup` untimed ones (one call
    per visit of `time_visits`)."""
    visits = time_visits(steps, warmup=warmup, rounds=rounds, order=order, seed=seed)
    return {name: [v[0] for v in values] for name, values in visits.items()}
