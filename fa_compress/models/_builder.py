"""Build a registered architecture with a fresh classifier head and the weights asked for."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import CheckpointError, ConfigError
from ._registry import ModelSpec, get_spec
from ..run import load_state_dict_file

if TYPE_CHECKING:
    import torch
    from torch import nn

_SHOWN_KEYS = 6  # how many mismatching keys an error message lists


def get_head(model: nn.Module, name: str) -> nn.Module:
    """The classifier module (an `nn.Linear`, or a 1x1 `nn.Conv2d`) of a model built as architecture `name`."""
    return _head_of(model, get_spec(name))


def replace_head(model: nn.Module, spec: ModelSpec, num_classes: int) -> nn.Module:
    """Swap the classifier for a freshly initialised `nn.Linear(in_features, num_classes)` (a 1x1
    `nn.Conv2d(in_channels, num_classes)` where the classifier is a 1x1 conv); returns it."""
    from torch import nn

    _check_num_classes(num_classes)
    old = _head_of(model, spec)
    if isinstance(old, nn.Conv2d):
        new = nn.Conv2d(old.in_channels, num_classes, kernel_size=1, bias=True)
    else:
        new = nn.Linear(old.in_features, num_classes, bias=True)
    new.to(device=old.weight.device, dtype=old.weight.dtype)
    parent_path, _, attr = spec.head.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, attr, new)  # Sequential children are named "0", "1", ...: setattr works too
    return new


def build_model(name: str, num_classes: int, weights: str = "imagenet") -> nn.Module:
    """Build architecture `name` with a `num_classes` head.

    `weights` is "imagenet" (pretrained backbone), "none" (random init) or the path of a state dict
    of the same architecture (`.safetensors`, `.pt`, `.pth`). A file's classifier weights are kept
    when their shape fits `num_classes` and dropped otherwise (the head then starts fresh).

    >>> model = build_model("efficientnet_lite0", num_classes=10)          # offline ImageNet weights
    >>> model = build_model("resnet18", 10, weights="runs/best.safetensors")
    """
    spec = get_spec(name)
    _check_num_classes(num_classes)
    if weights == "imagenet":
        model = spec.builder(True)
        replace_head(model, spec, num_classes)
        return model
    model = spec.builder(False)
    replace_head(model, spec, num_classes)
    if weights != "none":
        load_weights_file(model, spec, Path(weights))
    return model


def load_weights_file(model: nn.Module, spec: ModelSpec, path: Path) -> None:
    """Load a state dict file into `model`, dropping a classifier head of another class count."""

    state = dict(load_state_dict_file(path))
    expected = model.state_dict()
    head_keys = {f"{spec.head}.{k}" for k in ("weight", "bias")}
    for key in head_keys:
        if key in state and key in expected and state[key].shape != expected[key].shape:
            del state[key]  # another class count: the fresh head stays
    missing = sorted(set(expected) - set(state) - head_keys)
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong_shape:
        raise CheckpointError(_mismatch_message(path, spec.name, missing, unexpected, wrong_shape, state, expected))
    model.load_state_dict(with_versions(model, state), strict=False)


def _mismatch_message(
    path: Path,
    name: str,
    missing: list[str],
    unexpected: list[str],
    wrong_shape: list[str],
    state: dict[str, torch.Tensor],
    expected: dict[str, torch.Tensor],
) -> str:
    parts = []
    if missing:
        parts.append(f"missing keys {_few(missing)}")
    if unexpected:
        parts.append(f"unexpected keys {_few(unexpected)}")
    if wrong_shape:
        shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}" for k in wrong_shape[:_SHOWN_KEYS]]
        parts.append(f"{len(wrong_shape)} shape mismatches ({'; '.join(shapes)})")
    return (
        f"{path} is not a state dict of {name}: {', '.join(parts)}. Pass weights saved from the same "
        f"architecture, or load a pruned model through its run (pruned models have other channel counts)"
    )


def _few(keys: list[str]) -> str:
    more = f" and {len(keys) - _SHOWN_KEYS} more" if len(keys) > _SHOWN_KEYS else ""
    return f"[{', '.join(keys[:_SHOWN_KEYS])}]{more}"


def _head_of(model: nn.Module, spec: ModelSpec) -> nn.Module:
    from torch import nn

    try:
        head = model.get_submodule(spec.head)
    except AttributeError as exc:
        raise ConfigError(f"model has no classifier at {spec.head!r}; is it a {spec.name}?") from exc
    is_conv_head = isinstance(head, nn.Conv2d) and head.kernel_size == (1, 1) and head.groups == 1
    if not isinstance(head, nn.Linear) and not is_conv_head:
        raise ConfigError(f"{spec.name} classifier at {spec.head!r} is {type(head).__name__}, not nn.Linear "
                          f"or a 1x1 nn.Conv2d")
    return head


def _check_num_classes(num_classes: int) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ConfigError(f"num_classes must be an integer >= 2, got {num_classes!r}")


def check_rebuilds(model: nn.Module, name: str) -> None:
    """`ConfigError` unless a file of `model` (architecture `name`, maybe pruned) will load back:
    every tensor it holds is one `build_model` + `apply_structure` recreates in the same shape."""
    from ._discover import build_on_meta
    from .structure import check_rebuildable

    spec = get_spec(name)
    try:
        base = build_on_meta(lambda: spec.builder(False))
    except Exception:  # noqa: BLE001 - code that needs real tensors to build: build it for real
        base = spec.builder(False)
    check_rebuildable(model, base)


def with_versions(model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`state` with the per-module version numbers `model.state_dict()` carries (`_metadata`).

    safetensors files hold tensors only; modules that check the version of what they load
    (torchvision's MNASNet refuses a state dict without one) get their own architecture's.
    """
    from collections import OrderedDict

    versioned = OrderedDict(state)
    metadata = getattr(model.state_dict(), "_metadata", None)
    if metadata is not None:
        versioned._metadata = metadata  # type: ignore[attr-defined]
    return versioned
