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
