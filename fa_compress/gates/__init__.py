"""Attention gates: one learnable scalar per conv output channel (after its BatchNorm)."""

from .gate import GatedBatchNorm2d
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
    "GatedBatchNorm2d", "fold_gate_into_batchnorm", "fold_gate_into_conv", "fold_gates", "gate_l1",
    "has_gates", "insert_gates", "iter_gates", "LayerRanking", "gate_ranking", "gates_by_stage",
]
