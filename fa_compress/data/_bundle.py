"""`DatasetBundle`: what `load_dataset` returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch.utils.data import Dataset


@dataclass(frozen=True)
class DatasetBundle:
    """A train and a test split whose items are `(float tensor (3, H, W) normalised, int label)`."""

    name: str  # the spec it was loaded from, e.g. "fashion-mnist" or "imagefolder:/data/birds"
    train: Dataset
    test: Dataset
    classes: list[str]  # label i is classes[i]
    skipped_images: int  # unreadable files left out (image folders only)
    source: str  # where the files came from, for reports

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    def to_json(self) -> dict[str, object]:
        """Summary for run manifests (no tensors)."""
        return {
            "name": self.name,
            "classes": list(self.classes),
            "train_images": len(self.train),
            "test_images": len(self.test),
            "skipped_images": self.skipped_images,
            "source": self.source,
        }
