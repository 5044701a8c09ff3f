"""Was the cut too deep? The saved model's validation accuracy against the dense model's, after the
keep-or-undo decision; a drop of more than `TOO_DEEP_POINTS` is flagged (docs/decisions/step-budgets.md).
Only the validation split is read.

>>> check = DepthCheck(dense_val=0.80, final_val=0.62)
>>> check.too_deep, check.val_drop_points
(True, 18.0)
"""

from __future__ import annotations

from dataclasses import dataclass

TOO_DEEP_POINTS = 5.0  # validation points below dense that flag the cut as too deep


@dataclass(frozen=True)
class DepthCheck:
    """The saved model's validation accuracy against the dense one's (fractions in [0, 1])."""

    dense_val: float
    final_val: float
    threshold_points: float = TOO_DEEP_POINTS

    @property
    def val_drop_points(self) -> float:
        """Percentage points the cut lost on validation (negative: it gained)."""
        return round(100 * (self.dense_val - self.final_val), 2)

    @property
    def too_deep(self) -> bool:
        return self.val_drop_points > self.threshold_points

    def to_dict(self) -> dict:
        return {"too_deep": self.too_deep, "val_drop_points": self.val_drop_points,
                "threshold_points": self.threshold_points, "dense_val": self.dense_val, "final_val": self.final_val}

