"""torchvision classifiers. Their ImageNet weights come from torchvision's download cache.

torchvision downloads `weights="DEFAULT"` into `~/.cache/torch/hub/checkpoints/` on first use and
reads the cached file afterwards. Offline, with nothing cached, the download fails with
`urllib.error.URLError` (an `OSError`); a corrupt or half-written cache file gives a
`RuntimeError`. Both become a `NotFoundError` that says what to do instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import NotFoundError
from ._registry import IMAGENET_NORMALIZATION, register_model

if TYPE_CHECKING:
    from torch import nn

# name -> dotted path of the classifier nn.Linear inside the torchvision model
_HEADS = {
    "resnet18": "fc",
    "resnet34": "fc",
    "resnet50": "fc",
    "resnet101": "fc",
    "mobilenet_v2": "classifier.1",  # Sequential(Dropout, Linear)
    "mobilenet_v3_large": "classifier.3",  # Sequential(Linear, Hardswish, Dropout, Linear)
    "efficientnet_b0": "classifier.1",  # Sequential(Dropout, Linear)
}


def _offline_message(name: str, exc: BaseException) -> str:
    reason = str(exc).split("\n")[0]
    return (
        f"ImageNet weights for {name} are not cached on this machine and could not be downloaded "
        f"({type(exc).__name__}: {reason}). They need internet once (torchvision caches them in "
        f"~/.cache/torch/hub/checkpoints), or pass a local state dict with --weights PATH, or "
        f"--weights none to start from random weights. efficientnet_lite0 ships its ImageNet "
        f"weights in a Python package and works offline"
    )


def _torchvision_builder(name: str) -> Callable[[bool], nn.Module]:
    def build(imagenet: bool) -> nn.Module:
        import torchvision

        constructor = getattr(torchvision.models, name)
        if not imagenet:
            return constructor(weights=None)
        try:
            return constructor(weights="DEFAULT")
        except (OSError, RuntimeError) as exc:  # URLError offline; hash mismatch / corrupt cache
            raise NotFoundError(_offline_message(name, exc)) from exc

    build.__name__ = name
    build.__doc__ = f"torchvision {name}; ImageNet weights via torchvision's download cache."
    return build


for _name, _head in _HEADS.items():
    register_model(_name, head=_head, normalization=IMAGENET_NORMALIZATION)(_torchvision_builder(_name))
