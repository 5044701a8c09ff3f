"""What the prune stage measured: sizes, and validation + test accuracy at each step.

Validation accuracy decides (keep the recovery or undo it); test accuracy is only reported, with its
image count and 95% interval, and the saved model is compared with the dense one image by image.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..accuracy import Accuracy, PairedComparison, compare_paired
from ..selection import Decision, prefer
from ..train.evaluate import Evaluation


@dataclass(frozen=True)
class Scores:
    """One model scored on the validation split (to choose on) and the test split (to report)."""

    val: Evaluation
    test: Evaluation


def recovery_decision(cut: Scores, recovered: Scores) -> Decision:
    """The recovery was asked for, so the recovered model is the designed one: it is kept unless the
    model right after the cut is better on the same validation images beyond noise (`selection.prefer`).
    The test split is never read here."""
    return prefer(recovered.val.correct, cut.val.correct)


def keep_recovery(cut: Scores, recovered: Scores | None) -> bool:
    """Whether to keep the recovered model (`recovery_decision`); False when no recovery ran."""
    return recovered is not None and recovery_decision(cut, recovered).keep_designed


def paired_vs_dense(dense: Scores, final: Scores) -> PairedComparison:
    """The saved model against the dense one on the same test images (McNemar)."""
    return compare_paired(final.test.correct.tolist(), dense.test.correct.tolist())


@dataclass(frozen=True)
class PruneResult:
    """Sizes and accuracies before and after, with the per-layer channel counts.

    `acc_*` are test accuracies (reported, never chosen on); `val_*` the validation ones that chose.
    """

    params_before: int
    params_after: int
    macs_before: int
    macs_after: int
    size_mb_before: float
    size_mb_after: float
    acc_before: float
    acc_pruned: float
    acc_recovered: float | None
    keep: float
    prune_s: float
    recover_s: float
    channels_before: dict[str, int]
    channels_after: dict[str, int]
    kept: str = "recovered"  # or "pruned": recovery scored lower on the validation split, so it was undone
    val_before: Accuracy | None = None
    val_pruned: Accuracy | None = None
    val_recovered: Accuracy | None = None
    test_before: Accuracy | None = None
    test_pruned: Accuracy | None = None
    test_recovered: Accuracy | None = None
    vs_dense: PairedComparison | None = None  # saved model minus dense, on the same test images
    seed: int | None = None  # what recovery, scoring and searches were seeded from
    fade: dict | None = None  # the steps that faded the planned cut out before it, and their rule (pruning/fade.py)
    recovery: dict | None = None  # the recovery's steps and their rule (None: no recovery ran)
    depth: dict | None = None  # the saved model's validation drop from dense, and whether it is too deep (depth.py)
    teacher_s: float = 0.0  # the distillation teacher's forward passes (0: no distillation)
    selection: dict | None = None  # the rule that kept or undid the recovery, and its counts (`recovery_decision`)

    @property
    def acc_final(self) -> float:
        """The test accuracy of the model that was saved."""
        return self.acc_recovered if self.kept == "recovered" and self.acc_recovered is not None else self.acc_pruned

    @property
    def val_final(self) -> Accuracy | None:
        """The validation accuracy of the model that was saved."""
        return self.val_recovered if self.kept == "recovered" and self.val_recovered is not None else self.val_pruned

    @property
    def test_final(self) -> Accuracy | None:
        """The test accuracy, with interval, of the model that was saved."""
        return self.test_recovered if self.kept == "recovered" and self.test_recovered is not None else self.test_pruned

    def to_dict(self) -> dict:
        final = self.val_final
        return {**asdict(self), "acc_final": self.acc_final, "val_acc_final": final.value if final else None,
                "selected_on": "validation"}
