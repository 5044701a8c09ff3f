"""timm blocks rewritten, where torch-pruning 1.6 cannot follow them, into forms it can (same values).

timm's `MixedConv2d` (MixNet) splits its input channels by sizes fixed at construction
(`self.splits`) and runs one conv per part. torch-pruning follows the split and prunes each part's
conv, but the stored sizes stay: the pruned model then fails with "split_with_sizes expects
split_sizes to sum exactly to ...". `TraceableMixedConv2d` reads the sizes from its convs'
`in_channels` at every call, so they shrink with the convs. timm's `CrossStage` (CSPNet, CSPDarkNet)
halves its expansion by a stored size too; torch-pruning maps the indices across that split wrongly
(IndexError while ranking), so its expansion stays whole instead (`fa_compress.models.keep_whole`).

timm is optional: nothing here imports it; blocks are matched by class path.

>>> model = make_traceable(timm.create_model("mixnet_s"))
"""

from __future__ import annotations

import torch
from torch import nn

_MIXED_CONV = "timm.layers.mixed_conv2d.MixedConv2d"


class TraceableMixedConv2d(nn.ModuleDict):
    """timm's `MixedConv2d` with its split sizes read from its convs (see the module docstring)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        convs = list(self.values())
        parts = torch.split(x, [c.in_channels for c in convs], 1)  # (N, C, H, W) -> k x (N, C_i, H, W)
        return torch.cat([conv(part) for conv, part in zip(convs, parts)], 1)  # (N, sum C_out_i, H', W')


class TraceableMixedPointwise(TraceableMixedConv2d):
    """A `TraceableMixedConv2d` of ordinary (not depthwise) convs: torch-pruning maps the channels of the
    concatenation of their outputs wrongly, so those stay whole (`fa_compress.models.keep_whole`)."""


def make_traceable(model: nn.Module) -> nn.Module:
    """Give every timm block of `model` that needs it the traceable forward, in place; returns `model`."""
    for module in model.modules():
        if f"{type(module).__module__}.{type(module).__qualname__}" == _MIXED_CONV:
            depthwise = all(c.groups == c.in_channels for c in module.values())
            module.__class__ = TraceableMixedConv2d if depthwise else TraceableMixedPointwise
    return model
