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

`compare.compare_steps` puts these together (calls per visit, latency statistics, ratios per round):
what `facompress bench` and the scripts in benchmarks/ time with.
"""

from __future__ import annotations

import functools
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

import torch

from ..errors import ConfigError

ORDERS = ("interleaved", "sequential")
MIN_SAMPLE_S = 0.010  # a timed sample shorter than ~10 ms is mostly scheduler noise on a busy machine
MAX_CALLS = 50
T = TypeVar("T")


def check_rounds(warmup: int, rounds: int, order: str = "interleaved") -> None:
    """`ConfigError` for a warm-up or round count below 1, or an unknown order."""
    if warmup < 1:
        raise ConfigError(f"warmup (untimed rounds before timing) must be >= 1, got {warmup}")
    if rounds < 1:
        raise ConfigError(f"rounds (timed runs of each artifact) must be >= 1, got {rounds}")
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


def _visit(step: Callable[[], None], calls: int) -> tuple[float, ...]:
    return tuple(_timed(step) for _ in range(calls))


def run_rounds(measures: Mapping[str, Callable[[], T]], *, warmup: int, rounds: int, order: str = "interleaved",
               seed: int = 0) -> dict[str, list[T]]:
    """What each measure returns, `rounds` times, every measure called once per round.

    interleaved: `warmup` untimed rounds, then `rounds` rounds, each in the order `round_orders` gives
    (result i of every measure comes from round i: pair them for ratios). sequential: each measure's
    warm-up and timed calls, then the next measure's. The measures time themselves (`time_visits`'
    visits, or a training phase reporting its own images/s); nothing here enters inference mode.

    >>> rates = run_rounds({"contiguous": lambda: epoch("contiguous"), "channels_last": lambda: epoch("channels_last")},
    ...                    warmup=1, rounds=4)
    """
    check_rounds(warmup, rounds, order)
    results: dict[str, list[T]] = {name: [] for name in measures}
    if order == "sequential":
        for name, measure in measures.items():
            for _ in range(warmup):
                measure()
            results[name] = [measure() for _ in range(rounds)]
        return results
    for round_names in round_orders(list(measures), warmup, seed=seed + 1_000_003):
        for name in round_names:
            measures[name]()
    for round_names in round_orders(list(measures), rounds, seed=seed):
        for name in round_names:
            results[name].append(measures[name]())
    return results


def time_visits(steps: Mapping[str, Callable[[], None]], *, warmup: int, rounds: int, calls: int = 1,
                order: str = "interleaved", seed: int = 0,
                inference: bool = True) -> dict[str, list[tuple[float, ...]]]:
    """Seconds of each call, grouped by visit: `rounds` visits of each step, `calls` timed calls per visit,
    in the rounds of `run_rounds` (warm-up visits untimed).

    Steps run in `torch.inference_mode()`; `inference=False` for steps that train (backward passes).
    """
    visits = {name: functools.partial(_visit, step, calls) for name, step in steps.items()}
    with torch.inference_mode(inference):
        return run_rounds(visits, warmup=warmup, rounds=rounds, order=order, seed=seed)


def time_steps(steps: Mapping[str, Callable[[], None]], *, warmup: int, rounds: int,
               order: str = "interleaved", seed: int = 0) -> dict[str, list[float]]:
    """Seconds per call of each step: `rounds` timed calls of each after `warmup` untimed ones (one call
    per visit of `time_visits`)."""
    visits = time_visits(steps, warmup=warmup, rounds=rounds, order=order, seed=seed)
    return {name: [v[0] for v in values] for name, values in visits.items()}
