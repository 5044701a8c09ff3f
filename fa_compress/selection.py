"""The one rule every validation choice follows: keep the model a schedule was designed to reach,
unless the other one is better on the same validation images by more than their noise.

"Better by more than noise" is McNemar's exact test on the images the two models disagree on
(`accuracy.compare_paired`): the other model must be right on more of them, with a two-sided
p-value below `alpha`. The margin therefore scales with the validation split: on 30 images one
image (3.3 points) never flips a choice, while on 6,000 images a clear lead of a few tenths of a
point does. Ties and differences within noise keep the designed model.

Who calls it, and what "designed" means there:
- fine-tuning (`train/loop.py`): each new phase against the phase kept so far (a schedule is
  written to end on its last phase);
- pruning (`pruning/result.py::keep_recovery`): the recovered model against the model right after
  the cut (a recovery that was asked for is kept unless it clearly hurt).

>>> d = prefer(designed=[True, False, True, False], other=[True, True, True, False])
>>> d.keep_designed, d.other_right_only, d.designed_right_only
(True, 1, 0)
>>> d.to_dict()["rule"]
'paired-mcnemar'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .accuracy import compare_paired

RULE = "paired-mcnemar"
ALPHA = 0.05  # two-sided; the other model must also be the one ahead, so one-sided 0.025
RULE_TEXT = (f"keep the designed model unless the other is right on more of the validation images they "
             f"disagree on, with exact McNemar p < {ALPHA}")

Correctness = Sequence[bool] | Any  # (N,) bool list or tensor: which validation images a model got right


@dataclass(frozen=True)
class Decision:
    """Which of two models on the same validation images was kept, and why."""

    keep_designed: bool
    images: int                 # validation images both were scored on (0: no paired data)
    designed_right_only: int    # images only the designed model got right
    other_right_only: int       # images only the other model got right
    p_value: float              # exact McNemar, two-sided (1.0 without paired data)
    alpha: float = ALPHA
    rule: str = RULE

    @property
    def reason(self) -> str:
        """One line: what decided."""
        if self.images == 0:
            return "kept the designed model: no per-image validation results to compare with"
        lead = f"of {self.images} validation images, {self.other_right_only} right only for the other and " \
               f"{self.designed_right_only} only for the designed model, p={self.p_value:.3g}"
        if self.keep_designed:
            return f"kept the designed model: the other is not better beyond noise ({lead})"
        return f"kept the other model: better beyond noise ({lead})"

    def to_dict(self) -> dict:
        return {"rule": self.rule, "alpha": self.alpha, "kept": "designed" if self.keep_designed else "other",
                "images": self.images, "designed_right_only": self.designed_right_only,
                "other_right_only": self.other_right_only, "p_value": self.p_value, "reason": self.reason}

    @classmethod
    def from_dict(cls, d: dict) -> Decision:
        """The inverse of `to_dict` (`kept` and `reason` follow from the rest)."""
        return cls(d["kept"] == "designed", d["images"], d["designed_right_only"], d["other_right_only"],
                   d["p_value"], d["alpha"], d["rule"])


def prefer(designed: Correctness, other: Correctness | None, *, alpha: float = ALPHA) -> Decision:
    """Keep `designed` unless `other` got significantly more of the same images right.

    Both are per-image correctness vectors over the same validation images in the same order
    (`train.evaluate.Evaluation.correct`); `other` None (nothing recorded to compare with) keeps
    `designed`. Vectors of different lengths are an internal error (`ValueError`).
    """
    if other is None:
        return Decision(True, 0, 0, 0, 1.0, alpha)
    paired = compare_paired(_as_list(other), _as_list(designed), alpha=alpha)  # other minus designed
    better = paired.significant and paired.only_a > paired.only_b
    return Decision(not better, paired.n, paired.only_b, paired.only_a, paired.p_value, alpha)


def _as_list(correct: Correctness) -> list[bool]:
    """A bool list from a list or a (N,) tensor (its `tolist`, without importing torch here)."""
    return [bool(v) for v in (correct.tolist() if hasattr(correct, "tolist") else correct)]
