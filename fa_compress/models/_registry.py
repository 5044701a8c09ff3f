"""The model registry: architectures registered by name, plus families resolved on demand.

A builder returns the architecture with its original classifier head, with or without
pretrained weights; `fa_compress.models.build_model` then swaps the head. Adding one model:

>>> @register_model("my_net", head="classifier.1", normalization=IMAGENET_NORMALIZATION)
... def my_net(imagenet: bool) -> nn.Module:
...     return MyNet(pretrained=imagenet)

Whole families (the torchvision zoo, `timm:NAME`, a user's `file.py:factory`) register a `Family`
that recognises its names and builds their `ModelSpec` when first asked for.

This module imports no torch, so listing the registered names stays instant.
"""

from __future__ import annotations

import difflib
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
    # builder(imagenet) -> the architecture with its original head; imagenet=True loads the
    # pretrained weights (and may raise NotFoundError when they cannot be fetched).
    builder: Callable[[bool], nn.Module]
    head: str  # dotted path of the classifier nn.Linear, e.g. "fc" or "classifier.1"
    normalization: Normalization
    default_img_size: int = 224  # resolution the ImageNet weights were trained at
    offline_weights: bool = False  # True when the ImageNet weights ship with an installed package
    min_img_size: int = 16  # smallest input the architecture runs on (inception_v3: 75)
    source: str = "facompress"  # facompress, torchvision, timm or user (code that needs --trust-code)


@dataclass(frozen=True)
class Family:
    """Models named by a pattern and resolved on first use (the torchvision zoo, `timm:`, user code)."""

    name: str
    owns: Callable[[str], bool]  # cheap: does this name belong to the family?
    resolve: Callable[[str], ModelSpec]  # raises a UserError saying why a name of its own cannot be used
    names: Callable[[], list[str]]  # the names it can list (may import torch); [] for open families
    cache: bool = True  # False: resolve every time (user code re-checks --trust-code on each use)


_REGISTRY: dict[str, ModelSpec] = {}
_FAMILIES: list[Family] = []
_RESOLVED: dict[str, ModelSpec] = {}


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


def register_family(family: Family) -> None:
    """Add a family; families are asked in the order they were registered."""
    if any(f.name == family.name for f in _FAMILIES):
        raise errors.InternalError(f"model family {family.name!r} is registered twice")
    _FAMILIES.append(family)


def get_spec(name: str) -> ModelSpec:
    """The `ModelSpec` for `name`; `NotFoundError` with close matches otherwise.

    >>> get_spec("resnet18").head, get_spec("regnet_x_400mf").head
    ('fc', 'fc')
    """
    if not isinstance(name, str) or not name:
        raise errors.ConfigError(f"a model name must be a non-empty string, got {name!r}")
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name in _RESOLVED:
        return _RESOLVED[name]
    for family in _FAMILIES:
        if family.owns(name):
            spec = family.resolve(name)
            if family.cache:
                _RESOLVED[name] = spec
            return spec
    raise unknown_model(name)


def unknown_model(name: str) -> errors.NotFoundError:
    """The error for a name no family owns: close matches and where the full list is."""
    known = model_names()
    close = difflib.get_close_matches(name, known, n=4, cutoff=0.6)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return errors.NotFoundError(
        f"unknown model {name!r}.{hint} `facompress models` lists all {len(known)} names; "
        f"timm:NAME builds a timm model and path/to/file.py:factory your own (with trust_code)")


def model_names() -> list[str]:
    """Names that build: registered ones and every family's listable names, sorted."""
    names = set(_REGISTRY)
    for family in _FAMILIES:
        names.update(family.names())
    return sorted(names)


def registered_names() -> list[str]:
    """Only the models registered one by one (no family, no torch import), sorted."""
    return sorted(_REGISTRY)
