"""`timm:NAME`: any timm CNN (BatchNorm'd, ConvNeXt-style or norm-free), by its timm name
(`timm:resnet50`, `timm:resnet18.a1_in1k`).

timm is optional (`pip install 'facompress[timm]'`) and imported only here, inside functions.
Normalisation and input size come from the model's own `pretrained_cfg`, which timm knows without
downloading anything. ImageNet weights (`--weights imagenet`) come through timm's pretrained loading
from the Hugging Face hub: that needs internet once (or `HF_HUB_OFFLINE=1` with a filled cache);
offline it fails with one line. `--weights none` and `--weights PATH` work offline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import _deps
from ..errors import ConfigError, NotFoundError
from ._registry import Family, ModelSpec, Normalization, register_family

if TYPE_CHECKING:
    from torch import nn

PREFIX = "timm:"


def _timm(purpose: str) -> Any:
    return _deps.require("timm", purpose)


def _check_name(timm: Any, arch: str) -> None:
    if timm.is_model(arch):
        return
    import difflib

    close = difflib.get_close_matches(arch, timm.list_models(), n=4, cutoff=0.6)
    hint = f" Did you mean {', '.join(PREFIX + c for c in close)}?" if close else ""
    raise NotFoundError(f"unknown timm model {arch!r} (timm {timm.__version__} knows {len(timm.list_models())} "
                        f"architectures; timm.list_models('*pattern*') searches them).{hint}")


def _offline_message(arch: str, exc: BaseException) -> str:
    reason = str(exc).split("\n")[0][:200]
    return (f"ImageNet weights for timm:{arch} could not be fetched from the Hugging Face hub "
            f"({type(exc).__name__}: {reason}). They need internet once (timm caches them under "
            f"~/.cache/huggingface), or pass a local state dict with weights PATH, or weights none to "
            f"start from random weights; efficientnet_lite0/1/2 ship ImageNet weights offline")


def _builder(arch: str) -> Callable[[bool], nn.Module]:
    def build(imagenet: bool) -> nn.Module:
        from .timm_traceable import make_traceable  # torch: loaded only when a model is built

        timm = _timm(f"model {PREFIX}{arch}")
        if not imagenet:
            return make_traceable(timm.create_model(arch, pretrained=False))
        try:
            return make_traceable(timm.create_model(arch, pretrained=True))
        except (OSError, RuntimeError, ValueError) as exc:  # hub unreachable, nothing cached, no weights tag
            raise NotFoundError(_offline_message(arch, exc)) from exc

    build.__name__ = arch
    return build


def resolve(name: str) -> ModelSpec:
    """The spec of `timm:ARCH`: head found on a meta-device build, facts from timm's pretrained config."""
    from ._discover import build_on_meta, find_head, why_not_gated

    arch = name[len(PREFIX):]
    timm = _timm(f"model {name}")
    _check_name(timm, arch)
    model = build_on_meta(lambda: timm.create_model(arch, pretrained=False))
    reason = why_not_gated(model)
    if reason:
        raise ConfigError(f"{name} {reason}; timm CNNs work (timm:resnet50, timm:efficientnet_b0, "
                          f"timm:convnext_tiny, ...)")
    cfg = dict(getattr(model, "pretrained_cfg", None) or {})
    size = int(cfg.get("input_size", (3, 224, 224))[-1])
    min_size = size if cfg.get("fixed_input_size") else 32
    norm = Normalization(tuple(float(v) for v in cfg.get("mean", (0.485, 0.456, 0.406))),
                         tuple(float(v) for v in cfg.get("std", (0.229, 0.224, 0.225))))
    head = find_head(model, max(min_size, 64), name)
    return ModelSpec(name, _builder(arch), head, norm, size, offline_weights=False, min_img_size=min_size,
                     source="timm")


register_family(Family("timm", lambda name: name.startswith(PREFIX), resolve, lambda: []))
