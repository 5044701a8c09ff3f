"""The input size a fine-tuning uses when none is asked for, chosen by one rule in one place.

1. asked for: that size (refused below the model's smallest working input);
2. else the dataset declares a size of its own (its images are much smaller than a pretrained CNN's
   resolution: Fashion-MNIST's 28-px images are fine-tuned at 64 px), raised to the model's smallest
   working input where that is larger;
3. else the model's own pretrained resolution (`ModelSpec.default_img_size`: torchvision's weight
   crop size, timm's `pretrained_cfg["input_size"]`, 224/240/260 px for EfficientNet-Lite0/1/2).

>>> from fa_compress.models import get_spec
>>> choose_img_size(None, get_spec("efficientnet_lite1"), "imagefolder:/data/birds").describe()
"240: efficientnet_lite1's pretrained resolution"
>>> choose_img_size(None, get_spec("efficientnet_lite0"), "fashion-mnist").describe()
'64: fashion-mnist declares 64 px for its 28-px images'

A dataset declares its size with a module-level `DECLARED_SIZE = DeclaredSize(...)` in the module
that loads it, named in `_DECLARING_MODULES` below.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass

from ..errors import ConfigError
from ..models import ModelSpec

RULES = ("asked", "dataset", "model")
# dataset spec (before any `:`) -> the module of this package that declares its size
_DECLARING_MODULES = {"fashion-mnist": "fashion_mnist"}


@dataclass(frozen=True)
class DeclaredSize:
    """A dataset's own input size: the side of its images and the size a pretrained CNN should see them at."""

    image_px: int  # the images as stored, e.g. 28 for Fashion-MNIST
    img_size: int  # what fine-tuning uses unless asked otherwise


@dataclass(frozen=True)
class ImgSizeChoice:
    """The input size chosen for a fine-tuning, and which rule chose it."""

    size_px: int
    rule: str    # one of RULES
    reason: str  # e.g. "efficientnet_lite0's pretrained resolution"

    def describe(self) -> str:
        """`224: efficientnet_lite0's pretrained resolution`."""
        return f"{self.size_px}: {self.reason}"

    def to_dict(self) -> dict[str, object]:
        """The record run.json keeps beside the fine-tuning's options."""
        return asdict(self)


def declared_img_size(data: str) -> DeclaredSize | None:
    """The input size dataset `data` declares for itself, or None (the model's resolution applies)."""
    module = _DECLARING_MODULES.get(data.partition(":")[0])
    if module is None:
        return None
    return importlib.import_module(f"{__package__}.{module}").DECLARED_SIZE


def choose_img_size(asked: int | None, spec: ModelSpec, data: str) -> ImgSizeChoice:
    """The input size to fine-tune `spec`'s model on dataset `data` at (see the module docstring);
    `ConfigError` when `asked` is below the model's smallest working input."""
    if asked is not None:
        if asked < spec.min_img_size:
            raise ConfigError(f"{spec.name} needs inputs of at least {spec.min_img_size} px; raise img_size "
                              f"(got {asked}; its ImageNet weights were made at {spec.default_img_size} px)")
        return ImgSizeChoice(asked, "asked", "asked for")
    declared = declared_img_size(data)
    if declared is not None:
        size = max(declared.img_size, spec.min_img_size)
        reason = f"{data} declares {declared.img_size} px for its {declared.image_px}-px images"
        if size != declared.img_size:
            reason += f", raised to {spec.name}'s smallest working input"
        return ImgSizeChoice(size, "dataset", reason)
    return ImgSizeChoice(spec.default_img_size, "model", f"{spec.name}'s pretrained resolution")
