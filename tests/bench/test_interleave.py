"""Interleaved timing: every artifact in every round, seeded shuffles, the sequential mode kept."""

import pytest

from fa_compress.bench.interleave import check_rounds, round_orders, time_steps
from fa_compress.errors import ConfigError

NAMES = ["dense", "pruned", "int8", "fp16"]


def test_every_artifact_runs_once_in_every_round():
    orders = round_orders(NAMES, 50, seed=3)
    assert len(orders) == 50
    assert all(sorted(order) == sorted(NAMES) for order in orders)


def test_orders_are_shuffled_per_round_and_repeat_with_the_seed():
    orders = round_orders(NAMES, 50, seed=3)
    assert round_orders(NAMES, 50, seed=3) == orders
    assert round_orders(NAMES, 50, seed=4) != orders
    assert len({tuple(o) for o in orders}) > 5  # not one fixed order
    firsts = {o[0] for o in orders}
    assert firsts == set(NAMES)  # every artifact gets to go first (and so, last) in some round


def _recording_steps(calls):
    return {name: (lambda name=name: calls.append(name)) for name in NAMES}


def test_time_steps_interleaves_warmup_and_timed_rounds():
    calls: list[str] = []
    samples = time_steps(_recording_steps(calls), warmup=2, rounds=5, seed=0)
    assert {k: len(v) for k, v in samples.items()} == {n: 5 for n in NAMES}
    assert all(t >= 0 for v in samples.values() for t in v)
    rounds = [calls[i:i + len(NAMES)] for i in range(0, len(calls), len(NAMES))]
    assert len(rounds) == 2 + 5
    assert all(sorted(r) == sorted(NAMES) for r in rounds)  # each round: every artifact once
    assert rounds[2:] == round_orders(NAMES, 5, seed=0)  # the timed rounds follow the seeded orders


def test_sequential_order_runs_each_artifact_to_the_end_first():
    calls: list[str] = []
    samples = time_steps(_recording_steps(calls), warmup=1, rounds=3, order="sequential")
    assert calls == [n for n in NAMES for _ in range(1 + 3)]
    assert all(len(v) == 3 for v in samples.values())


@pytest.mark.parametrize("warmup, rounds, order, match", [
    (0, 5, "interleaved", "warmup"), (1, 0, "interleaved", "rounds"), (1, 1, "random", "order must be one of"),
])
def test_bad_counts_and_orders_are_user_errors(warmup, rounds, order, match):
    with pytest.raises(ConfigError, match=match):
        check_rounds(warmup, rounds, order)


def test_each_visit_times_several_calls_and_keeps_them_apart():
    from fa_compress.bench.interleave import calls_per_sample, time_visits

    calls: list[str] = []
    visits = time_visits(_recording_steps(calls), warmup=1, rounds=4, calls=3, seed=1)
    assert {k: [len(v) for v in vs] for k, vs in visits.items()} == {n: [3] * 4 for n in NAMES}
    timed = calls[len(NAMES) * 3:]  # after one warm-up round of 3 calls each
    blocks = [timed[i:i + 3] for i in range(0, len(timed), 3)]
    assert all(len(set(b)) == 1 for b in blocks)  # a visit's calls run back to back
    assert [b[0] for b in blocks] == [n for order in round_orders(NAMES, 4, seed=1) for n in order]
    # a step of ~0 s asks for the most calls per visit; a slow one for a single call
    assert calls_per_sample({"fast": lambda: None}) == 50
    import time
    assert calls_per_sample({"slow": lambda: time.sleep(0.012)}) == 1
