"""Latency statistics: median, p90, mean and min of many timed runs.

p90 uses linear interpolation between the two nearest ranks (numpy's default `method="linear"`):
for sorted samples x[0..n-1] the q-quantile sits at position q*(n-1), so [1..10] ms gives p90 9.1 ms.

>>> summarize([0.001 * k for k in range(1, 11)]).p90_ms
9.1
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ConfigError


@dataclass(frozen=True)
class LatencyStats:
    """Latency of one inference call, over `n_runs` timed runs (warm-up excluded)."""

    median_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float
    n_runs: int


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """The q-quantile (0 <= q <= 1) of already sorted values, by linear interpolation."""
    if not sorted_values:
        raise ValueError("quantile of an empty sequence")
    pos = q * (len(sorted_values) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    frac = pos - lo
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac


def summarize(samples_s: Sequence[float]) -> LatencyStats:
    """Statistics (in milliseconds, rounded to 1 ns) of latencies measured in seconds."""
    if not samples_s:
        raise ConfigError("no latency samples to summarise; use at least one timed run (--runs >= 1)")
    ms = sorted(s * 1e3 for s in samples_s)
    r = lambda v: round(v, 6)  # noqa: E731 - 1 ns resolution hides float noise like 9.100000000000001
    return LatencyStats(median_ms=r(quantile(ms, 0.5)), p90_ms=r(quantile(ms, 0.9)),
                        mean_ms=r(sum(ms) / len(ms)), min_ms=r(ms[0]), n_runs=len(ms))


def throughput_ips(batch_size: int, median_ms: float) -> float:
    """Images per second at the median latency of a batch."""
    return batch_size / (median_ms / 1e3) if median_ms > 0 else math.inf
