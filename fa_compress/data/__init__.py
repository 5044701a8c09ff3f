"""Datasets as `(normalised float (3, H, W), label)` items, and fast loaders over them.

>>> from fa_compress.data import load_dataset, make_loader
>>> from fa_compress.models import get_spec
>>> bundle = load_dataset("fashion-mnist", img_size=64, normalization=get_spec("resnet18").normalization)
>>> loader = make_loader(bundle.train, batch_size=64, shuffle=True, seed=0)

Importing this package loads no torch; loading a dataset does.
"""

from __future__ import annotations

from ._bundle import DatasetBundle
from ._load import dataset_names, load_dataset
from .loader import is_in_memory, make_loader

__all__ = ["DatasetBundle", "dataset_names", "is_in_memory", "load_dataset", "make_loader"]
