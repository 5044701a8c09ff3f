"""How large the validation split is: `--val-fraction` of each class, raised where that gives a class too
few images to choose on. No torch here: the CLI checks these before loading anything.

The rule (why these numbers: docs/decisions/validation-split.md and docs/decisions/selection-rule.md):
- carved from a class of n training images: max(round(val_fraction * n), min(MIN_VAL_PER_CLASS,
  floor(MAX_VAL_SHARE * n))), so training keeps at least three quarters of every class;
- next to a `limit_train` subset of N images (validation then comes from images training does not use):
  at least min(MIN_VAL_PER_CLASS * classes, the MAX_VAL_SHARE of N + validation), never more than was carved.
On large datasets the fraction is the larger term and the floor changes nothing.

>>> validation_count(30, 0.1, MIN_VAL_PER_CLASS), validation_count(6000, 0.1, MIN_VAL_PER_CLASS)
(7, 600)
>>> validation_floor(300, 10, MIN_VAL_PER_CLASS)
100
"""

from __future__ import annotations

import math

from ..errors import ConfigError

DEFAULT_VAL_FRACTION = 0.1
MAX_VAL_FRACTION = 0.5
MIN_VAL_PER_CLASS = 20  # 10 classes: 200 images, where one image moves accuracy by 0.5 points
MAX_VAL_SHARE = 0.25    # the floor takes at most this share of a class's train + validation images


def check_val_fraction(fraction: float) -> None:
    """`ConfigError` unless `fraction` lies in (0, MAX_VAL_FRACTION]."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= MAX_VAL_FRACTION:
        raise ConfigError(f"val_fraction must be in (0, {MAX_VAL_FRACTION}] (got {fraction!r}); "
                          f"e.g. {DEFAULT_VAL_FRACTION} holds out {DEFAULT_VAL_FRACTION:.0%} of each class")


def check_val_min_per_class(count: int) -> None:
    """`ConfigError` unless `count` is a whole number >= 0 (0: the fraction alone sizes the split)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ConfigError(f"val_min_per_class must be a whole number >= 0 (got {count!r}); "
                          f"e.g. {MIN_VAL_PER_CLASS}, or 0 for val_fraction alone")


def validation_count(n: int, fraction: float, min_per_class: int) -> int:
    """Validation images carved from a class of `n`: the fraction, raised towards `min_per_class` as far
    as training keeps (1 - MAX_VAL_SHARE) of the class."""
    return max(round(fraction * n), min(min_per_class, math.floor(MAX_VAL_SHARE * n)))


def validation_floor(train_images: int, classes: int, min_per_class: int) -> int:
    """The fewest validation images beside `train_images` training images (a `limit_train` subset):
    `min_per_class` of each class, but no more than MAX_VAL_SHARE of train + validation."""
    most = math.floor(train_images * MAX_VAL_SHARE / (1 - MAX_VAL_SHARE) + 1e-9)  # share s: val <= s/(1-s) * train
    return min(min_per_class * classes, most)
