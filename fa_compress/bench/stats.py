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

    `median` is the median of the per-round ratios; [`low`, `high`] its 95% moving-block bootstrap interval over rounds,
    in blocks of `block` rounds.
    """

    median: float
    low: float
    high: float
    n_rounds: int
    noisy: bool  # the interval is wider than +-NOISY_HALF_WIDTH of the median
    block: int = 1  # rounds per resampled block (`block_length`: longer while neighbouring rounds are alike)

    @property
    def half_width_pct(self) -> float:
        """Half the interval's width, in percent of the median."""
        return 100.0 * (self.high - self.low) / 2 / self.median if self.median > 0 else math.inf


def block_length(values: Sequence[float]) -> int:
    """The moving-block bootstrap's block length for a series of rounds, chosen from the data by
    Politis & White's rule (2004, as corrected by Patton, Politis & White 2009) for the circular and
    moving-block bootstrap: blocks as long as the rounds stay correlated, 1 for independent rounds.

    The correlation is read off the sample autocorrelation up to the first lag m after which K_N
    (at least 5) lags in a row fall below 2 * sqrt(log10(n) / n); a flat-top kernel over 2m lags then
    weighs the autocovariances: b = (2 G^2 / D)^(1/3) n^(1/3), G = sum lambda(k/M) |k| R(k),
    D = 4/3 (sum lambda(k/M) R(k))^2. Capped at n / 3, so a resample still mixes three blocks.
    """
    import numpy as np

    x = np.asarray(values, dtype=np.float64)
    n = x.size
    if n < 4:
        return 1
    x = x - x.mean()
    var = float(x @ x) / n
    if var <= 0:
        return 1
    k_n = max(5, math.ceil(math.sqrt(math.log10(n))))
    max_lag = min(n - 1, math.ceil(math.sqrt(n)) + k_n)
    acov = np.array([float(x[: n - k] @ x[k:]) / n for k in range(max_lag + 1)])  # R(0..max_lag)
    rho = np.abs(acov / var)
    threshold = 2.0 * math.sqrt(math.log10(n) / n)
    m = next((m for m in range(max_lag - k_n + 1) if np.all(rho[m + 1 : m + 1 + k_n] < threshold)), max_lag)
    if m == 0:  # no lag stands out from noise: independent rounds
        return 1
    lags = min(2 * m, max_lag)
    k = np.arange(-lags, lags + 1)
    t = np.abs(k) / lags
    flat_top = np.where(t <= 0.5, 1.0, 2.0 * (1.0 - t))  # 1 to M/2, then linearly down to 0 at M
    r = acov[np.abs(k)]
    g = float(np.sum(flat_top * np.abs(k) * r))
    d = 4.0 / 3.0 * float(np.sum(flat_top * r)) ** 2
    if d <= 0 or g == 0:
        return 1
    b = (2.0 * g * g / d) ** (1 / 3) * n ** (1 / 3)
    return int(max(1, min(math.ceil(b), n // 3)))


def bootstrap_median_interval(values: Sequence[float], *, confidence: float = 0.95, resamples: int = 2000,
                              seed: int = 0, block: int | None = None) -> tuple[float, float]:
    """Percentile-bootstrap interval of the median of `values`, resampled (seeded) in moving blocks of
    `block` consecutive rounds (default: `block_length(values)`, from their autocorrelation; 1 = plain bootstrap).

    Rounds are a time series: a machine's load drifts over seconds, so neighbouring rounds are alike.
    Resampling whole blocks keeps that drift in the interval, which a round-by-round bootstrap narrows away.
    """
    import numpy as np

    data = np.asarray(values, dtype=np.float64)
    n = data.size
    if n == 0:
        raise ConfigError("no rounds to build an interval from; use --rounds >= 1")
    size = max(1, min(n, block if block is not None else block_length(data)))
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
    block = block_length(ratios)
    low, high = bootstrap_median_interval(ratios, confidence=confidence, resamples=resamples, seed=seed, block=block)
    r = lambda v: round(v, 6)  # noqa: E731
    noisy = mid <= 0 or (high - low) / 2 > NOISY_HALF_WIDTH * mid
    return RatioStats(median=r(mid), low=r(low), high=r(high), n_rounds=len(ratios), noisy=noisy, block=block)
