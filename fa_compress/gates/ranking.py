"""Reading the gates as a channel ranking: amplified channels matter, near-zero ones are noise."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .insert import iter_gates
from .norm_free import GatedLayerNorm, GatedLinear

NOISE_BELOW = 0.1  # |gate| under this is counted as a noise channel (gates start at 1)


@dataclass(frozen=True)
class LayerRanking:
    """One gated layer's channels, ranked by gate value (largest first)."""

    layer: str
    stage: str
    channels: int
    order: tuple[int, ...]        # channel indices, most important first
    gates: tuple[float, ...]      # gate values in that order
    amplified: int                # gate > 1
    noise: int                    # |gate| < NOISE_BELOW
    mean_gate: float

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def _stage_names(model: nn.Module, img_size: int) -> dict[str, str]:
    """Name each gated layer's stage by its feature-map resolution, e.g. 'stride 8 (8x8)'."""
    sizes: dict[str, tuple[int, int]] = {}
    hooks = [m.register_forward_hook(lambda _m, _i, out, name=name: sizes.__setitem__(name, _hw(_m, out)))
             for name, m in iter_gates(model)]
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        model(torch.zeros(1, 3, img_size, img_size, device=device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return {name: f"stride {img_size // hw[0]} ({hw[0]}x{hw[1]})" for name, hw in sizes.items()}


def _hw(gate: nn.Module, out: torch.Tensor) -> tuple[int, int]:
    """(H, W) of a gated layer's output: (N, C, H, W), or (N, H, W, C) for a channels-last LayerNorm or Linear."""
    channels_last = isinstance(gate, GatedLinear) or (isinstance(gate, GatedLayerNorm) and not gate.channels_first)
    return tuple(out.shape[1:3]) if channels_last else tuple(out.shape[-2:])


def gate_ranking(model: nn.Module, img_size: int = 64) -> list[LayerRanking]:
    """Per gated layer: channels sorted by gate value, with amplified and noise counts."""
    stages = _stage_names(model, img_size)
    rankings = []
    for name, m in iter_gates(model):
        g = m.gate.detach().float().cpu()
        values, order = torch.sort(g, descending=True)
        rankings.append(LayerRanking(
            layer=name, stage=stages.get(name, "unused"), channels=g.numel(),
            order=tuple(order.tolist()), gates=tuple(round(v, 6) for v in values.tolist()),
            amplified=int((g > 1).sum()), noise=int((g.abs() < NOISE_BELOW).sum()),
            mean_gate=float(g.mean())))
    return rankings


def gates_by_stage(rankings: list[LayerRanking]) -> dict[str, list[float]]:
    """All gate values grouped by stage, in network order (for histograms)."""
    out: dict[str, list[float]] = {}
    for r in rankings:
        out.setdefault(r.stage, []).extend(r.gates)
    return out
