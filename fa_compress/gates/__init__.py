"""Attention gates: one learnable scalar per conv output channel (after its BatchNorm, its LayerNorm over
channels, or in the conv itself where no norm follows; in a ConvNeXt block's MLP, on its hidden channels)."""

from .gate import ChannelGate, GatedBatchNorm2d
from .norm_free import GatedConv2d, GatedLayerNorm, GatedLinear
from .sites import GateSites, find_gate_sites
from .ranking import LayerRanking, gate_ranking, gates_by_stage
from .insert import (
    fold_gate_into_batchnorm,
    fold_gate_into_conv,
    fold_gates,
    gate_l1,
    has_gates,
    insert_gates,
    iter_gates,
)

__all__ = [
    "ChannelGate", "GateSites", "GatedBatchNorm2d", "GatedConv2d", "GatedLayerNorm", "GatedLinear",
    "find_gate_sites", "fold_gate_into_batchnorm", "fold_gate_into_conv", "fold_gates", "gate_l1",
    "has_gates", "insert_gates", "iter_gates", "LayerRanking", "gate_ranking", "gates_by_stage",
]
