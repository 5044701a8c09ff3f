"""What each channel of a torch-pruning group costs, in multiply-accumulates per image.

Removing channel c of a group removes one output filter of every conv that produces it and one
input slice of every conv or linear layer that reads it. Each conv's spatial output size comes from
one traced forward pass, so a channel's cost is exact for the input size given.

>>> areas = conv_output_areas(model, torch.zeros(1, 3, 64, 64))
>>> cost = group_channel_costs(group, areas)    # (n,) MACs per channel of the group's root
>>> costs = gate_costs(model, 64)                # gate name -> (C,) MACs removed with each channel
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch_pruning as tp
from torch import nn

from .graph import GATE_PRUNERS, graph_time_limit, is_gate_output, traceable
from .insert import iter_gates


@torch.no_grad()
def conv_output_areas(model: nn.Module, example: torch.Tensor) -> dict[nn.Module, int]:
    """H_out * W_out of every Conv2d (subclasses included) for input `example`, and the positions every
    Linear runs at (H * W for ConvNeXt's channels-last MLPs, 1 for a classifier), by module."""
    areas: dict[nn.Module, int] = {}
    hooks = [m.register_forward_hook(lambda mod, _i, out: areas.__setitem__(mod, out.shape[-2] * out.shape[-1]))
             for m in model.modules() if isinstance(m, nn.Conv2d)]
    hooks += [m.register_forward_hook(lambda mod, _i, out: areas.__setitem__(mod, out[0].numel() // out.shape[-1]))
              for m in model.modules() if isinstance(m, nn.Linear)]  # (1, ..., F): positions = numel / F
    was_training = model.training
    model.eval()
    try:
        model(example[:1])
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return areas


def _per_channel_macs(layer: nn.Module, pruning_fn, areas: dict[nn.Module, int]) -> float:
    """MACs one channel of `layer` costs when `pruning_fn` removes it (0 for non-compute layers)."""
    name = getattr(pruning_fn, "__name__", "")
    if isinstance(layer, nn.Conv2d):
        k = layer.kernel_size[0] * layer.kernel_size[1] * areas.get(layer, 1)
        if layer.groups > 1 and layer.groups == layer.in_channels:  # depthwise: one filter per channel
            return float(k * (layer.out_channels // layer.groups))
        if name == "prune_out_channels":
            return float(k * layer.in_channels // layer.groups)
        return float(k * layer.out_channels // layer.groups)
    if isinstance(layer, nn.Linear):
        return float(areas.get(layer, 1) * (layer.in_features if name == "prune_out_channels" else layer.out_features))
    return 0.0


def group_channel_costs(group, areas: dict[nn.Module, int]) -> torch.Tensor | None:
    """(n,) float64 MACs per channel of the group's root indices; None when indices do not map."""
    seen: set[tuple[int, str]] = set()
    parts: list[tuple[list[int], float]] = []
    roots: list[list[int]] = []
    for i in range(len(group)):
        dep, root = group[i].dep, list(group[i].root_idxs)
        if any(r is None for r in root):
            return None
        roots.append(root)
        key = (id(dep.layer), getattr(dep.pruning_fn, "__name__", ""))
        if key in seen:
            continue
        seen.add(key)
        cost = _per_channel_macs(dep.layer, dep.pruning_fn, areas)
        if cost:
            parts.append((root, cost))
    n = max((max(r) for r in roots if r), default=-1) + 1
    out = torch.zeros(n, dtype=torch.float64)
    for root, cost in parts:
        out.index_add_(0, torch.tensor(root, dtype=torch.long), torch.full((len(root),), cost, dtype=torch.float64))
    return out


def gate_costs(model: nn.Module, img_size: int, keep_whole: Sequence[str] = ()) -> dict[str, torch.Tensor]:
    """MACs removed with each gated channel (its whole torch-pruning group), by gate module name;
    the layers named in `keep_whole` (which torch-pruning cannot follow) are never cut and cost nothing."""
    device = next(model.parameters()).device
    example = torch.zeros(1, 3, img_size, img_size, device=device)
    areas = conv_output_areas(model, example)
    with traceable(model), graph_time_limit():
        graph = tp.DependencyGraph().build_dependency(model, example_inputs=example,
                                                      customized_pruners=GATE_PRUNERS)
    names = {m: n for n, m in iter_gates(model)}
    costs = {n: torch.zeros(m.num_features, dtype=torch.float64) for n, m in iter_gates(model)}
    modules = dict(model.named_modules())
    whole = [modules[n] for n in keep_whole]  # groups torch-pruning cannot follow: never cut, no cost
    for group in graph.get_all_groups(ignored_layers=whole, root_module_types=(nn.Conv2d, nn.Linear)):
        cost = group_channel_costs(group, areas)
        if cost is None:
            continue
        for i in range(len(group)):
            layer, root = group[i].dep.layer, list(group[i].root_idxs)
            # only where the group cuts the gated channels themselves: a gated conv or Linear is also in the
            # group of its input channels, whose indices are not its gate's
            if layer in names and is_gate_output(group[i].dep) and len(root) == len(group[i].idxs):
                idx = torch.tensor(group[i].idxs, dtype=torch.long)
                costs[names[layer]][idx] = torch.maximum(costs[names[layer]][idx], cost[torch.tensor(root)])
    return costs
