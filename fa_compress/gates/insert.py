"""Putting gates into a model, finding them, and folding them back out."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace

import torch
from torch import nn

from .gate import ChannelGate, GatedBatchNorm2d
from .norm_free import gate_conv, gate_layernorm, gate_linear
from .sites import find_gate_sites


def _set_submodule(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def insert_gates(model: nn.Module, like: Mapping[str, torch.Tensor] | None = None) -> nn.Module:
    """Gate every BatchNorm2d (subclasses included, by a `GatedBatchNorm2d`), and, where no BatchNorm
    is, every LayerNorm over channels, every conv no norm follows and the hidden channels of every
    ConvNeXt block MLP (`sites.find_gate_sites`); in place.

    `like`: the state dict about to be loaded. A file saved before facompress gated ConvNeXt's MLPs holds
    none of those gates; their Linears then stay plain, so the file loads as it was saved.

    >>> model = insert_gates(build_model("resnet18", num_classes=10))
    """
    sites = find_gate_sites(model)
    if like is not None and not any(f"{name}.gate" in like for name in sites.linears):
        sites = replace(sites, linears=[])
    modules = dict(model.named_modules())
    for name in sites.batchnorms:
        _set_submodule(model, name, GatedBatchNorm2d.from_batchnorm(modules[name]))
    for name, channels_first in sites.layernorms.items():
        gate_layernorm(modules[name], channels_first)
    for name in sites.convs:
        gate_conv(modules[name])
    for name in sites.linears:
        gate_linear(modules[name])
    return model


def iter_gates(model: nn.Module) -> Iterator[tuple[str, ChannelGate]]:
    """(module name, gated layer) for every gate in the model, in module order."""
    for name, m in model.named_modules():
        if isinstance(m, ChannelGate):
            yield name, m


def has_gates(model: nn.Module) -> bool:
    """True when the model holds at least one gate."""
    return next(iter_gates(model), None) is not None


def fold_gate_into_batchnorm(gated: GatedBatchNorm2d) -> nn.BatchNorm2d:
    """A plain BatchNorm2d computing exactly `gated`: gamma' = gamma*g, beta' = beta*g."""
    return gated.folded()


@torch.no_grad()
def fold_gate_into_conv(conv: nn.Conv2d, gate: torch.Tensor) -> nn.Conv2d:
    """Fold a per-output-channel gate that follows a conv with no BatchNorm: W' = W*g, b' = b*g, in place."""
    g = gate.detach().to(conv.weight.dtype)
    conv.weight.mul_(g.view(-1, 1, 1, 1))  # (C_out, C_in/groups, kH, kW) * (C_out, 1, 1, 1)
    if conv.bias is not None:
        conv.bias.mul_(g)
    return conv


def fold_gates(model: nn.Module) -> nn.Module:
    """Fold every gate into its layer, in place; the result holds only the original, ungated layers."""
    for name, gated in list(iter_gates(model)):
        _set_submodule(model, name, gated.folded())
    return model


def gate_l1(model: nn.Module) -> torch.Tensor:
    """Mean absolute gate value over all channels: the sparsity penalty pushing noise channels to 0."""
    gates = [m.gate for _, m in iter_gates(model)]
    if not gates:
        raise ValueError("model has no gates; call insert_gates first")
    return torch.cat([g.abs().view(-1) for g in gates]).mean()
