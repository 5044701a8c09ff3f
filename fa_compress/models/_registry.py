"""The model registry: each architecture registers a `ModelSpec` under its name.

A builder returns the architecture with its original 1000-class ImageNet head, with or without
pretrained weights; `fa_compress.models.build_model` then swaps the head. Adding a model:

>>> @register_model("my_net", head="classifier.1", normalization=IMAGENET_NORMALIZATION)
... def my_net(imagenet: bool) -> nn.Module:
...     return MyNet(pretrained=imagenet)

This module imports no torch, so listing the model names stays instant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import errors

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class Normalization:
    """Per-channel input normalisation (RGB order) the pretrained weights expect: (x - mean) / std."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def to_json(self) -> dict[str, list[float]]:
        """`{"mean": [...], "std": [...]}`."""
        return {"mean": list(self.mean), "std": list(self.std)}


IMAGENET_NORMALIZATION = Normalization(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))


@dataclass(frozen=True)
class ModelSpec:
    """Everything facompress needs to know about one architecture."""

    name: str
    # builder(imagenet) -> the architecture with its 1000-class head; imagenet=True loads the
    # pretrained weights (and may raise NotFoundError when they cannot be fetched).
    builder: Callable[[bool], nn.Module]
    head: str  # dotted path of the classifier nn.Linear, e.g. "fc" or "classifier.1"
    normalization: Normalization
    default_img_size: int = 224  # resolution the ImageNet weights were trained at
    offline_weights: bool = False  # True when the ImageNet weights ship with an installed package


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(
    name: str,
    *,
    head: str,
    normalization: Normalization,
    default_img_size: int = 224,
    offline_weights: bool = False,
) -> Callable[[Callable[[bool], nn.Module]], Callable[[bool], nn.Module]]:
    """Decorator that registers `builder(imagenet: bool) -> nn.Module` under `name`."""

    def wrap(builder: Callable[[bool], nn.Module]) -> Callable[[bool], nn.Module]:
        if name in _REGISTRY:
            raise errors.InternalError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelSpec(name, builder, head, normalization, default_img_size, offline_weights)
        return builder

    return wrap


def get_spec(name: str) -> ModelSpec:
    """The `ModelSpec` registered under `name`; `NotFoundError` listing the known names otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise errors.unknown_name("model", name, model_names()) from None


def model_names() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_REGISTRY)
