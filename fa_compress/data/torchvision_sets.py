"""Fine-grained transfer-learning benchmarks through `torchvision.datasets`.

torchvision downloads them into `root` on first use (download=True) and reads the files from
there afterwards; offline, with nothing there, the download fails and we say what to do instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Subset

from ..errors import InternalError, NotFoundError
from ..models import Normalization
from ._bundle import DatasetBundle
from ._split import DEFAULT_VAL_FRACTION, MIN_VAL_PER_CLASS, Pool, make_splits
from .transforms import eval_transform, train_transform

DEFAULT_ROOT = Path.home() / ".cache" / "facompress" / "datasets"


@dataclass(frozen=True)
class TorchvisionSet:
    """How to build one torchvision dataset's train and test splits."""

    class_name: str  # attribute of torchvision.datasets
    train_split: str
    test_split: str
    val_split: str | None = None  # the dataset's own validation split; None: carve one from train
    downloadable: bool = True  # False: torchvision can no longer download it


TORCHVISION_SETS = {
    "flowers102": TorchvisionSet("Flowers102", "train", "test", val_split="val"),
    "oxford-pets": TorchvisionSet("OxfordIIITPet", "trainval", "test"),
    "stanford-cars": TorchvisionSet("StanfordCars", "train", "test", downloadable=False),
    "fgvc-aircraft": TorchvisionSet("FGVCAircraft", "train", "test", val_split="val"),
    "dtd": TorchvisionSet("DTD", "train", "test", val_split="val"),
    "food101": TorchvisionSet("Food101", "train", "test"),
}


def load_torchvision_set(
    name: str,
    root: Path | None,
    img_size: int,
    normalization: Normalization,
    limit_train: int | None,
    limit_test: int | None,
    seed: int,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    val_min_per_class: int = MIN_VAL_PER_CLASS,
) -> DatasetBundle:
    """One of `TORCHVISION_SETS`, downloaded into `root` (default ~/.cache/facompress/datasets); the
    dataset's own validation split where it has one, else one carved from the training split."""
    spec = TORCHVISION_SETS[name]
    root = Path(root).expanduser() if root is not None else DEFAULT_ROOT
    transforms = {True: train_transform(img_size, normalization), False: eval_transform(img_size, normalization)}
    opened: dict[tuple[str, bool], Dataset] = {}

    def open_split(split: str, augment: bool) -> Dataset:
        if (split, augment) not in opened:
            opened[split, augment] = _open(name, spec, root, split, transforms[augment])
        return opened[split, augment]

    def pool(split: str) -> Pool:
        labels = torch.tensor(_labels(open_split(split, split == spec.train_split)), dtype=torch.long)  # (N,)
        return Pool(labels, lambda indices, augment: Subset(open_split(split, augment), list(indices)))

    train, test = pool(spec.train_split), pool(spec.test_split)
    val = pool(spec.val_split) if spec.val_split else None
    test_part = open_split(spec.test_split, False)
    classes = [str(c) for c in getattr(test_part, "classes", None) or
               [f"class_{i}" for i in range(_num_classes(test_part))]]
    splits = make_splits(train, test, val, classes=classes, val_fraction=val_fraction, limit_train=limit_train,
                         limit_test=limit_test, seed=seed,
                         val_min_per_class=val_min_per_class)
    return DatasetBundle(name, splits.train, splits.val, splits.test, classes,
                         f"torchvision {spec.class_name} in {root}", splits.validation)


def _open(name: str, spec: TorchvisionSet, root: Path, split: str, transform: Any) -> Dataset:
    import torchvision

    constructor = getattr(torchvision.datasets, spec.class_name)
    try:
        root.mkdir(parents=True, exist_ok=True)
        return constructor(str(root), split=split, transform=transform, download=spec.downloadable)
    except (OSError, RuntimeError, ValueError) as exc:  # offline: URLError; absent files: RuntimeError
        reason = str(exc).strip().split("\n")[-1]
        how = "needs internet once (torchvision downloads it)" if spec.downloadable else "cannot be downloaded any more"
        raise NotFoundError(
            f"dataset {name} is not in {root} and {how}: {type(exc).__name__}: {reason}. Put a copy "
            f"under the folder given as data_root, or use fashion-mnist (offline on Debian: "
            f"apt-get install dataset-fashion-mnist) or imagefolder:PATH with your own images"
        ) from exc


def _labels(dataset: Dataset) -> list[int]:
    if hasattr(dataset, "_labels"):
        return [int(x) for x in dataset._labels]
    if hasattr(dataset, "_samples"):  # StanfordCars keeps (path, label) pairs
        return [int(label) for _, label in dataset._samples]
    raise InternalError(f"cannot read the labels of {type(dataset).__name__} from this torchvision version")


def _num_classes(dataset: Dataset) -> int:
    return max(_labels(dataset)) + 1
