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
        raise ConfigError("no latency samples to summarise; use at least one timed run (runs >= 1)")
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
    in blocks of `block` rounds (over several `sessions`, also over the loads: `session_ratio_stats`).
    """

    median: float
    low: float
    high: float
    n_rounds: int
    noisy: bool  # the interval is wider than +-NOISY_HALF_WIDTH of the median
    block: int = 1  # rounds per resampled block (`block_length`: longer while neighbouring rounds are alike)
    sessions: int = 1  # independent loads of each artifact the rounds were spread over (`session_ratio_stats`)

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


def _block_resamples(data, size: int, resamples: int, rng):
    """(R, n) moving-block resamples of the (n,) series `data`: blocks of `size` consecutive rounds,
    each block's first round drawn by `rng`, cut back to n rounds."""
    import numpy as np

    n = data.size
    starts = rng.integers(0, n - size + 1, size=(resamples, -(-n // size)))  # (R, blocks) first round of each
    picks = (starts[:, :, None] + np.arange(size)).reshape(resamples, -1)[:, :n]  # (R, blocks, size) -> (R, n)
    return data[picks]


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
        raise ConfigError("no rounds to build an interval from; use rounds >= 1")
    size = max(1, min(n, block if block is not None else block_length(data)))
    rng = np.random.default_rng(seed)
    medians = np.median(_block_resamples(data, size, resamples, rng), axis=1)  # (R, n) -> (R,)
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
        raise ConfigError("no rounds to compare; use rounds >= 1")
    mid = quantile(sorted(ratios), 0.5)
    block = block_length(ratios)
    low, high = bootstrap_median_interval(ratios, confidence=confidence, resamples=resamples, seed=seed, block=block)
    r = lambda v: round(float(v), 6)  # noqa: E731
    noisy = bool(mid <= 0 or (high - low) / 2 > NOISY_HALF_WIDTH * mid)
    return RatioStats(median=r(mid), low=r(low), high=r(high), n_rounds=len(ratios), noisy=noisy, block=block)


_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228)  # Student t, df 1..10


def t_quantile(confidence: float, df: int) -> float:
    """The two-sided Student-t critical value (e.g. 4.303 at 95% with 2 degrees of freedom): from a
    table at 95% for df <= 10, else the normal quantile's Cornish-Fisher expansion (within 0.5% there)."""
    from statistics import NormalDist

    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if abs(confidence - 0.95) < 1e-12 and df <= len(_T975):
        return _T975[df - 1]
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    return (z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)
            + (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / (384 * df ** 3))


def session_ratio_stats(samples_s: Sequence[Sequence[float]], reference_s: Sequence[Sequence[float]], *,
                        seed: int = 0, confidence: float = 0.95, resamples: int = 2000) -> RatioStats:
    """Ratios of an artifact over a reference loaded `K` times each (independent sessions, all timed in
    the same rounds): session k's round i is paired with the reference's session k, round i.

    The median is over every session's ratios. A loaded session keeps its own speed for its whole life
    (memory placement, which cores its threads land on): two loads of the same file differ by several
    percent, and rounds within one session cannot show it. The interval is the wider of two:
    a two-stage (clustered) bootstrap, K sessions drawn with replacement, then each drawn session's
    rounds in moving blocks (`block_length`); and a Student-t interval over the K sessions' own median
    ratios around the median (a bootstrap over 3-5 sessions alone is too narrow: it cannot know how
    little 3 sessions say). With one session this is `ratio_stats`.
    """
    import numpy as np

    if len(samples_s) != len(reference_s) or not samples_s:
        raise ValueError(f"sessions differ in number: {len(samples_s)} vs {len(reference_s)}")
    if len(samples_s) == 1:
        return ratio_stats(samples_s[0], reference_s[0], seed=seed, confidence=confidence, resamples=resamples)
    per_session = []
    for a, b in zip(samples_s, reference_s):
        if len(a) != len(b):
            raise ValueError(f"paired rounds differ in length: {len(a)} vs {len(b)}")
        per_session.append([x / y for x, y in zip(a, b) if y > 0])
    n = min(len(r) for r in per_session)
    if n == 0:
        raise ConfigError("no rounds to compare; use rounds >= 1")
    data = np.asarray([r[:n] for r in per_session], dtype=np.float64)  # (K, n)
    k = data.shape[0]
    rng = np.random.default_rng(seed)
    blocks = [max(1, min(n, block_length(row))) for row in data]
    drawn = np.empty((k, resamples, n))  # (K, R, n): each session's rounds, block-resampled R times
    for i, (row, size) in enumerate(zip(data, blocks)):
        drawn[i] = _block_resamples(row, size, resamples, rng)
    which = rng.integers(0, k, size=(resamples, k))  # (R, K) sessions drawn with replacement
    pooled = drawn[which, np.arange(resamples)[:, None]]  # (R, K, n)
    medians = np.median(pooled.reshape(resamples, -1), axis=1)  # (R,)
    tail = (1.0 - confidence) / 2
    low, high = np.quantile(medians, [tail, 1.0 - tail])
    mid = float(np.median(data))
    own = np.median(data, axis=1)  # (K,) each session's median ratio
    half = t_quantile(confidence, k - 1) * float(np.std(own, ddof=1)) / math.sqrt(k)
    low, high = min(low, mid - half), max(high, mid + half)
    r = lambda v: round(float(v), 6)  # noqa: E731
    noisy = bool(mid <= 0 or (high - low) / 2 > NOISY_HALF_WIDTH * mid)
    return RatioStats(median=r(mid), low=r(low), high=r(high), n_rounds=k * n, noisy=noisy,
                      block=int(np.median(blocks)), sessions=k)
