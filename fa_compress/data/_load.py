"""`load_dataset`: parse a dataset spec and hand it to the loader that knows it.

Specs: `fashion-mnist`, `fake` / `fake:N`, `imagefolder:PATH`, and the torchvision sets
`flowers102`, `oxford-pets`, `stanford-cars`, `fgvc-aircraft`, `dtd`, `food101`.
The loaders import torch and torchvision, so they are imported only when a spec is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .. import errors
from ..errors import ConfigError
from ._loaded import note_loaded
from ._val_fraction import DEFAULT_VAL_FRACTION, MIN_VAL_PER_CLASS, check_val_fraction, check_val_min_per_class

if TYPE_CHECKING:
    from ..models import Normalization
    from ._bundle import DatasetBundle

# Kept here rather than imported from torchvision_sets so listing names never imports torch.
_TORCHVISION_NAMES = ("dtd", "fgvc-aircraft", "flowers102", "food101", "oxford-pets", "stanford-cars")
_MAX_IMG_SIZE = 1024


def dataset_names() -> list[str]:
    """Accepted dataset specs (`fake:N` and `imagefolder:PATH` take an argument)."""
    return ["fake", "fake:N", "fashion-mnist", "imagefolder:PATH", *_TORCHVISION_NAMES]


def load_dataset(
    spec: str,
    *,
    root: Path | None = None,
    img_size: int = 64,
    normalization: Normalization,
    limit_train: int | None = None,
    limit_test: int | None = None,
    seed: int = 0,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    val_min_per_class: int = MIN_VAL_PER_CLASS,
) -> DatasetBundle:
    """Load dataset `spec` at `img_size` px, normalised for the model that will read it.

    `root` is where downloadable datasets live (and where Fashion-MNIST is looked for first);
    `limit_train` / `limit_test` keep a seeded class-balanced subset. The validation split is the
    dataset's own where it has one, else `val_fraction` of each class carved from the training
    images with `seed`, raised to `val_min_per_class` images of a class where the data allows it (see
    `_val_fraction.py`); the same arguments always give the same three splits.

    >>> from fa_compress.models import get_spec
    >>> bundle = load_dataset("fashion-mnist", normalization=get_spec("resnet18").normalization)
    >>> x, y = bundle.train[0]          # float (3, 64, 64), int in 0..9
    """
    if isinstance(img_size, bool) or not isinstance(img_size, int) or not 8 <= img_size <= _MAX_IMG_SIZE:
        raise ConfigError(f"img_size must be an integer from 8 to {_MAX_IMG_SIZE}, got {img_size!r}")
    root = Path(root).expanduser() if root is not None else None
    check_val_fraction(val_fraction)
    check_val_min_per_class(val_min_per_class)
    bundle = _load(spec, root, (img_size, normalization, limit_train, limit_test, seed, val_fraction,
                                val_min_per_class))
    note_loaded(bundle)
    return bundle


def _load(spec: str, root: Path | None, args: tuple) -> DatasetBundle:
    kind, _, arg = spec.partition(":")
    if spec == "fashion-mnist":
        from .fashion_mnist import load_fashion_mnist

        return load_fashion_mnist(root, *args)
    if kind == "fake":
        from .fake import DEFAULT_CLASSES, load_fake

        return load_fake(_parse_classes(arg) if arg else DEFAULT_CLASSES, *args)
    if kind == "imagefolder":
        if not arg:
            raise ConfigError("imagefolder needs a path: imagefolder:PATH (PATH/<class>/<image>)")
        from .imagefolder import load_imagefolder

        return load_imagefolder(Path(arg), *args)
    if spec in _TORCHVISION_NAMES:
        from .torchvision_sets import load_torchvision_set

        return load_torchvision_set(spec, root, *args)
    raise errors.unknown_name("dataset", spec, dataset_names())


def check_dataset_spec(spec: str) -> None:
    """Refuse, without loading anything, a spec `load_dataset` would refuse by its text alone: an unknown
    name, `fake:N` out of range, `imagefolder:` without a path or with one that is not a folder."""
    kind, _, arg = spec.partition(":")
    if kind == "fake" and arg:
        from .fake import MAX_CLASSES

        if not 2 <= _parse_classes(arg) <= MAX_CLASSES:
            raise ConfigError(f"fake:N needs 2 <= N <= {MAX_CLASSES} classes, got {spec}")
    elif kind == "imagefolder":
        if not arg:
            raise ConfigError("imagefolder needs a path: imagefolder:PATH (PATH/<class>/<image>)")
        if not Path(arg).expanduser().is_dir():
            raise errors.NotFoundError(f"image folder {arg} does not exist")
    elif spec != "fashion-mnist" and spec != "fake" and spec not in _TORCHVISION_NAMES:
        raise errors.unknown_name("dataset", spec, dataset_names())


def _parse_classes(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"fake:N needs a whole number of classes, got fake:{text}") from None

