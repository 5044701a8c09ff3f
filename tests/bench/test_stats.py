import numpy as np
import pytest

from fa_compress.bench.stats import LatencyStats, quantile, summarize, throughput_ips
from fa_compress.errors import ConfigError


def test_one_to_ten_ms():
    s = summarize([k / 1000 for k in range(10, 0, -1)])  # unsorted on purpose
    assert s == LatencyStats(median_ms=5.5, p90_ms=9.1, mean_ms=5.5, min_ms=1.0, n_runs=10)


def test_odd_count_median_is_middle_sample():
    s = summarize([0.003, 0.001, 0.002])
    assert (s.median_ms, s.min_ms, s.n_runs) == (2.0, 1.0, 3)
    assert s.p90_ms == pytest.approx(2.8)  # position 0.9 * 2 = 1.8 -> 2 + 0.8 * (3 - 2)


def test_single_sample():
    s = summarize([0.0042])
    assert s.median_ms == s.p90_ms == s.mean_ms == s.min_ms == pytest.approx(4.2)


def test_matches_numpy_linear_percentile():
    samples = np.random.default_rng(0).lognormal(size=101) / 1000
    s = summarize(samples.tolist())
    assert s.p90_ms == pytest.approx(np.percentile(samples * 1000, 90), abs=1e-6)
    assert s.median_ms == pytest.approx(np.median(samples * 1000), abs=1e-6)
    assert quantile(sorted([1.0, 2.0]), 0.25) == pytest.approx(1.25)


def test_no_samples_is_a_user_error():
    with pytest.raises(ConfigError, match="at least one"):
        summarize([])


def test_throughput_is_batch_over_median():
    assert throughput_ips(8, 4.0) == pytest.approx(2000.0)


# ---- ratios of paired rounds -------------------------------------------------------------------

from fa_compress.bench.stats import block_length, bootstrap_median_interval, ratio_stats  # noqa: E402


def _machine(rounds: int, seed: int, spread: float) -> np.ndarray:
    """Per-round slow-down of a busy machine: 1x to 3x, the same for every artifact of the round."""
    return 1.0 + 2.0 * np.random.default_rng(seed).random(rounds) * spread


def test_a_constant_ratio_survives_any_machine_load():
    load = _machine(40, seed=0, spread=1.0)
    dense = 0.010 * load  # 10 ms, slowed by the machine
    pruned = 0.006 * load  # 0.6x, slowed alike within each round
    r = ratio_stats(pruned.tolist(), dense.tolist())
    assert (r.median, r.low, r.high) == (pytest.approx(0.6), pytest.approx(0.6), pytest.approx(0.6))
    assert r.n_rounds == 40 and not r.noisy


def test_ratio_interval_holds_the_true_ratio_under_per_call_noise():
    rng = np.random.default_rng(1)
    load = _machine(60, seed=2, spread=1.0)
    dense = 0.010 * load * rng.lognormal(0, 0.03, 60)
    pruned = 0.005 * load * rng.lognormal(0, 0.03, 60)
    r = ratio_stats(pruned.tolist(), dense.tolist(), seed=0)
    assert r.low < 0.5 < r.high
    assert r.median == pytest.approx(0.5, rel=0.03)
    assert not r.noisy and r.half_width_pct < 5
    assert ratio_stats(pruned.tolist(), dense.tolist(), seed=0) == r  # seeded: the same interval again


def test_a_wide_spread_is_flagged_noisy():
    rng = np.random.default_rng(5)
    dense = 0.010 * rng.lognormal(0, 0.5, 30)  # each call hit differently: pairing cannot help
    pruned = 0.008 * rng.lognormal(0, 0.5, 30)
    r = ratio_stats(pruned.tolist(), dense.tolist())
    assert r.noisy and r.half_width_pct > 10
    assert r.low < r.median < r.high


def test_bootstrap_interval_of_a_known_median():
    values = list(range(1, 102))  # median 51
    low, high = bootstrap_median_interval(values, seed=0, block=1)  # sorted rounds: plain bootstrap
    assert low < 51 < high
    assert 40 < low and high < 62  # about median +- 1.96 * 1.2533 * sd / sqrt(n) ~ +-7.2
    with pytest.raises(ValueError, match="paired rounds"):
        ratio_stats([1.0, 2.0], [1.0])


def test_block_bootstrap_widens_the_interval_for_drifting_rounds():
    rng = np.random.default_rng(0)
    drift = np.repeat(rng.normal(0, 0.02, 6), 5)  # the ratio wanders in stretches of 5 rounds
    values = (0.6 + drift + rng.normal(0, 0.002, 30)).tolist()
    plain = bootstrap_median_interval(values, block=1, seed=0)
    blocks = bootstrap_median_interval(values, seed=0)  # default block: from the autocorrelation
    assert blocks[1] - blocks[0] > plain[1] - plain[0]
    assert bootstrap_median_interval([0.5] * 10, block=4) == (0.5, 0.5)
    assert bootstrap_median_interval([1.0, 2.0, 3.0], block=10)[0] >= 1.0  # a block longer than the data: whole


def _ar1(phi: float, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.zeros(n)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + rng.normal()
    return x


def test_block_length_follows_the_autocorrelation():
    rng = np.random.default_rng(1)
    lengths = lambda phi: sorted(block_length(_ar1(phi, 200, seed=s)) for s in range(7))  # noqa: E731
    assert lengths(0.0)[3] <= 3  # independent rounds: (almost) a plain bootstrap, median of 7 series
    assert 10 <= lengths(0.9)[3] <= 200 // 3  # rounds alike for ~10 in a row (theory: ~30)
    assert lengths(0.3)[3] < lengths(0.9)[3]
    assert block_length(rng.normal(0, 1, 3)) == 1 and block_length([0.5] * 50) == 1  # too short / no variance
    # the drifting series' interval widens with the chosen blocks, over a plain bootstrap
    drift = (0.6 + 0.05 * _ar1(0.9, 60, seed=3)).tolist()
    width = lambda iv: iv[1] - iv[0]  # noqa: E731
    assert width(bootstrap_median_interval(drift, seed=0)) > width(bootstrap_median_interval(drift, block=1, seed=0))


def test_session_intervals_resample_the_loads():
    from fa_compress.bench.stats import session_ratio_stats

    rng = np.random.default_rng(4)
    dense = [(0.010 * (1 + rng.normal(0, 0.005, 20))).tolist() for _ in range(4)]
    offsets = (1.0, 1.08, 0.93, 1.02)  # each load of the pruned file keeps its own speed
    pruned = [(0.006 * o * (1 + rng.normal(0, 0.005, 20))).tolist() for o in offsets]
    both = session_ratio_stats(pruned, dense, seed=0)
    first = ratio_stats(pruned[0], dense[0], seed=0)  # one load: tight, and off for the other loads
    assert (both.sessions, both.n_rounds) == (4, 80)
    assert both.low < 0.6 * 0.93 * 1.01 and both.high > 0.6 * 1.08 * 0.99  # spans the loads' own ratios
    assert both.high - both.low > 5 * (first.high - first.low)
    assert session_ratio_stats([pruned[0]], [dense[0]], seed=0) == first  # one session: the plain statistics
    with pytest.raises(ValueError, match="sessions differ"):
        session_ratio_stats(pruned, dense[:3])


def test_t_quantiles_match_the_tables():
    from fa_compress.bench.stats import t_quantile

    assert t_quantile(0.95, 2) == 4.303 and t_quantile(0.95, 4) == 2.776
    assert abs(t_quantile(0.95, 30) - 2.042) < 0.005 and abs(t_quantile(0.90, 20) - 1.725) < 0.005
    assert abs(t_quantile(0.95, 10_000) - 1.960) < 0.001
