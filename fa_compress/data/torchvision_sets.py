"""Fine-grained transfer-learning benchmarks through `torchvision.datasets`.

torchvision downloads them into `root` on first use (download=True) and reads the files from
there afterwards; offline, with nothing there, the download fails and we say what to do instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils.data import ConcatDataset, Dataset, Subset

from ..errors import InternalError, NotFoundError
from ..models import Normalization
from ._bundle import DatasetBundle
from ._subset import balanced_subset
from .transforms import eval_transform, train_transform

DEFAULT_ROOT = Path.home() / ".cache" / "facompress" / "datasets"


@dataclass(frozen=True)
class TorchvisionSet:
    """How to build one torchvision dataset's train and test splits."""

    class_name: str  # attribute of torchvision.datasets
    train_splits: tuple[str, ...]  # concatenated into the training split
    test_split: str
    downloadable: bool = True  # False: torchvision can no longer download it


TORCHVISION_SETS = {
    "flowers102": TorchvisionSet("Flowers102", ("train", "val"), "test"),
    "oxford-pets": TorchvisionSet("OxfordIIITPet", ("trainval",), "test"),
    "stanford-cars": TorchvisionSet("StanfordCars", ("train",), "test", downloadable=False),
    "fgvc-aircraft": TorchvisionSet("FGVCAircraft", ("trainval",), "test"),
    "dtd": TorchvisionSet("DTD", ("train", "val"), "test"),
    "food101": TorchvisionSet("Food101", ("train",), "test"),
}


def load_torchvision_set(
    name: str,
    root: Path | None,
    img_size: int,
    normalization: Normalization,
    limit_train: int | None,
    limit_test: int | None,
    seed: int,
) -> DatasetBundle:
    """One of `TORCHVISION_SETS`, downloaded into `root` (default ~/.cache/facompress/datasets)."""
    spec = TORCHVISION_SETS[name]
    root = Path(root).expanduser() if root is not None else DEFAULT_ROOT
    train_parts = [_open(name, spec, root, s, train_transform(img_size, normalization)) for s in spec.train_splits]
    test_part = _open(name, spec, root, spec.test_split, eval_transform(img_size, normalization))
    classes = getattr(test_part, "classes", None) or [f"class_{i}" for i in range(_num_classes(test_part))]
    train = _limited(train_parts, limit_train, seed)
    test = _limited([test_part], limit_test, seed + 1)
    return DatasetBundle(name, train, test, [str(c) for c in classes], 0, f"torchvision {spec.class_name} in {root}")


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
            f"under the folder given as --data-root, or use fashion-mnist (offline on Debian: "
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


def _limited(parts: list[Dataset], limit: int | None, seed: int) -> Dataset:
    dataset = parts[0] if len(parts) == 1 else ConcatDataset(parts)
    if limit is None:
        return dataset
    keep = balanced_subset([y for part in parts for y in _labels(part)], limit, seed)
    return dataset if keep is None else Subset(dataset, keep.tolist())
