"""Datasets as `(normalised float (3, H, W), label)` items, and fast loaders over them.

>>> from fa_compress.data import load_dataset, make_loader
>>> from fa_compress.models import get_spec
>>> bundle = load_dataset("fashion-mnist", img_size=64, normalization=get_spec("resnet18").normalization)
>>> loader = make_loader(bundle.train, batch_size=64, shuffle=True, seed=0)
>>> len(bundle.val)   # validation: what every choice reads; bundle.test is only reported

Importing this package loads no torch; loading a dataset does.
"""

from __future__ import annotations

from ._bundle import DatasetBundle
from ._load import check_dataset_spec, dataset_names, load_dataset
from ._loaded import collect_loaded, loaded_summary
from ._val_fraction import (DEFAULT_VAL_FRACTION, MAX_VAL_FRACTION, MIN_VAL_PER_CLASS, check_val_fraction,
                            check_val_min_per_class)
from .of_run import check_same_validation, dataset_of_run
from .img_size import DeclaredSize, ImgSizeChoice, choose_img_size, declared_img_size
from .loader import is_in_memory, make_loader

__all__ = ["DEFAULT_VAL_FRACTION", "MAX_VAL_FRACTION", "MIN_VAL_PER_CLASS", "DatasetBundle", "DeclaredSize",
           "ImgSizeChoice", "check_dataset_spec", "check_same_validation", "check_val_fraction",
           "check_val_min_per_class", "choose_img_size", "collect_loaded", "dataset_names", "dataset_of_run", "declared_img_size", "is_in_memory", "load_dataset", "loaded_summary",
           "make_loader"]
