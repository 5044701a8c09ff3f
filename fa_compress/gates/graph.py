"""How torch-pruning sees a gate: the pruner that removes gate entries with their channels, and the
tracing guard every dependency graph of a gated model is built under.

>>> with traceable(model):
...     graph = tp.DependencyGraph().build_dependency(model, example, customized_pruners=GATE_PRUNERS)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch_pruning as tp
from torch import nn

from .gate import GatedBatchNorm2d


class GatedBatchNormPruner(tp.pruner.function.BatchnormPruner):
    """torch-pruning's BatchNorm pruner, also removing the gate entries of pruned channels."""

    def prune_out_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
        keep = sorted(set(range(layer.num_features)) - set(idxs))
        super().prune_out_channels(layer, idxs)
        layer.gate = self._prune_parameter_and_grad(layer.gate, keep, 0)
        origin = getattr(layer, "channel_origin", None)  # which dense channels survive (pruning/fade.py)
        if origin is not None:
            layer.channel_origin = origin[keep]
        return layer

    prune_in_channels = prune_out_channels  # a BatchNorm ties its input and output channels


GATE_PRUNER = GatedBatchNormPruner()
GATE_PRUNERS = {GatedBatchNorm2d: GATE_PRUNER}


@contextmanager
def traceable(model: nn.Module) -> Iterator[nn.Module]:
    """Every parameter requiring grad while torch-pruning traces `model`, restored afterwards.

    torch-pruning follows autograd's graph: a frozen conv (after a `gates` phase the backbone is
    frozen) has no grad_fn, so its edge to the next BatchNorm vanishes and the BatchNorm is
    grouped without its conv. On a fine-tuned Lite0 that pruned the stem BatchNorm to 16 channels
    and left its conv 32 wide (the model then failed to run).
    """
    saved = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in saved:
        p.requires_grad_(True)
    try:
        yield model
    finally:
        for p, flag in saved:
            p.requires_grad_(flag)
