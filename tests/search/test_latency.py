import pytest

from fa_compress.errors import ConfigError
from fa_compress.gates import insert_gates, iter_gates
from fa_compress.models.complexity import count_macs
from fa_compress.search.latency import UnreachableTarget, backend_measure, search_keep_for_latency
from fa_compress.pruning.pruner import PruneSettings
from tests.conftest import random_gates


@pytest.fixture
def gated(resnet18_10):
    return random_gates(insert_gates(resnet18_10))


def _macs_ms(model):  # a deterministic stand-in for a latency measurement: 1 ms per 10 M MACs
    ms = count_macs(model, 32) / 1e7
    return ms, ms * 1.1


def test_search_finds_largest_keep_meeting_target(gated):
    dense_ms = _macs_ms(gated)[0]
    target = dense_ms * 0.5
    search = search_keep_for_latency(gated, "fc", PruneSettings(round_to=1, gate_score="value"), target_ms=target,
                                     measure=_macs_ms, img_size=32, iterations=5)
    assert search.steps[0].keep == 1.0 and not search.steps[0].meets_target
    assert 0.1 < search.best_keep < 1.0
    meeting = [s for s in search.steps if s.meets_target]
    missing = [s for s in search.steps if not s.meets_target]
    assert max(s.keep for s in meeting) == pytest.approx(search.best_keep, abs=1e-4)
    assert all(s.median_ms <= target for s in meeting) and all(s.median_ms > target for s in missing)
    assert min(s.keep for s in missing) - search.best_keep <= 0.9 / 2 ** 5 + 1e-6  # bisection resolution
    assert all(m.gate.eq(m.gate).all() for _, m in iter_gates(gated))  # the input model is untouched


class _DriftingClock:
    """1 ms per 10 M MACs on a machine that gets 5% slower between one pair of timings (a reference and its
    candidate) and the next: other work starting while the search runs."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, model):
        self.calls += 1
        ms = _macs_ms(model)[0] * 1.05 ** (self.calls // 2)
        return ms, ms * 1.1


def test_speedup_is_judged_against_the_dense_model_timed_beside_each_candidate(gated):
    settings = PruneSettings(round_to=1, gate_score="value")
    steady = search_keep_for_latency(gated, "fc", settings, target_speedup=2, measure=_macs_ms, img_size=32,
                                     iterations=5)
    drifting = search_keep_for_latency(gated, "fc", settings, target_speedup=2, measure=_DriftingClock(),
                                       img_size=32, iterations=5)
    # the drift slows the reference and the candidate alike, so the pairwise verdicts and the keep are the same
    assert [s.meets_target for s in drifting.steps] == [s.meets_target for s in steady.steps]
    assert drifting.best_keep == steady.best_keep and 0.1 < steady.best_keep < 1
    for step in drifting.steps[1:]:  # every candidate has its own reference, timed just before it
        assert step.meets_target == (step.median_ms <= step.reference_ms / 2)
    assert len({s.reference_ms for s in drifting.steps}) == len(drifting.steps)  # timed anew each time
    # against the first reference alone the later, slower candidates would have failed
    first = drifting.steps[0].reference_ms
    assert any(s.meets_target and s.median_ms > first / 2 for s in drifting.steps)
    assert drifting.chosen.reference_ms / drifting.chosen.median_ms >= 2


def test_dense_meeting_target_keeps_everything(gated):
    search = search_keep_for_latency(gated, "fc", PruneSettings(gate_score="value"), target_ms=1e9, measure=_macs_ms, img_size=32)
    assert search.best_keep == 1.0 and len(search.steps) == 1


def test_unreachable_target_reports_fastest_measured(gated):
    with pytest.raises(UnreachableTarget, match=r"fastest measured .* ms at keep 0.1"):
        search_keep_for_latency(gated, "fc", PruneSettings(gate_score="value"), target_ms=1e-6, measure=_macs_ms, img_size=32)


def test_bad_target_and_batch_are_config_errors(gated):
    with pytest.raises(ConfigError):
        search_keep_for_latency(gated, "fc", PruneSettings(gate_score="value"), target_ms=0, measure=_macs_ms, img_size=32)
    with pytest.raises(ConfigError, match="batch_size"):
        backend_measure("ort-cpu", batch_size=0, img_size=32)


def test_real_backend_measures_a_candidate(gated):
    median, p90 = backend_measure("ort-cpu", batch_size=1, img_size=32, warmup=1, runs=3)(
        __import__("fa_compress.gates", fromlist=["fold_gates"]).fold_gates(gated))
    assert 0 < median <= p90
