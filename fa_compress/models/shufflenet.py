"""torchvision's ShuffleNetV2 with a channel shuffle and a split that torch-pruning 1.6.1 can trace.

torchvision's block ends in `channel_shuffle`: a view of the channels into 2 groups, a transpose and
a view back. torch-pruning maps channels through a view as through a flatten, with a stride it infers
from the channel counts on either side; across the block's split and concat it infers 0 and divides
by it (ZeroDivisionError in `update_reshape_index_mapping`, while it builds the graph). The block
halves its input with `x.chunk(2)`, whose split sizes torch-pruning does not read on torch 2.x
(`_saved_split_size`); it guesses them from the layers around and gets the half that goes straight
to the concat wrong (IndexError in `_SplitIndexMapping`).

`make_traceable` changes the class of every block in place to one that computes the same thing
(bit for bit, same parameters and state dict) with torch-pruning-friendly pieces: the shuffle as one
autograd function (torch-pruning sees a single channel-preserving op; the ONNX exporter inlines its
forward, so the exported graph is torchvision's Reshape -> Transpose -> Reshape) and the halving as
a split with explicit sizes. torch-pruning still cannot follow channels *through* the shuffle, so
the convs writing into it stay whole (`fa_compress.models.keep_whole`); the channels inside each
branch, and the stem with the first block, prune.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.shufflenetv2 import InvertedResidual, channel_shuffle


class _ChannelShuffle(torch.autograd.Function):
    """torchvision's `channel_shuffle(x, groups)` as a single autograd node."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, groups: int) -> torch.Tensor:
        ctx.groups = groups
        return channel_shuffle(x, groups)  # (N, C, H, W) -> (N, C, H, W), channels interleaved

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        # the inverse of shuffling C channels in `groups` groups is shuffling them in C / groups
        return channel_shuffle(grad, grad.shape[1] // ctx.groups), None


class TraceableInvertedResidual(InvertedResidual):
    """ShuffleNetV2's block, forward unchanged in value; see the module docstring for why."""

    width: int  # output channels, fixed: the shuffle ties them to the next block's (set by make_traceable)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            half = x.shape[1] // 2
            x1, x2 = x.split((half, half), dim=1)  # (N, C, H, W) -> 2 x (N, C/2, H, W)
            out = torch.cat((x1, self.branch2(x2)), dim=1)  # (N, C, H, W)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)  # (N, C_in, H, W) -> (N, C, H/2, W/2)
        if out.shape[1] != self.width:  # a pruner that did not keep the keep_whole layers whole
            raise RuntimeError(f"a ShuffleNetV2 block must keep its {self.width} output channels (its channel "
                               f"shuffle ties them to the next block's), but has {out.shape[1]}; prune with the "
                               f"layers fa_compress.models.keep_whole(model) names left whole")
        return _ChannelShuffle.apply(out, 2)


def make_traceable(model: nn.Module) -> nn.Module:
    """Give every ShuffleNetV2 block of `model` the traceable forward, in place; returns `model`."""
    for module in model.modules():
        if type(module) is InvertedResidual:
            module.__class__ = TraceableInvertedResidual
            module.width = 2 * module.branch2[5].out_channels  # both halves are branch_features wide
    return model
