"""Accuracy with its uncertainty: Wilson intervals for one model, McNemar's exact test for two.

Every accuracy facompress reports carries the number of images and a 95% interval; two models
scored on the same images are compared with a paired test on the images where they disagree.

>>> a = Accuracy.of(correct=870, n=1000)
>>> round(a.low, 4), round(a.high, 4)
(0.8477, 0.8894)
>>> a.format()
'87.00% [84.77, 88.94] (n=1000)'
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

Z95 = 1.959963984540054  # two-sided 95% quantile of the standard normal


def wilson_interval(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion `correct / n` (0, 1 when n is 0)."""
    if n <= 0:
        return 0.0, 1.0
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar_p(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts: images only model A got right
    (`only_a`) and images only model B got right (`only_b`). 1.0 when they never disagree."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    # P(X <= k) for X ~ Binomial(n, 1/2), summed in log space so n in the tens of thousands is fine
    log_half_n = -n * math.log(2)
    tail = sum(math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + log_half_n)
               for i in range(k + 1))
    return min(1.0, 2 * tail)


@dataclass(frozen=True)
class Accuracy:
    """Top-1 accuracy over `n` images with its 95% Wilson interval (fractions in [0, 1])."""

    value: float
    correct: int
    n: int
    low: float
    high: float

    @classmethod
    def of(cls, correct: int, n: int) -> Accuracy:
        """The accuracy of `correct` right answers out of `n`."""
        low, high = wilson_interval(correct, n)
        return cls(correct / n if n else 0.0, int(correct), int(n), low, high)

    def format(self) -> str:
        """`87.00% [84.79, 88.88] (n=1000)`: percent, interval in points, number of images."""
        return f"{100 * self.value:.2f}% [{100 * self.low:.2f}, {100 * self.high:.2f}] (n={self.n})"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PairedComparison:
    """Two models on the same images: the accuracy difference and whether it is within noise."""

    diff: float          # accuracy of A minus accuracy of B, as a fraction
    only_a: int          # images A got right and B got wrong
    only_b: int
    n: int
    p_value: float       # exact McNemar, two-sided
    significant: bool    # p < 0.05: outside noise

    def to_dict(self) -> dict:
        return asdict(self)


def compare_paired(correct_a, correct_b, alpha: float = 0.05) -> PairedComparison:
    """Compare per-image correctness vectors (bool sequences or tensors of equal length)."""
    a = [bool(v) for v in correct_a]
    b = [bool(v) for v in correct_b]
    if len(a) != len(b):
        raise ValueError(f"paired comparison needs the same images (got {len(a)} and {len(b)})")
    only_a = sum(x and not y for x, y in zip(a, b))
    only_b = sum(y and not x for x, y in zip(a, b))
    p = mcnemar_p(only_a, only_b)
    n = len(a)
    return PairedComparison((only_a - only_b) / n if n else 0.0, only_a, only_b, n, p, p < alpha)
