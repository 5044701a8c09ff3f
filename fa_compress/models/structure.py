"""Record and re-apply per-layer channel counts, so a pruned model can be rebuilt from its file.

A pruned model's weights no longer fit the architecture `build_model` makes. Saving
`describe_structure(pruned)` (JSON) beside the weights lets a loader do:

>>> model = build_model("resnet18", num_classes=10, weights="none")
>>> apply_structure(model, structure)                # resize convs / norms / linears in place
>>> model.load_state_dict(state_dict, strict=True)

Covered layers: Conv2d, BatchNorm (1d/2d/3d) and affine InstanceNorm, Linear, GroupNorm, LayerNorm
over one dimension (channels), PReLU, and a block's own per-channel scale (ConvNeXt's `layer_scale`, a
(C, 1, 1) parameter of the block itself). Subclasses (Lite0's `Conv2dStaticSamePadding`, gated
BatchNorms) are recorded and resized like their base classes and keep their own class. Pruning
that resizes any other layer is refused by `check_rebuildable` before a file is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..errors import CheckpointError, ConfigError

if TYPE_CHECKING:
    import torch
    from torch import nn

Structure = dict[str, dict[str, int | str]]
COVERED = ("Conv2d, BatchNorm, InstanceNorm (affine), Linear, GroupNorm, LayerNorm (one dimension), PReLU and "
           "per-channel scales")


def _record(module: nn.Module) -> dict[str, int | str] | None:
    """The structure entry of one module, or None for a layer the record does not cover."""
    from torch import nn
    from torch.nn.modules.batchnorm import _NormBase

    if isinstance(module, nn.Conv2d):
        return {"kind": "conv", "in": int(module.in_channels), "out": int(module.out_channels),
                "groups": int(module.groups)}
    if isinstance(module, _NormBase) and (module.affine or module.track_running_stats):
        return {"kind": "bn", "features": int(module.num_features)}
    if isinstance(module, nn.Linear):
        return {"kind": "linear", "in": int(module.in_features), "out": int(module.out_features)}
    if isinstance(module, nn.GroupNorm) and module.affine:
        return {"kind": "gn", "groups": int(module.num_groups), "features": int(module.num_channels)}
    if isinstance(module, nn.LayerNorm) and len(module.normalized_shape) == 1 and module.weight is not None:
        return {"kind": "ln", "features": int(module.normalized_shape[0])}
    if isinstance(module, nn.PReLU):
        return {"kind": "prelu", "features": int(module.num_parameters)}
    own = list(module.named_parameters(recurse=False))
    if len(own) == 1 and _per_channel(own[0][1]):
        return {"kind": "scale", "param": own[0][0], "features": int(own[0][1].shape[0])}
    return None


def _per_channel(p: torch.Tensor) -> bool:
    """A (C,), (C, 1) or (C, 1, 1) tensor: one value per channel (a layer scale)."""
    return p.dim() >= 1 and p.shape[0] > 1 and all(d == 1 for d in p.shape[1:])


def describe_structure(model: nn.Module) -> Structure:
    """Channel counts of every covered layer (subclasses included), by module name.

    >>> describe_structure(resnet)["layer1.0.conv1"]
    {'kind': 'conv', 'in': 64, 'out': 64, 'groups': 1}
    """
    structure: Structure = {}
    for name, module in model.named_modules():
        entry = _record(module)
        if entry is not None:
            structure[name] = entry
    return structure


_COUNTS = {"conv": ("in", "out", "groups"), "bn": ("features",), "linear": ("in", "out"),
           "gn": ("groups", "features"), "ln": ("features",), "prelu": ("features",), "scale": ("features",)}


def check_structure(structure: object, state: Mapping[str, torch.Tensor]) -> None:
    """`CheckpointError` unless `structure` is well formed and the tensors in `state` bear out every
    channel count in it, so a damaged or hostile file cannot make a loader build layers of any size."""
    if not isinstance(structure, dict):
        raise CheckpointError("its structure record is not a JSON object")
    for name, entry in structure.items():
        kind = entry.get("kind") if isinstance(entry, dict) else None
        if kind not in _COUNTS:
            raise CheckpointError(f"structure entry {name!r} is not a {', '.join(_COUNTS)} record")
        counts = [entry.get(k) for k in _COUNTS[kind]]
        if not all(type(c) is int and c >= 1 for c in counts):
            raise CheckpointError(f"structure entry {name!r} has channel counts that are not positive integers")
        want = _leading_shape(kind, entry)
        if kind == "scale" and not (isinstance(entry.get("param"), str) and entry["param"].isidentifier()):
            raise CheckpointError(f"structure entry {name!r} names no parameter of its layer")
        key = f"{name}.{entry['param']}" if kind == "scale" else f"{name}.weight"
        tensor = state.get(key, state.get(f"{name}.running_mean"))
        if tensor is None or tuple(tensor.shape[:len(want)]) != want:
            got = "no weight" if tensor is None else f"weights of shape {tuple(tensor.shape)}"
            raise CheckpointError(f"structure entry {name!r} says {want} channels but the file holds {got}")


def _leading_shape(kind: str, entry: dict) -> tuple[int, ...]:
    """The leading dimensions of the layer's weight that a structure entry fixes."""
    if kind == "conv":
        return entry["out"], entry["in"] // entry["groups"]  # weight (O, I/groups, kh, kw)
    if kind == "linear":
        return entry["out"], entry["in"]  # linear weight (O, I)
    return (entry["features"],)  # norms and PReLU: weight or running_mean (C,)


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
        own = _record(module)
        if own is None or kind != own["kind"]:
            raise CheckpointError(f"structure says {name!r} is a {kind}, the model has a {type(module).__name__}")
        if kind == "conv":
            _resize_conv(name, module, int(entry["in"]), int(entry["out"]), int(entry["groups"]))
        elif kind == "linear":
            _resize_linear(module, int(entry["in"]), int(entry["out"]))
        else:
            _resize_channels(name, module, kind, entry)


def _resize_conv(name: str, conv: nn.Conv2d, in_ch: int, out_ch: int, groups: int) -> None:
    if groups < 1 or in_ch % groups or out_ch % groups:
        raise CheckpointError(f"layer {name!r}: {in_ch} in / {out_ch} out channels do not split into {groups} groups")
    kh, kw = conv.weight.shape[-2:]
    _set_tensor(conv, "weight", (out_ch, in_ch // groups, kh, kw))  # (O, I/groups, kh, kw)
    if conv.bias is not None:
        _set_tensor(conv, "bias", (out_ch,))
    conv.in_channels, conv.out_channels, conv.groups = in_ch, out_ch, groups


def _resize_channels(name: str, module: nn.Module, kind: str, entry: dict) -> None:
    """A per-channel layer (norms, PReLU): every 1-d tensor of the old width gets the new one."""
    features = int(entry["features"])
    old = int(_record(module)["features"])  # type: ignore[index]
    for key, tensor in [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]:
        if tensor is not None and tensor.dim() == 1 and tensor.shape[0] == old:
            _set_tensor(module, key, (features,))  # weight, bias, running stats, a gate
    if kind == "bn":
        module.num_features = features
    elif kind == "gn":
        groups = int(entry["groups"])
        if features % groups:
            raise CheckpointError(f"layer {name!r}: {features} channels do not split into {groups} groups")
        module.num_groups, module.num_channels = groups, features
    elif kind == "ln":
        module.normalized_shape = (features,)
    elif kind == "scale":
        param = getattr(module, str(entry["param"]))
        _set_tensor(module, str(entry["param"]), (features, *param.shape[1:]))  # (C, 1, 1) -> (C', 1, 1)
    else:
        module.num_parameters = features


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
    if old.device.type != "meta":
        new[overlap] = old.detach()[overlap]
    if name in module._parameters:
        module._parameters[name] = nn.Parameter(new, requires_grad=old.requires_grad)
    else:
        module._buffers[name] = new


def check_rebuildable(model: nn.Module, base: nn.Module) -> None:
    """`ConfigError` unless `base` (the unpruned architecture; `meta` parameters are fine) resized by
    `describe_structure(model)` has every tensor shape `model` has, i.e. the file will load back.

    Pruning can resize layers the record does not cover (a custom module's own parameter, a
    multi-dimensional LayerNorm); this says which, before anything is written.
    """
    import copy

    rebuilt = copy.deepcopy(base)
    apply_structure(rebuilt, describe_structure(model))  # gates are per-BatchNorm: checked with them
    want = {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}
    for key, tensor in model.state_dict().items():
        if key in want and want[key] != tuple(tensor.shape):
            layer = key.rpartition(".")[0]
            kind = type(model.get_submodule(layer)).__name__ if layer else type(model).__name__
            raise ConfigError(f"pruning resized {key} ({kind}) from {want[key]} to {tuple(tensor.shape)}, and "
                              f"facompress can rebuild a pruned model only from {COVERED} layers; keep the "
                              f"layers feeding {layer or 'it'} whole (ignore NAME / ignore=[...])")
