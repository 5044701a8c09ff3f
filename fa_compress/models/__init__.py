"""CNN classifiers by name: packaged ones, the torchvision zoo, `timm:NAME` and your own factory.

>>> from fa_compress.models import build_model, get_spec, model_names
>>> model = build_model("efficientnet_lite0", num_classes=10)      # ImageNet weights, offline
>>> get_spec("efficientnet_lite0").normalization
Normalization(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
>>> get_spec("regnet_x_400mf").head                               # found, not listed
'fc'

Importing this package loads neither torch nor torchvision; building a model (or listing the
torchvision zoo) does.
"""

from __future__ import annotations

# Importing the builder modules registers their architectures and families, in the order
# names are matched: packaged models, `timm:`, `file.py:factory`, then the torchvision zoo.
from . import efficientnet_lite, timm_models, user_code, torchvision_models  # noqa: F401
from ._builder import build_model, get_head, load_weights_file, replace_head
from ._registry import (IMAGENET_NORMALIZATION, ModelSpec, Normalization, get_spec, model_names, register_model,
                        registered_names)
from .structure import apply_structure, describe_structure
from .user_code import canonical_name, code_trusted, is_user_code, trust_code

__all__ = [
    "IMAGENET_NORMALIZATION",
    "ModelSpec",
    "Normalization",
    "apply_structure",
    "build_model",
    "canonical_name",
    "code_trusted",
    "describe_structure",
    "get_head",
    "get_spec",
    "is_user_code",
    "load_weights_file",
    "model_names",
    "register_model",
    "registered_names",
    "replace_head",
    "trust_code",
]
