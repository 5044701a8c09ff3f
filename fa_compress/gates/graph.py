"""How torch-pruning sees a gate: the pruner that removes gate entries with their channels, and the
tracing guard every dependency graph of a gated model is built under.

>>> with traceable(model):
...     graph = tp.DependencyGraph().build_dependency(model, example, customized_pruners=GATE_PRUNERS)
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch_pruning as tp
from torch import nn

from ..errors import ConfigError
from .gate import GatedBatchNorm2d
from .norm_free import GatedConv2d, GatedLayerNorm, GatedLinear


def _prune_gate(layer: nn.Module, idxs: Sequence[int], pruner: tp.pruner.function.BasePruningFunc) -> None:
    """Remove the gate entries (and the traced origins) of the pruned channels `idxs` of `layer`."""
    keep = sorted(set(range(layer.gate.numel())) - set(idxs))
    layer.gate = pruner._prune_parameter_and_grad(layer.gate, keep, 0)
    origin = getattr(layer, "channel_origin", None)  # which dense channels survive (pruning/fade.py)
    if origin is not None:
        layer.channel_origin = origin[keep]


class GatedBatchNormPruner(tp.pruner.function.BatchnormPruner):
    """torch-pruning's BatchNorm pruner, also removing the gate entries of pruned channels."""

    def prune_out_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
        _prune_gate(layer, idxs, self)
        super().prune_out_channels(layer, idxs)
        return layer

    prune_in_channels = prune_out_channels  # a BatchNorm ties its input and output channels


class OrderedLayerNormPruner(tp.pruner.function.LayernormPruner):
    """torch-pruning's LayerNorm pruner over the last axis (the channels), keeping the remaining channels in
    their order: torch-pruning 1.6's own `keep_idxs.sort()` sorts a copy, so the channels left came out in a
    set's order, scrambled whenever few of many were kept (a ConvNeXt block with 12 of its 16 channels cut
    changed its output by 0.32 of its largest value)."""

    def prune_out_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
        keep = sorted(set(range(self.get_out_channels(layer))) - set(idxs))
        if layer.weight is not None:
            layer.weight = self._prune_parameter_and_grad(layer.weight, keep, 0)  # (C,) -> (C',)
        if layer.bias is not None:
            layer.bias = self._prune_parameter_and_grad(layer.bias, keep, 0)  # (C,) -> (C',)
        layer.normalized_shape = (len(keep),)
        return layer

    prune_in_channels = prune_out_channels  # a LayerNorm ties its input and output channels


class GatedLayerNormPruner(OrderedLayerNormPruner):
    """The ordered LayerNorm pruner, also removing gate entries."""

    def prune_out_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
        _prune_gate(layer, idxs, self)
        return super().prune_out_channels(layer, idxs)

    prune_in_channels = prune_out_channels  # a LayerNorm ties its input and output channels

    def get_out_channels(self, layer: nn.Module) -> int:
        return int(layer.normalized_shape[-1])

    get_in_channels = get_out_channels


class GatedConvPruner(tp.pruner.function.ConvPruner):
    """torch-pruning's conv pruner, also removing the gate entries of pruned output channels."""

    def prune_out_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
        _prune_gate(layer, idxs, self)
        super().prune_out_channels(layer, idxs)
        return layer


class GatedLinearPruner(tp.pruner.function.LinearPruner):
    """torch-pruning's linear pruner, also removing the gate entries of pruned output features."""

    def prune_out_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
        _prune_gate(layer, idxs, self)
        super().prune_out_channels(layer, idxs)
        return layer


GATE_PRUNER = GatedBatchNormPruner()
GATE_PRUNERS = {GatedBatchNorm2d: GATE_PRUNER, GatedLayerNorm: GatedLayerNormPruner(), GatedConv2d: GatedConvPruner(),
                GatedLinear: GatedLinearPruner()}


def layernorm_pruners(model: nn.Module) -> dict[type, tp.pruner.function.BasePruningFunc]:
    """The ordered pruner for every plain LayerNorm class in `model` (torch-pruning looks pruners up by exact
    class, so LayerNorm2d subclasses are named one by one), for criteria that prune an ungated model."""
    ordered = OrderedLayerNormPruner()
    return {type(m): ordered for m in model.modules() if isinstance(m, nn.LayerNorm) and not isinstance(m, GatedLayerNorm)
            and len(m.normalized_shape) == 1}


def pruner_of(gate: nn.Module) -> tp.pruner.function.BasePruningFunc:
    """The pruner torch-pruning uses for the gated layer `gate`."""
    return GATE_PRUNERS[type(gate)]


def is_gate_output(dep) -> bool:
    """True when a torch-pruning dependency removes output channels of a gated layer (and its gates)."""
    pruner = GATE_PRUNERS.get(type(dep.layer))
    return pruner is not None and dep.pruning_fn == pruner.prune_out_channels


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


# torch-pruning's grouping can take exponential time on blocks it cannot follow (timm's RexNet did not
# finish in 15 min); a graph of a CNN it follows takes seconds to a minute on 2 CPU cores.
GRAPH_LIMIT_S = 600


@contextmanager
def graph_time_limit(seconds: int = GRAPH_LIMIT_S) -> Iterator[None]:
    """Raise `ConfigError` when the block takes longer than `seconds` (building torch-pruning's graph).

    Bounded with SIGALRM, so only on the main thread of a Unix process; elsewhere unbounded.
    """
    if not hasattr(signal, "SIGALRM") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(_signum, _frame):
        raise ConfigError(f"torch-pruning's dependency graph of this model did not finish in {seconds} s; "
                          f"its blocks couple channels in a way torch-pruning cannot group. Pick another model, "
                          f"or keep those layers whole (ignore NAME)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
