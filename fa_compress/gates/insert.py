"""Putting gates into a model, finding them, and folding them back out."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from .gate import GatedBatchNorm2d


def _set_submodule(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def insert_gates(model: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d (subclasses included) by a `GatedBatchNorm2d`, in place.

    >>> model = insert_gates(build_model("resnet18", num_classes=10))
    """
    targets = [(name, m) for name, m in model.named_modules()
               if isinstance(m, nn.BatchNorm2d) and not isinstance(m, GatedBatchNorm2d)]
    for name, bn in targets:
        _set_submodule(model, name, GatedBatchNorm2d.from_batchnorm(bn))
    return model


def iter_gates(model: nn.Module) -> Iterator[tuple[str, GatedBatchNorm2d]]:
    """(module name, gated BatchNorm) for every gate in the model, in module order."""
    for name, m in model.named_modules():
        if isinstance(m, GatedBatchNorm2d):
            yield name, m


def has_gates(model: nn.Module) -> bool:
    """True when the model holds at least one gate."""
    return next(iter_gates(model), None) is not None


@torch.no_grad()
def fold_gate_into_batchnorm(gated: GatedBatchNorm2d) -> nn.BatchNorm2d:
    """A plain BatchNorm2d computing exactly `gated`: gamma' = gamma*g, beta' = beta*g."""
    bn = nn.BatchNorm2d(gated.num_features, eps=gated.eps, momentum=gated.momentum,
                        affine=True, track_running_stats=gated.track_running_stats)
    bn = bn.to(device=gated.gate.device, dtype=gated.gate.dtype)
    state = {k: v for k, v in gated.state_dict().items() if k != "gate"}
    g = gated.gate.detach()
    weight = state["weight"] if gated.affine else torch.ones_like(g)
    bias = state["bias"] if gated.affine else torch.zeros_like(g)
    state["weight"], state["bias"] = weight * g, bias * g
    bn.load_state_dict(state)
    bn.train(gated.training)
    origin = getattr(gated, "channel_origin", None)  # set by fa_compress.pruning.fade to trace a cut
    if origin is not None:
        bn.channel_origin = origin
    return bn


@torch.no_grad()
def fold_gate_into_conv(conv: nn.Conv2d, gate: torch.Tensor) -> nn.Conv2d:
    """Fold a per-output-channel gate that follows a conv with no BatchNorm: W' = W*g, b' = b*g, in place."""
    g = gate.detach().to(conv.weight.dtype)
    conv.weight.mul_(g.view(-1, 1, 1, 1))  # (C_out, C_in/groups, kH, kW) * (C_out, 1, 1, 1)
    if conv.bias is not None:
        conv.bias.mul_(g)
    return conv


def fold_gates(model: nn.Module) -> nn.Module:
    """Fold every gate into its BatchNorm, in place; the result holds only plain BatchNorm2d."""
    for name, gated in list(iter_gates(model)):
        _set_submodule(model, name, fold_gate_into_batchnorm(gated))
    return model


def gate_l1(model: nn.Module) -> torch.Tensor:
    """Mean absolute gate value over all channels: the sparsity penalty pushing noise channels to 0."""
    gates = [m.gate for _, m in iter_gates(model)]
    if not gates:
        raise ValueError("model has no gates; call insert_gates first")
    return torch.cat([g.abs().view(-1) for g in gates]).mean()
