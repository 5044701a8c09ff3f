"""`DatasetBundle`: what `load_dataset` returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ._skipped import SkippedImages

if TYPE_CHECKING:
    from torch.utils.data import Dataset

    from ._split import Validation


@dataclass(frozen=True)
class DatasetBundle:
    """Train, validation and test splits whose items are `(float tensor (3, H, W) normalised, int label)`.

    `val` is what every choice reads (best phase, keep-or-undo, searches); `test` is only reported.
    """

    name: str  # the spec it was loaded from, e.g. "fashion-mnist" or "imagefolder:/data/birds"
    train: Dataset
    val: Dataset
    test: Dataset
    classes: list[str]  # label i is classes[i]
    source: str  # where the files came from, for reports
    validation: Validation  # where the validation split came from, and its fingerprint
    skipped: SkippedImages = field(default_factory=SkippedImages)  # files left out (image folders only)

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    @property
    def skipped_images(self) -> int:
        """Number of unreadable files left out."""
        return self.skipped.total

    def sizes(self) -> str:
        """`train 6000, validation 667, test 2000 images`."""
        return f"train {len(self.train)}, validation {len(self.val)}, test {len(self.test)} images"

    def to_json(self) -> dict[str, object]:
        """Summary for run manifests (no tensors)."""
        return {
            "name": self.name,
            "classes": list(self.classes),
            "train_images": len(self.train),
            "val_images": len(self.val),
            "test_images": len(self.test),
            "validation": self.validation.to_dict(),
            "skipped_images": self.skipped_images,
            "skipped": self.skipped.to_dict(),
            "source": self.source,
        }
