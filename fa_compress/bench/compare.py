"""Steps timed against each other: each one's latency over interleaved rounds, and its ratio to any other.

The one timing loop behind `facompress bench` (`suite.measure_group`) and the scripts in benchmarks/:
calls per visit sized to ~10 ms (`interleave.calls_per_sample`), warm-up and timed rounds in shuffled
orders (`interleave.time_visits`), each visit counted by its fastest call, and ratios taken per round
with a 95% bootstrap interval (`stats.ratio_stats`).

>>> timings = compare_steps({"dense": dense_step, "pruned": pruned_step}, warmup=5, rounds=30)
>>> timings["pruned"].latency.median_ms
>>> timings["pruned"].ratio_to(timings["dense"])      # RatioStats(median=0.62, low=0.6, high=0.65, ...)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from ..errors import ConfigError
from .interleave import calls_per_sample, check_rounds, time_visits
from .stats import LatencyStats, RatioStats, ratio_stats, summarize


@dataclass(frozen=True)
class StepTiming:
    """One step's latency over the rounds of a `compare_steps` call."""

    latency: LatencyStats  # over rounds, of each visit's fastest call (interference only ever adds time)
    mean_ms: float  # of every timed call, interference included
    calls_per_round: int  # calls timed back to back per visit (short calls are repeated to ~10 ms)
    samples_s: tuple[float, ...]  # per round: the visit's fastest call, in seconds

    def ratio_to(self, reference: StepTiming, *, seed: int = 0) -> RatioStats:
        """This latency / `reference`'s, per round, median and 95% interval (< 1: this one is faster).

        Both must come from the same `compare_steps` call, so that round i of each was timed together.
        """
        return ratio_stats(self.samples_s, reference.samples_s, seed=seed)


def compare_steps(steps: Mapping[str, Callable[[], None]], *, warmup: int, rounds: int,
                  order: str = "interleaved", seed: int = 0, calls: int | None = None,
                  inference: bool = True) -> dict[str, StepTiming]:
    """Time `steps` in the same `rounds` (after `warmup` untimed rounds), each visit `calls` calls long
    (default: enough for the fastest step's visit to last ~10 ms, the same for every step).

    Steps run in `torch.inference_mode()`; `inference=False` for steps that train (backward passes).
    """
    check_rounds(warmup, rounds, order)  # before any step runs
    if calls is not None and calls < 1:
        raise ConfigError(f"calls per visit must be >= 1, got {calls}")
    with torch.inference_mode(inference):
        calls = calls or calls_per_sample(steps)
    visits = time_visits(steps, warmup=warmup, rounds=rounds, calls=calls, order=order, seed=seed,
                         inference=inference)
    timings = {}
    for name, values in visits.items():
        fastest = tuple(min(v) for v in values)
        every_call = [t for v in values for t in v]
        timings[name] = StepTiming(summarize(fastest), round(1e3 * sum(every_call) / len(every_call), 6), calls,
                                   fastest)
    return timings
