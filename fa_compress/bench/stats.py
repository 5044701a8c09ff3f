"""Latency statistics: median, p90, mean and min of many timed runs; ratios of paired rounds with intervals.

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


# ---- ratios of two artifacts timed in the same rounds ---------------------------------------------

NOISY_HALF_WIDTH = 0.10  # an interval wider than +-10% of its ratio is reported as "noisy", not as a figure


@dataclass(frozen=True)
class RatioStats:
    """Latency of an artifact over a reference's (`this / reference`: < 1 is faster), per paired round.

    `median` is the median of the per-round ratios; [`low`, `high`] its 95% moving-block bootstrap interval over rounds.
    """

    median: float
    low: float
    high: float
    n_rounds: int
    noisy: bool  # the interval is wider than +-NOISY_HALF_WIDTH of the median

    @property
    def half_width_pct(self) -> float:
        """Half the interval's width, in percent of the median."""
        return 100.0 * (self.high - self.low) / 2 / self.median if self.median > 0 else math.inf


def bootstrap_median_interval(values: Sequence[float], *, confidence: float = 0.95, resamples: int = 2000,
                              seed: int = 0, block: int | None = None) -> tuple[float, float]:
    """Percentile-bootstrap interval of the median of `values`, resampled (seeded) in moving blocks of
    `block` consecutive rounds (default: about the cube root of their number; 1 = plain bootstrap).

    Rounds are a time series: a machine's load drifts over seconds, so neighbouring rounds are alike.
    Resampling whole blocks keeps that drift in the interval, which a round-by-round bootstrap narrows away.
    """
    import numpy as np

    data = np.asarray(values, dtype=np.float64)
    n = data.size
    if n == 0:
        raise ConfigError("no rounds to build an interval from; use --rounds >= 1")
    size = max(1, min(n, block if block is not None else round(n ** (1 / 3))))
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n - size + 1, size=(resamples, -(-n // size)))  # (R, blocks) first round of each
    picks = (starts[:, :, None] + np.arange(size)).reshape(resamples, -1)[:, :n]  # (R, blocks, size) -> (R, n)
    medians = np.median(data[picks], axis=1)  # (R, n) -> (R,)
    tail = (1.0 - confidence) / 2
    low, high = np.quantile(medians, [tail, 1.0 - tail])
    return float(low), float(high)


def ratio_stats(samples_s: Sequence[float], reference_s: Sequence[float], *, seed: int = 0,
                confidence: float = 0.95, resamples: int = 2000) -> RatioStats:
    """Per-round ratios `samples_s[i] / reference_s[i]` (both timed in round i), their median and interval."""
    if len(samples_s) != len(reference_s):
        raise ValueError(f"paired rounds differ in length: {len(samples_s)} vs {len(reference_s)}")
    ratios = [a / b for a, b in zip(samples_s, reference_s) if b > 0]
    if not ratios:
        raise ConfigError("no rounds to compare; use --rounds >= 1")
    mid = quantile(sorted(ratios), 0.5)
    low, high = bootstrap_median_interval(ratios, confidence=confidence, resamples=resamples, seed=seed)
    r = lambda v: round(v, 6)  # noqa: E731
    noisy = mid <= 0 or (high - low) / 2 > NOISY_HALF_WIDTH * mid
    return RatioStats(median=r(mid), low=r(low), high=r(high), n_rounds=len(ratios), noisy=noisy)
