"""fa_compress.accuracy: Wilson intervals and McNemar's exact test on counts with known answers."""

import math

import pytest

from fa_compress.accuracy import Accuracy, compare_paired, mcnemar_p, wilson_interval


@pytest.mark.parametrize("correct, n, low, high", [
    (870, 1000, 0.847732, 0.889436),   # centre 0.868581, half-width 0.020849 (by hand, z = 1.959964)
    (0, 10, 0.0, 0.277533),            # upper bound z^2 / (n + z^2) when nothing is right
    (10, 10, 0.722467, 1.0),           # and its mirror
    (50, 100, 0.403832, 0.596168),     # symmetric around 1/2
])
def test_wilson_interval_on_known_counts(correct, n, low, high):
    lo, hi = wilson_interval(correct, n)
    assert (lo, hi) == (pytest.approx(low, abs=1e-6), pytest.approx(high, abs=1e-6))


def test_wilson_interval_narrows_as_n_grows_and_holds_the_estimate():
    widths = []
    for n in (100, 1000, 10000):
        lo, hi = wilson_interval(int(0.87 * n), n)
        assert lo < 0.87 < hi
        widths.append(hi - lo)
    assert widths[0] > widths[1] > widths[2]
    assert widths[1] / widths[2] == pytest.approx(math.sqrt(10), rel=0.02)  # width ~ 1/sqrt(n)


def test_accuracy_of_counts_and_its_format():
    a = Accuracy.of(correct=870, n=1000)
    assert (a.value, a.correct, a.n) == (0.87, 870, 1000)
    assert a.format() == "87.00% [84.77, 88.94] (n=1000)"
    assert Accuracy.of(0, 0).value == 0.0 and wilson_interval(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize("only_a, only_b, p", [
    (0, 0, 1.0),                 # never disagree
    (5, 5, 1.0),                 # balanced disagreement
    (0, 6, 2 * 0.5 ** 6),        # 0.03125: all six discordant images favour B
    (1, 9, 2 * 11 / 1024),       # 2 * P(X <= 1), X ~ Bin(10, 1/2) = 0.021484375
    (3, 4, 1.0),                 # two-sided tail capped at 1
])
def test_mcnemar_exact_p_on_known_counts(only_a, only_b, p):
    assert mcnemar_p(only_a, only_b) == pytest.approx(p, abs=1e-12)
    assert mcnemar_p(only_b, only_a) == pytest.approx(p, abs=1e-12)  # symmetric


def test_mcnemar_handles_tens_of_thousands_of_images():
    assert mcnemar_p(10_000, 10_000) == pytest.approx(1.0)
    assert mcnemar_p(9_000, 11_000) < 1e-40


def test_paired_comparison_counts_only_the_discordant_images():
    a = [True] * 90 + [False] * 10            # 90 right
    b = [True] * 80 + [False] * 10 + [True] * 10   # 90 right too, on different images
    same = compare_paired(a, b)
    assert (same.only_a, same.only_b, same.n, same.diff) == (10, 10, 100, 0.0)
    assert same.p_value == 1.0 and not same.significant  # within noise
    worse = [True] * 80 + [False] * 20        # B: a subset of A's right answers
    c = compare_paired(a, worse)
    assert (c.only_a, c.only_b) == (10, 0) and c.diff == pytest.approx(0.10)
    assert c.p_value == pytest.approx(2 * 0.5 ** 10) and c.significant
    with pytest.raises(ValueError, match="same images"):
        compare_paired([True], [True, False])
