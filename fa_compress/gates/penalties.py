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

from collections.abc import Callable

import torch
from torch import nn

from ..errors import unknown_name
from .insert import gate_l1, iter_gates

PENALTIES = ("l1", "cost-l1", "polar")
POLAR_T = 1.2  # Zhuang et al.'s t: above 1 the penalty still pulls the gates' mass towards 0

Penalty = Callable[[nn.Module], torch.Tensor]


def gate_costs(model: nn.Module, img_size: int) -> dict[str, torch.Tensor]:
    """MACs removed with each gated channel (its whole torch-pruning group), by gate module name."""
    import torch_pruning as tp

    from ..prune.costs import conv_output_areas, group_channel_costs

    device = next(model.parameters()).device
    example = torch.zeros(1, 3, img_size, img_size, device=device)
    areas = conv_output_areas(model, example)
    from ..models.keep_whole import keep_whole
    from ..prune.importance import GATE_PRUNERS
    from ..prune.pruner import traceable

    with traceable(model):
        graph = tp.DependencyGraph().build_dependency(model, example_inputs=example,
                                                      customized_pruners=GATE_PRUNERS)
    names = {m: n for n, m in iter_gates(model)}
    costs = {n: torch.zeros(m.num_features, dtype=torch.float64) for n, m in iter_gates(model)}
    modules = dict(model.named_modules())
    whole = [modules[n] for n in keep_whole(model)]  # groups torch-pruning cannot follow: never cut, no cost
    for group in graph.get_all_groups(ignored_layers=whole, root_module_types=(nn.Conv2d, nn.Linear)):
        cost = group_channel_costs(group, areas)
        if cost is None:
            continue
        for i in range(len(group)):
            layer, root = group[i].dep.layer, list(group[i].root_idxs)
            if layer in names and len(root) == len(group[i].idxs):
                idx = torch.tensor(group[i].idxs, dtype=torch.long)
                costs[names[layer]][idx] = torch.maximum(costs[names[layer]][idx], cost[torch.tensor(root)])
    return costs


def _cost_l1(model: nn.Module, img_size: int) -> Penalty:
    costs = gate_costs(model, img_size)
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


def make_gate_penalty(name: str, model: nn.Module, img_size: int = 64) -> Penalty:
    """The penalty called `name`, ready to be added (times `gate_l1`) to the loss."""
    if name == "l1":
        return gate_l1
    if name == "cost-l1":
        return _cost_l1(model, img_size)
    if name == "polar":
        return _polar
    raise unknown_name("gate penalty", name, PENALTIES)
