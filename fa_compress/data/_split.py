"""The train / validation / test split, made once here for every dataset.

Every choice facompress makes (best fine-tuning phase, keep-or-undo recovery, searches) reads the
validation split; the test split is only reported. The validation split is the dataset's own where
it has one (flowers102's `val`, an image folder's `val/` beside `test/`), else it is carved from the
training pool: seeded, stratified, `val_fraction` of every class, raised to `val_min_per_class` images
of a class where training keeps three quarters of it (`_val_fraction.py` states the rule). The carve
happens before `limit_train` subsets the training images, and the validation split is then cut by the
same share, so `--limit-train N` still trains on N images and validation stays `val_fraction` of
train + val, but no fewer than `val_min_per_class` per class while that stays under a quarter.
The rule's settings are recorded with the split (`Validation`), and a run replays them.

>>> train_idx, val_idx = carve_validation(labels, 0.1, seed=0, classes=["a", "b"])
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from .._seed import derive_seed
from ..errors import ConfigError
from ._subset import balanced_subset
from ._val_fraction import (DEFAULT_VAL_FRACTION, MAX_VAL_FRACTION, MAX_VAL_SHARE, MIN_VAL_PER_CLASS,
                            check_val_fraction, check_val_min_per_class, validation_count, validation_floor)

__all__ = ["DEFAULT_VAL_FRACTION", "MAX_VAL_FRACTION", "MIN_VAL_PER_CLASS", "Pool", "Splits", "Validation",
           "carve_validation", "check_val_fraction", "make_splits"]


View = Callable[[Sequence[int], bool], Dataset]  # (indices, augment) -> dataset of those items


@dataclass(frozen=True)
class Pool:
    """All images of one split before any subset: their labels and how to make a dataset of some."""

    labels: torch.Tensor  # (N,) long
    view: View  # view(indices, augment): training augmentation when `augment`, evaluation transform else


@dataclass(frozen=True)
class Validation:
    """Where the validation split came from, enough to check that a reload gives the same one."""

    source: str  # "carved from the training split" or "the dataset's own validation split"
    fraction: float | None  # share of each class carved (None: the dataset's own split)
    seed: int
    images: int
    fingerprint: str  # sha256 prefix of the chosen indices: equal fingerprints, equal splits
    min_per_class: int = MIN_VAL_PER_CLASS  # the floor's images per class (0: the fraction alone)
    max_share: float = MAX_VAL_SHARE  # the most of a class's train + validation images the floor takes

    def to_dict(self) -> dict[str, object]:
        return {"source": self.source, "fraction": self.fraction, "seed": self.seed, "images": self.images,
                "fingerprint": self.fingerprint, "min_per_class": self.min_per_class,
                "max_share": self.max_share}


@dataclass(frozen=True)
class Splits:
    """The three datasets `load_dataset` hands out, and the record of the validation split."""

    train: Dataset
    val: Dataset
    test: Dataset
    validation: Validation


def carve_validation(labels: Sequence[int] | torch.Tensor, fraction: float, *, seed: int,
                     classes: Sequence[str], min_per_class: int = MIN_VAL_PER_CLASS,
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """(train indices, validation indices), each sorted: `validation_count(n, fraction, min_per_class)`
    of each class's n images (round(fraction * n) where that is at least `min_per_class`).

    A class that would get no validation image, or keep no training image, is a `ConfigError` that
    names it and the fraction that would work.
    """
    check_val_fraction(fraction)
    check_val_min_per_class(min_per_class)
    labels = torch.as_tensor(labels, dtype=torch.long)  # (N,)
    generator = torch.Generator().manual_seed(derive_seed(seed, "validation"))
    train: list[torch.Tensor] = []
    val: list[torch.Tensor] = []
    for label in torch.unique(labels).tolist():
        members = torch.nonzero(labels == label).flatten()  # (n_c,)
        n = members.numel()
        n_val = validation_count(n, fraction, min_per_class)
        if n_val < 1 or n_val >= n:
            name = classes[label] if label < len(classes) else str(label)
            need = "more images" if n < 2 else f"val_fraction {min(MAX_VAL_FRACTION, _smallest_fraction(n))}"
            raise ConfigError(f"val_fraction {fraction} leaves class {name!r} ({n} training images) with "
                              f"{'no validation' if n_val < 1 else 'no training'} image; use {need}")
        order = members[torch.randperm(n, generator=generator)]
        val.append(order[:n_val])
        train.append(order[n_val:])
    return torch.sort(torch.cat(train)).values, torch.sort(torch.cat(val)).values


def _smallest_fraction(n: int) -> float:
    """The smallest fraction (in hundredths) that gives a class of n images one validation image."""
    for hundredths in range(1, 51):
        if round(hundredths / 100 * n) >= 1:
            return hundredths / 100
    return MAX_VAL_FRACTION


def make_splits(train: Pool, test: Pool, own_val: Pool | None, *, classes: Sequence[str], val_fraction: float,
                limit_train: int | None, limit_test: int | None, seed: int,
                val_min_per_class: int = MIN_VAL_PER_CLASS) -> Splits:
    """Carve (or take) the validation split, apply the limits, and build the three datasets."""
    check_val_fraction(val_fraction)
    check_val_min_per_class(val_min_per_class)
    if own_val is None:
        train_idx, val_idx = carve_validation(train.labels, val_fraction, seed=seed, classes=classes,
                                              min_per_class=val_min_per_class)
        val_pool, source, fraction = train, "carved from the training split", val_fraction
    else:
        train_idx, val_idx = torch.arange(train.labels.numel()), torch.arange(own_val.labels.numel())
        val_pool, source, fraction = own_val, "the dataset's own validation split", None
    kept_train = _limited(train_idx, train.labels, limit_train, seed)
    share = kept_train.numel() / max(train_idx.numel(), 1)
    n_classes = torch.unique(val_pool.labels[val_idx]).numel()
    floor = validation_floor(kept_train.numel(), n_classes, val_min_per_class)
    val_limit = max(round(share * val_idx.numel()), floor, n_classes) if share < 1 else None
    kept_val = _limited(val_idx, val_pool.labels, val_limit, derive_seed(seed, "validation limit"))
    _check_every_class_validated(train.labels[kept_train], val_pool.labels[kept_val], classes)
    kept_test = _limited(torch.arange(test.labels.numel()), test.labels, limit_test, seed + 1)
    record = Validation(source, fraction, seed, kept_val.numel(), _fingerprint(kept_val, val_pool.labels),
                        val_min_per_class)
    return Splits(train.view(kept_train.tolist(), True), val_pool.view(kept_val.tolist(), False),
                  test.view(kept_test.tolist(), False), record)


def _limited(indices: torch.Tensor, labels: torch.Tensor, limit: int | None, seed: int) -> torch.Tensor:
    """`indices` cut to a seeded class-balanced `limit` (all of them when None or larger)."""
    keep = balanced_subset(labels[indices], limit, seed)
    return indices if keep is None else indices[keep]


def _check_every_class_validated(train_labels: torch.Tensor, val_labels: torch.Tensor,
                                 classes: Sequence[str]) -> None:
    missing = sorted(set(train_labels.tolist()) - set(val_labels.tolist()))
    if missing:
        names = ", ".join(repr(classes[i]) if i < len(classes) else str(i) for i in missing[:5])
        raise ConfigError(f"the validation split has no image of class {names}; every class needs one to "
                          f"choose on (raise val_fraction or limit_train, or add validation images)")


def _fingerprint(indices: torch.Tensor, pool_labels: torch.Tensor) -> str:
    """A short hash of the pool's size, the chosen indices and their labels."""
    chosen = torch.stack([indices, pool_labels[indices]]).to(torch.int64)  # (2, V)
    digest = hashlib.sha256(f"{pool_labels.numel()}:".encode() + chosen.numpy().tobytes())
    return digest.hexdigest()[:16]
