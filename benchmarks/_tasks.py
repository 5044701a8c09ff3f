"""The tasks facompress's compression defaults are checked on: the embedded default and two small,
fine-grained tasks built from the real Fashion-MNIST images, at other resolutions.

- `default`: all 10 classes, 64 px, 6,000 training images (the CLI's default), the full 10,000-image test split.
- `tops4`: T-shirt/top, pullover, coat, shirt (the classes Fashion-MNIST confuses), 300 images per
  class (train + validation), 48 px; test: all 4,000 test images of those classes.
- `shoes3`: sandal, sneaker, ankle boot, 150 images per class, 80 px; test: all 3,000 of those.

The validation split is the library's own (seeded, stratified, `val_fraction` of each class),
carved from the training images before the per-class limit, so it never overlaps train or test.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fa_compress.data import load_dataset
from fa_compress.data.memory import InMemoryImageDataset


@dataclass(frozen=True)
class Task:
    """A task: which Fashion-MNIST classes, how many images per class, at what size."""

    name: str
    classes: tuple[int, ...] | None  # None: all ten
    per_class: int | None            # training + validation images per class; None: the CLI default
    img_size: int


TASKS = {
    "default": Task("default", None, None, 64),
    "tops4": Task("tops4", (0, 2, 4, 6), 300, 48),
    "shoes3": Task("shoes3", (5, 7, 9), 150, 80),
}


@dataclass(frozen=True)
class TaskData:
    train: InMemoryImageDataset
    val: InMemoryImageDataset
    test: InMemoryImageDataset
    classes: list[str]


def _select(ds: InMemoryImageDataset, classes: tuple[int, ...], per_class: int | None, seed: int,
            flip: bool) -> InMemoryImageDataset:
    """The items of `classes` (relabelled 0..k-1), at most `per_class` of each, seeded."""
    g = torch.Generator().manual_seed(seed)
    keep = []
    for new, old in enumerate(classes):
        idx = (ds.labels == old).nonzero().flatten()  # (n_c,)
        idx = idx[torch.randperm(idx.numel(), generator=g)][:per_class] if per_class else idx
        keep.append(idx)
    order = torch.cat(keep).sort().values  # (N,)
    remap = torch.full((int(ds.labels.max()) + 1,), -1, dtype=torch.long)
    remap[torch.tensor(classes)] = torch.arange(len(classes))
    out = InMemoryImageDataset.__new__(InMemoryImageDataset)
    out.__dict__.update(ds.__dict__)
    out.images, out.labels, out.flip = ds.images[order], remap[ds.labels[order]], flip
    return out


def load_task(task: Task, normalization, seed: int = 0, val_fraction: float = 0.1) -> TaskData:
    """The task's train / validation / test datasets (all in memory)."""
    if task.classes is None:
        b = load_dataset("fashion-mnist", img_size=task.img_size, normalization=normalization,
                         limit_train=6000, limit_test=None, seed=seed, val_fraction=val_fraction)
        return TaskData(b.train, b.val, b.test, list(b.classes))
    b = load_dataset("fashion-mnist", img_size=task.img_size, normalization=normalization,
                     limit_train=None, limit_test=None, seed=seed, val_fraction=val_fraction)
    n_val = max(1, round(task.per_class * val_fraction))
    train = _select(b.train, task.classes, task.per_class - n_val, seed, flip=True)
    val = _select(b.val, task.classes, n_val, seed, flip=False)
    test = _select(b.test, task.classes, None, seed, flip=False)
    return TaskData(train, val, test, [b.classes[c] for c in task.classes])
