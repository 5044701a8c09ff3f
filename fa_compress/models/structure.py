"""Record and re-apply per-layer channel counts, so a pruned model can be rebuilt from its file.

A pruned model's weights no longer fit the architecture `build_model` makes. Saving
`describe_structure(pruned)` (JSON) beside the weights lets a loader do:

>>> model = build_model("resnet18", num_classes=10, weights="none")
>>> apply_structure(model, structure)                # resize convs / BNs / linears in place
>>> model.load_state_dict(state_dict, strict=True)

Subclasses (Lite0's `Conv2dStaticSamePadding`, gated BatchNorms) are recorded and resized like
their base classes and keep their own class.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..errors import CheckpointError

if TYPE_CHECKING:
    import torch
    from torch import nn

Structure = dict[str, dict[str, int | str]]


def describe_structure(model: nn.Module) -> Structure:
    """Channel counts of every Conv2d, BatchNorm2d and Linear (subclasses included), by module name.

    >>> describe_structure(resnet)["layer1.0.conv1"]
    {'kind': 'conv', 'in': 64, 'out': 64, 'groups': 1}
    """
    from torch import nn

    structure: Structure = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            structure[name] = {
                "kind": "conv",
                "in": int(module.in_channels),
                "out": int(module.out_channels),
                "groups": int(module.groups),
            }
        elif isinstance(module, nn.BatchNorm2d):
            structure[name] = {"kind": "bn", "features": int(module.num_features)}
        elif isinstance(module, nn.Linear):
            structure[name] = {"kind": "linear", "in": int(module.in_features), "out": int(module.out_features)}
    return structure


_COUNTS = {"conv": ("in", "out", "groups"), "bn": ("features",), "linear": ("in", "out")}


def check_structure(structure: object, state: Mapping[str, torch.Tensor]) -> None:
    """`CheckpointError` unless `structure` is well formed and the tensors in `state` bear out every
    channel count in it, so a damaged or hostile file cannot make a loader build layers of any size."""
    if not isinstance(structure, dict):
        raise CheckpointError("its structure record is not a JSON object")
    for name, entry in structure.items():
        kind = entry.get("kind") if isinstance(entry, dict) else None
        if kind not in _COUNTS:
            raise CheckpointError(f"structure entry {name!r} is not a conv, bn or linear record")
        counts = [entry.get(k) for k in _COUNTS[kind]]
        if not all(type(c) is int and c >= 1 for c in counts):
            raise CheckpointError(f"structure entry {name!r} has channel counts that are not positive integers")
        want = _leading_shape(kind, entry)
        tensor = state.get(f"{name}.weight", state.get(f"{name}.running_mean"))
        if tensor is None or tuple(tensor.shape[:len(want)]) != want:
            got = "no weight" if tensor is None else f"weights of shape {tuple(tensor.shape)}"
            raise CheckpointError(f"structure entry {name!r} says {want} channels but the file holds {got}")


def _leading_shape(kind: str, entry: dict) -> tuple[int, ...]:
    """The leading dimensions of the layer's weight that a structure entry fixes."""
    if kind == "conv":
        return entry["out"], entry["in"] // entry["groups"]  # weight (O, I/groups, kh, kw)
    if kind == "bn":
        return (entry["features"],)  # weight or running_mean (C,)
    return entry["out"], entry["in"]  # linear weight (O, I)


def apply_structure(model: nn.Module, structure: Structure) -> None:
    """Resize the modules named in `structure` in place to its channel counts.

    Tensors get the new shapes; their values are placeholders (the overlapping part of the old
    tensor, zeros elsewhere) until a state dict is loaded. Raises `CheckpointError` when a name is
    missing from `model` or names a module of another kind.
    """
    modules = dict(model.named_modules())
    for name, entry in structure.items():
        module = modules.get(name)
        if module is None:
            raise CheckpointError(f"structure names layer {name!r}, which this model does not have")
        kind = entry.get("kind")
        if kind != _kind_of(module):
            raise CheckpointError(f"structure says {name!r} is a {kind}, the model has a {type(module).__name__}")
        if kind == "conv":
            _resize_conv(name, module, int(entry["in"]), int(entry["out"]), int(entry["groups"]))
        elif kind == "bn":
            _resize_bn(module, int(entry["features"]))
        else:
            _resize_linear(module, int(entry["in"]), int(entry["out"]))


def _kind_of(module: nn.Module) -> str | None:
    from torch import nn

    if isinstance(module, nn.Conv2d):
        return "conv"
    if isinstance(module, nn.BatchNorm2d):
        return "bn"
    if isinstance(module, nn.Linear):
        return "linear"
    return None


def _resize_conv(name: str, conv: nn.Conv2d, in_ch: int, out_ch: int, groups: int) -> None:
    if groups < 1 or in_ch % groups or out_ch % groups:
        raise CheckpointError(f"layer {name!r}: {in_ch} in / {out_ch} out channels do not split into {groups} groups")
    kh, kw = conv.weight.shape[-2:]
    _set_tensor(conv, "weight", (out_ch, in_ch // groups, kh, kw))  # (O, I/groups, kh, kw)
    if conv.bias is not None:
        _set_tensor(conv, "bias", (out_ch,))
    conv.in_channels, conv.out_channels, conv.groups = in_ch, out_ch, groups


def _resize_bn(bn: nn.BatchNorm2d, features: int) -> None:
    # Every per-channel tensor: weight, bias, running stats, and any a subclass adds (a gate).
    old = bn.num_features
    for name, tensor in [*bn.named_parameters(recurse=False), *bn.named_buffers(recurse=False)]:
        if tensor is not None and tensor.dim() == 1 and tensor.shape[0] == old:
            _set_tensor(bn, name, (features,))
    bn.num_features = features


def _resize_linear(linear: nn.Linear, in_features: int, out_features: int) -> None:
    _set_tensor(linear, "weight", (out_features, in_features))  # (O, I)
    if linear.bias is not None:
        _set_tensor(linear, "bias", (out_features,))
    linear.in_features, linear.out_features = in_features, out_features


def _set_tensor(module: nn.Module, name: str, shape: tuple[int, ...]) -> None:
    """Replace parameter or buffer `name` with a tensor of `shape`, keeping its kind, dtype and device."""
    import torch
    from torch import nn

    old: torch.Tensor = getattr(module, name)
    if tuple(old.shape) == tuple(shape):
        return
    new = torch.zeros(shape, dtype=old.dtype, device=old.device)
    overlap = tuple(slice(0, min(a, b)) for a, b in zip(old.shape, shape))
    new[overlap] = old.detach()[overlap]
    if name in module._parameters:
        module._parameters[name] = nn.Parameter(new, requires_grad=old.requires_grad)
    else:
        module._buffers[name] = new
