"""Sparsity penalties on the gates during fine-tuning, by name.

- `l1`: mean |g| over all gated channels (the paper's reading: unimportant gates go to 0).
- `cost-l1`: each gate's |g| weighted by the MACs its channel costs, normalised to mean 1
  (MorphNet, Gordon et al. 2018): expensive channels must earn their keep, so a MAC budget is
  met by cutting where the compute is.
- `polar`: polarisation (Zhuang et al., NeurIPS 2020), mean over channels of `t*|g| - |g - mean(g)|`:
  pushes gates apart, towards 0 or away from it, so the cut falls in a gap.

>>> penalty = make_gate_penalty("cost-l1", model, img_size=64)
>>> loss = ce + cfg.gate_l1 * penalty(model)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..errors import unknown_name
from .costs import gate_costs
from .insert import gate_l1, iter_gates

PENALTIES = ("l1", "cost-l1", "polar")
POLAR_T = 1.2  # Zhuang et al.'s t: above 1 the penalty still pulls the gates' mass towards 0

Penalty = Callable[[nn.Module], torch.Tensor]


def _cost_l1(model: nn.Module, img_size: int, keep_whole: Sequence[str]) -> Penalty:
    costs = gate_costs(model, img_size, keep_whole)
    flat = torch.cat(list(costs.values()))
    mean = flat[flat > 0].mean() if (flat > 0).any() else torch.tensor(1.0, dtype=torch.float64)
    weights = {n: (c.clamp(min=float(mean) * 1e-3) / mean).float() for n, c in costs.items()}

    def penalty(m: nn.Module) -> torch.Tensor:
        terms = [(weights[n].to(g.gate.device) * g.gate.abs()).view(-1) for n, g in iter_gates(m)]
        return torch.cat(terms).mean()

    return penalty


def _polar(m: nn.Module) -> torch.Tensor:
    gates = torch.cat([g.gate.view(-1) for _, g in iter_gates(m)])  # (all gated channels,)
    return (POLAR_T * gates.abs() - (gates - gates.mean()).abs()).mean()


def make_gate_penalty(name: str, model: nn.Module, img_size: int = 64, keep_whole: Sequence[str] = ()) -> Penalty:
    """The penalty called `name`, ready to be added (times `gate_l1`) to the loss. `keep_whole`: names of
    layers torch-pruning cannot follow (`fa_compress.models.keep_whole`); their channels cost nothing."""
    if name == "l1":
        return gate_l1
    if name == "cost-l1":
        return _cost_l1(model, img_size, keep_whole)
    if name == "polar":
        return _polar
    raise unknown_name("gate penalty", name, PENALTIES)
