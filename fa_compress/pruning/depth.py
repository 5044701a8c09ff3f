"""Was the cut too deep? The saved model's validation accuracy against the dense model's, after the
keep-or-undo decision: flagged when it lost more than `TOO_DEEP_POINTS` *and* the loss is beyond the
noise of the validation split (the selection rule's exact McNemar test on the same images,
`fa_compress.selection`), so a drop of a few images on a small split does not raise the alarm
(docs/decisions/step-budgets.md). Only the validation split is read.

>>> check = DepthCheck.of(dense_correct, final_correct)   # (N,) bool each: the same validation images
>>> check.too_deep, check.val_drop_points, check.p_value
(True, 18.0, 3.8e-06)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..accuracy import compare_paired
from ..selection import ALPHA

TOO_DEEP_POINTS = 5.0  # validation points below dense that flag the cut as too deep (if beyond noise)


@dataclass(frozen=True)
class DepthCheck:
    """The saved model's validation accuracy against the dense one's (fractions in [0, 1]), and the exact
    McNemar p-value of the difference on the same images (None: no per-image results, the points decide)."""

    dense_val: float
    final_val: float
    threshold_points: float = TOO_DEEP_POINTS
    p_value: float | None = None
    alpha: float = ALPHA

    @classmethod
    def of(cls, dense_correct: Sequence[bool] | Any, final_correct: Sequence[bool] | Any) -> DepthCheck:
        """The check from per-image validation results (bool sequences or tensors of equal length)."""
        pair = compare_paired(final_correct, dense_correct)
        n = max(pair.n, 1)
        return cls(dense_val=sum(bool(v) for v in dense_correct) / n,
                   final_val=sum(bool(v) for v in final_correct) / n, p_value=pair.p_value)

    @property
    def val_drop_points(self) -> float:
        """Percentage points the cut lost on validation (negative: it gained)."""
        return round(100 * (self.dense_val - self.final_val), 2)

    @property
    def beyond_noise(self) -> bool:
        return self.p_value is None or self.p_value < self.alpha

    @property
    def too_deep(self) -> bool:
        return self.val_drop_points > self.threshold_points and self.beyond_noise

    def to_dict(self) -> dict:
        return {"too_deep": self.too_deep, "val_drop_points": self.val_drop_points,
                "threshold_points": self.threshold_points, "p_value": self.p_value, "alpha": self.alpha,
                "dense_val": self.dense_val, "final_val": self.final_val}
