"""Pretrained CNN classifiers by name.

>>> from fa_compress.models import build_model, get_spec, model_names
>>> model = build_model("efficientnet_lite0", num_classes=10)      # ImageNet weights, offline
>>> get_spec("efficientnet_lite0").normalization
Normalization(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))

Importing this package loads neither torch nor torchvision; building a model does.
"""

from __future__ import annotations

# Importing the builder modules registers their architectures.
from . import efficientnet_lite, torchvision_models  # noqa: F401
from ._builder import build_model, get_head, load_weights_file, replace_head
from ._registry import IMAGENET_NORMALIZATION, ModelSpec, Normalization, get_spec, model_names, register_model
from .structure import apply_structure, describe_structure

__all__ = [
    "IMAGENET_NORMALIZATION",
    "ModelSpec",
    "Normalization",
    "apply_structure",
    "build_model",
    "describe_structure",
    "get_head",
    "get_spec",
    "load_weights_file",
    "model_names",
    "register_model",
    "replace_head",
]
