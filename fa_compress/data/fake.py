"""A small synthetic dataset with a learnable class signal, for tests and smoke runs.

Each class has its own colour and its own horizontal-stripe frequency; every image adds a random
stripe phase, a random brightness shift and pixel noise. Colour alone separates the classes
after global pooling, so a tiny CNN learns it in a few hundred steps; the noise keeps it from
being solved at initialisation. Horizontal stripes survive the training split's horizontal flip.
"""

from __future__ import annotations

import functools
import math

import torch

from ..errors import ConfigError
from ..models import Normalization
from ._bundle import DatasetBundle
from ._split import DEFAULT_VAL_FRACTION, MIN_VAL_PER_CLASS, Pool, check_val_fraction, make_splits
from ._subset import check_limit
from .memory import InMemoryImageDataset

DEFAULT_CLASSES = 10
DEFAULT_TRAIN = 512
DEFAULT_TEST = 256
MAX_CLASSES = 1000
_NOISE_STD = 0.12  # pixel noise, in [0, 1] intensity units
_BRIGHTNESS_STD = 0.08  # per-image brightness shift


def load_fake(
    num_classes: int,
    img_size: int,
    normalization: Normalization,
    limit_train: int | None,
    limit_test: int | None,
    seed: int,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    val_min_per_class: int = MIN_VAL_PER_CLASS,
) -> DatasetBundle:
    """`num_classes` synthetic classes: 512 train / 256 test images, or as many as the limits say,
    and a validation split generated alike, `val_fraction` of train + validation (its own split)."""
    if not 2 <= num_classes <= MAX_CLASSES:
        raise ConfigError(f"fake:N needs 2 <= N <= {MAX_CLASSES} classes, got {num_classes}")
    check_val_fraction(val_fraction)
    for limit in (limit_train, limit_test):
        check_limit(limit)
    generator = torch.Generator().manual_seed(seed)
    colours = 0.2 + 0.6 * torch.rand(num_classes, 3, generator=generator)  # (K, 3) in [0.2, 0.8]
    # stripe frequencies, cycles per image height: 1, 2, ..., spread over the classes
    frequencies = 1.0 + torch.randperm(num_classes, generator=generator).float() % 8  # (K,)
    n_train = DEFAULT_TRAIN if limit_train is None else limit_train  # generated data: a limit sets the size
    n_test = DEFAULT_TEST if limit_test is None else limit_test
    n_val = max(num_classes, round(n_train * val_fraction / (1 - val_fraction)))
    pools = {}
    for split, count in (("train", n_train), ("test", n_test), ("val", n_val)):
        labels = torch.arange(count) % num_classes  # (N,) balanced
        labels = labels[torch.randperm(count, generator=generator)]
        images = _render(labels, colours, frequencies, img_size, generator)
        pools[split] = Pool(labels, functools.partial(_view, images, labels, normalization))
    classes = [f"class_{i}" for i in range(num_classes)]
    splits = make_splits(pools["train"], pools["test"], pools["val"], classes=classes, val_fraction=val_fraction,
                         limit_train=None, limit_test=None, seed=seed,
                         val_min_per_class=val_min_per_class)
    return DatasetBundle(f"fake:{num_classes}", splits.train, splits.val, splits.test, classes,
                         f"synthetic, seed {seed}", splits.validation)


def _view(images: torch.Tensor, labels: torch.Tensor, normalization: Normalization, indices: list[int],
          augment: bool) -> InMemoryImageDataset:
    keep = torch.tensor(indices, dtype=torch.long)
    return InMemoryImageDataset(images[keep], labels[keep], normalization, flip=augment)


def _render(
    labels: torch.Tensor, colours: torch.Tensor, frequencies: torch.Tensor, size: int, generator: torch.Generator
) -> torch.Tensor:
    """uint8 (N, 3, size, size) images of the given labels."""
    n = labels.numel()
    rows = torch.linspace(0.0, 1.0, size).view(1, 1, size, 1)  # (1, 1, S, 1)
    phase = 2 * math.pi * torch.rand(n, 1, 1, 1, generator=generator)  # (N, 1, 1, 1)
    freq = frequencies[labels].view(n, 1, 1, 1)  # (N,) -> (N, 1, 1, 1)
    stripes = 0.15 * torch.sin(2 * math.pi * freq * rows + phase)  # (N, 1, S, 1)
    base = colours[labels].view(n, 3, 1, 1)  # (N, 3) -> (N, 3, 1, 1)
    brightness = _BRIGHTNESS_STD * torch.randn(n, 1, 1, 1, generator=generator)  # (N, 1, 1, 1)
    noise = _NOISE_STD * torch.randn(n, 3, size, size, generator=generator)  # (N, 3, S, S)
    images = base + stripes + brightness + noise  # (N, 3, S, S) by broadcasting
    return (images.clamp(0.0, 1.0) * 255).round().to(torch.uint8)
