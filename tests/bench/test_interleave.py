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
    (0, 5, "interleaved", "--warmup"), (1, 0, "interleaved", "--rounds"), (1, 1, "random", "order must be one of"),
])
def test_bad_counts_and_orders_are_user_errors(warmup, rounds, order, match):
    with pytest.raises(ConfigError, match=match):
        check_rounds(warmup, rounds, order)
