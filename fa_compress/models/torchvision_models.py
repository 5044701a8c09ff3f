"""The torchvision classification zoo, by name, with heads found rather than listed.

`torchvision.models.list_models(module=torchvision.models)` is the list of names. A name's spec is
made on first use: the architecture is built with its parameters on the `meta` device (no memory),
its classifier is the `nn.Linear` that produces the output, and its normalisation, resolution and
smallest input come from torchvision's own weight enum (`get_model_weights(name).DEFAULT`).

ImageNet weights come from torchvision's download cache: `~/.cache/torch/hub/checkpoints/` holds
them after one download. Offline, with nothing cached, the download fails with `URLError` (an
`OSError`); a corrupt cache file gives a `RuntimeError`. Both become a `NotFoundError` saying what to
do instead. Models with no place for a gate, and the vision transformers, are refused with a line saying so.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, NotFoundError
from ._registry import Family, ModelSpec, Normalization, register_family

if TYPE_CHECKING:
    from torch import nn

# Checked against a meta-device build of every name in torchvision 0.29 (tests/models/test_zoo.py):
# these have no nn.BatchNorm2d at all. ConvNeXt gates its LayerNorms over channels; VGG, AlexNet and
# SqueezeNet gate their convs (fa_compress/gates/sites.py); the transformers below stay refused.
NO_BATCHNORM = frozenset({
    "alexnet", "convnext_base", "convnext_large", "convnext_small", "convnext_tiny", "squeezenet1_0",
    "squeezenet1_1", "swin_b", "swin_s", "swin_t", "swin_v2_b", "swin_v2_s", "swin_v2_t", "vgg11", "vgg13",
    "vgg16", "vgg19", "vit_b_16", "vit_b_32", "vit_h_14", "vit_l_16", "vit_l_32",
})
TRANSFORMER_REASON = ("is a vision transformer: its channels are mixed by attention over tokens, which "
                      "facompress's channel gates and pruning do not cover")
# facompress cannot take these (name -> reason). ShuffleNetV2 and MaxViT prune with the layers
# torch-pruning cannot follow kept whole (keep_whole.py), ShuffleNetV2 with its channel shuffle made
# traceable (shufflenet.py).
UNSUPPORTED: dict[str, str] = {name: TRANSFORMER_REASON for name in NO_BATCHNORM
                               if name.startswith(("vit_", "swin_"))}

# VGG pools to 7x7 (AdaptiveAvgPool2d((7, 7))), AlexNet to 6x6; ONNX export of that needs a feature map
# 7 (6) divides, i.e. 224 px inputs (at 32 px the exporter stops: "output size that are not factor of
# input size").
_MIN_SIZE = {**{f"vgg{depth}{bn}": 224 for depth in (11, 13, 16, 19) for bn in ("", "_bn")}, "alexnet": 224}
# googlenet / inception_v3: one logits tensor in training too (no auxiliary heads), and the same
# input transform with and without ImageNet weights, so a reloaded model computes what was saved.
_EXTRA_KWARGS = {"googlenet": {"aux_logits": False, "transform_input": True},
                 "inception_v3": {"aux_logits": False, "transform_input": True}}


@functools.cache
def zoo_names() -> tuple[str, ...]:
    """Every torchvision classification model name (what `list_models` returns), sorted."""
    import torchvision

    return tuple(sorted(torchvision.models.list_models(module=torchvision.models)))


def refusal(name: str) -> str | None:
    """Why facompress refuses the torchvision model `name` (without building it), or None."""
    return UNSUPPORTED.get(name)


def supported_names() -> list[str]:
    """torchvision names facompress builds: gated and traceable."""
    return [n for n in zoo_names() if refusal(n) is None]


def default_weights(name: str) -> Any:
    """torchvision's DEFAULT ImageNet weight enum member for `name`."""
    import torchvision

    return torchvision.models.get_model_weights(name).DEFAULT


def weights_cached(name: str) -> bool:
    """True when the DEFAULT ImageNet weights of `name` are already in torch's download cache."""
    import torch

    filename = Path(default_weights(name).url).name
    return (Path(torch.hub.get_dir()) / "checkpoints" / filename).is_file()


def weights_facts(name: str) -> tuple[Normalization, int, int]:
    """(normalisation, crop resolution, smallest input) that the DEFAULT weights were made with."""
    weights = default_weights(name)
    transform = weights.transforms()
    norm = Normalization(tuple(float(v) for v in transform.mean), tuple(float(v) for v in transform.std))
    crop = int(transform.crop_size[0])
    min_size = max(int(v) for v in weights.meta.get("min_size", (1, 1)))
    return norm, crop, max(16, min_size, _MIN_SIZE.get(name, 0))


def _offline_message(name: str, exc: BaseException) -> str:
    reason = str(exc).split("\n")[0]
    return (
        f"ImageNet weights for {name} are not cached on this machine and could not be downloaded "
        f"({type(exc).__name__}: {reason}). They need internet once (torchvision caches them in "
        f"~/.cache/torch/hub/checkpoints), or pass a local state dict with weights PATH, or "
        f"weights none to start from random weights. efficientnet_lite0/1/2 ship their ImageNet "
        f"weights in Python packages and work offline (`facompress models` shows which are offline)"
    )


def _traceable(name: str, model: nn.Module) -> nn.Module:
    """`model` rewritten, where its family needs it, into a form torch-pruning can trace (same values)."""
    if name.startswith("shufflenet_v2_"):
        from .shufflenet import make_traceable

        return make_traceable(model)
    return model


def _construct(name: str, imagenet: bool) -> nn.Module:
    import torchvision

    constructor = getattr(torchvision.models, name)
    kwargs = dict(_EXTRA_KWARGS.get(name, {}))
    if not imagenet:
        if name in _EXTRA_KWARGS:
            kwargs["init_weights"] = True  # the explicit choice silences torchvision's FutureWarning
        return _traceable(name, constructor(weights=None, **kwargs))
    try:
        model = constructor(weights=default_weights(name), **kwargs)
    except (OSError, RuntimeError) as exc:  # URLError offline; hash mismatch / corrupt cache
        raise NotFoundError(_offline_message(name, exc)) from exc
    return _traceable(name, model)


def _builder(name: str) -> Callable[[bool], nn.Module]:
    def build(imagenet: bool) -> nn.Module:
        return _construct(name, imagenet)

    build.__name__ = name
    build.__doc__ = f"torchvision {name}; ImageNet weights via torchvision's download cache."
    return build


def _refused(name: str, reason: str) -> ConfigError:
    return ConfigError(f"torchvision model {name} {reason}; facompress cannot gate and prune it. CNNs "
                       f"work (resnet50, regnet_y_400mf, mobilenet_v3_large, efficientnet_b0, densenet121, "
                       f"..., see `facompress models`), as do timm:NAME CNNs")


def resolve(name: str) -> ModelSpec:
    """The spec of torchvision model `name`: head found on a meta-device build, facts from its weights."""
    from ._discover import build_on_meta, find_head, why_not_gated

    reason = refusal(name)
    if reason:
        raise _refused(name, reason)
    norm, crop, min_size = weights_facts(name)
    model = build_on_meta(lambda: _construct(name, imagenet=False))
    reason = why_not_gated(model)
    if reason:
        raise _refused(name, reason)
    head = find_head(model, max(min_size, 32), f"torchvision {name}")
    return ModelSpec(name, _builder(name), head, norm, crop, offline_weights=False, min_img_size=min_size,
                     source="torchvision")


def _owns(name: str) -> bool:
    return ":" not in name and name in zoo_names()


register_family(Family("torchvision", _owns, resolve, supported_names))
