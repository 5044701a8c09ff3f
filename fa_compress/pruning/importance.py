"""Channel importance criteria for torch-pruning, by name; `gate` is facompress's own.

A torch-pruning *group* is every layer slice that must be removed together (a ResNet stage's
residual stream couples each block's last BatchNorm and the downsample's; a depthwise conv ties its
input and output). `GateImportance` scores each channel of a group by the gates of every gated
BatchNorm in it and combines them with `reduction`.

>>> imp = make_importance("gate", reduction="mean")
>>> pruner = tp.pruner.MetaPruner(model, example, importance=imp, customized_pruners=GATE_PRUNERS)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch_pruning as tp
from torch import nn

from ..errors import unknown_name
from ..gates import ChannelGate
from ..gates.costs import group_channel_costs
from ..gates.graph import GATE_PRUNERS, is_gate_output
from ..errors import InternalError

REDUCTIONS = ("mean", "max", "sum", "prod")
# What a gated channel is scored by: `taylor`, |g * dL/dg| summed over training batches
# (fa_compress.pruning.gate_scores; the default, see DEFAULT_GATE_SCORE); `value`, the gate |g| itself
# (the paper's reading; `gate` is its old name, kept so older runs still load); `scale`, the whole
# multiplier after normalisation |g * gamma / sqrt(var + eps)|.
SCORES = ("taylor", "value", "gate", "scale")
DEFAULT_GATE_SCORE = "taylor"  # chosen by benchmarks/prune_pareto.py on three tasks


# Equal gates (e.g. never trained) would tie, and torch-pruning's global threshold then removes
# nothing; ties are broken by |gamma|, then by channel index, far below any learned difference.
# Scores are float64 so these terms survive next to gates of order 1.
TIE_BREAK = 1e-6


def _channel_scores(layer: ChannelGate, idxs: list[int], score: str) -> torch.Tensor:
    gate = layer.gate.detach()[idxs].abs().double()
    if score == "taylor":
        taylor = getattr(layer, "taylor_score", None)
        if taylor is None or taylor.numel() != layer.num_features:

            raise InternalError("gate score `taylor` asked for, but the gates were not scored "
                                "(call fa_compress.pruning.gate_scores.accumulate_gate_taylor first)")
        ramp = torch.arange(len(idxs), dtype=torch.float64) / max(len(idxs), 1)
        return taylor[idxs].double() + 1e-12 * (gate + 1e-3 * ramp)  # ties: by gate, then index
    if score in ("gate", "value"):
        gamma = layer.channel_gamma()[idxs].double()
        ramp = torch.arange(len(idxs), dtype=torch.float64) / max(len(idxs), 1)
        return gate + TIE_BREAK * gamma / gamma.max().clamp(min=1e-12) + TIE_BREAK * 1e-3 * ramp
    # `scale`: the channel's whole multiplier after normalisation, |gate * gamma / sqrt(var + eps)|
    return gate * layer.channel_scale()[idxs].double()


class GateImportance(tp.importance.Importance):
    """Score channels by their learned gates, combined over every gated layer of the group."""

    def __init__(self, reduction: str = "mean", score: str = "gate", *, per_mac: float = 0.0,
                 areas: dict[nn.Module, int] | None = None) -> None:
        if reduction not in REDUCTIONS:
            raise unknown_name("gate reduction", reduction, REDUCTIONS)
        if score not in SCORES:
            raise unknown_name("gate score", score, SCORES)
        if per_mac and areas is None:
            raise ValueError("cost-normalised scores need the convs' output areas (costs.conv_output_areas)")
        self.reduction, self.score, self.per_mac, self.areas = reduction, score, per_mac, areas

    @torch.no_grad()
    def __call__(self, group) -> torch.Tensor | None:
        scores: list[torch.Tensor] = []
        roots: list[list[int]] = []
        for i, (dep, idxs) in enumerate(group):
            if is_gate_output(dep):
                scores.append(_channel_scores(dep.layer, list(idxs), self.score))
                roots.append(list(group[i].root_idxs))
        if any(r is None for rs in roots for r in rs):
            return None  # torch-pruning could not map this group's indices to its root
        if not scores:
            return None  # no gate in this group: torch-pruning leaves it alone
        reduced = self._reduce(scores, roots)
        if self.per_mac:
            # HALP-style: importance per MAC removed, so a cut to a MAC budget spends it where the
            # loss per MAC saved is lowest (per_mac = 1), or halfway (0.5).
            cost = group_channel_costs(group, self.areas)
            if cost is None or cost.numel() != reduced.numel():
                return reduced
            reduced = reduced / cost.clamp(min=1.0) ** self.per_mac
        return reduced

    def _reduce(self, scores: list[torch.Tensor], roots: list[list[int]]) -> torch.Tensor:
        n = max(max(r) for r in roots) + 1
        init = {"mean": 0.0, "sum": 0.0, "max": float("-inf"), "prod": 1.0}[self.reduction]
        out = torch.full((n,), init, dtype=torch.float64)
        count = torch.zeros(n, dtype=torch.float64)
        for s, r in zip(scores, roots):
            idx = torch.tensor(r)
            if self.reduction in ("mean", "sum"):
                out.scatter_add_(0, idx, s.cpu())
            elif self.reduction == "max":
                out[idx] = torch.maximum(out[idx], s.cpu())
            else:
                out[idx] = out[idx] * s.cpu()
            count.scatter_add_(0, idx, torch.ones_like(s.cpu()))
        if self.reduction == "mean":
            out = out / count.clamp(min=1)
        return out


# What a channel that must stay scores: above any global threshold.
LIFTED = torch.finfo(torch.float64).max


def split_slices(group, n: int) -> list[torch.Tensor]:
    """Root indices of every layer in `group` that holds only some of its `n` channels, once each: the
    convs of a split (MixNet's mixed depthwise conv runs one conv per kernel size over a slice of the
    channels), or a layer reading one half of a chunk."""
    seen: set[tuple[int, ...]] = set()
    for i in range(len(group)):
        root = tuple(group[i].root_idxs)
        if 0 < len(root) < n and None not in root:
            seen.add(root)
    return [torch.tensor(root, dtype=torch.long) for root in sorted(seen)]


class FlooredImportance(tp.importance.Importance):
    """Any criterion, with each group's best channels, and each layer's in it, made unprunable, so no
    layer loses more than `max_prune` of its channels.

    torch-pruning's global ranking applies its `max_pruning_ratio` only before ranking: a group whose
    channels all score under the global threshold would be emptied, so torch-pruning skips it and
    prunes *nothing* there. Scores that span orders of magnitude across layers (Taylor scores) then
    cannot reach a budget: on Lite0 a keep ratio of 0.1 removed 14% of the channels. Lifting each
    group's top `ceil((1 - max_prune) * n)` channels (at least `round_to` of them) above any threshold
    makes the cap real: such a group is pruned down to that floor instead of skipped, and
    `feasible_ratio` keeps the global ratio within what the floors allow.

    A group can span layers that each hold a slice of its channels (`split_slices`), and torch-pruning
    skips the whole group, silently, when its cut would empty any one of them. Scores that differ by
    slice put whole slices under the threshold: tied gates divided by each channel's MAC cost rank
    every channel of MixNet's 9x9 depthwise slice below its 3x3 slice, and timm:mixnet_s lost no
    channel at keep 0.6. So each slice's top `ceil((1 - max_prune) * n)` channels (at least one) are
    lifted too; a group without slices is floored exactly as before.
    """

    def __init__(self, base: tp.importance.Importance, max_prune: float, round_to: int = 1) -> None:
        self.base, self.max_prune, self.round_to = base, max_prune, max(round_to, 1)

    def floor(self, n: int) -> int:
        """Channels of an `n`-channel group that always stay: the cap, and at least `round_to`
        (torch-pruning rounds what remains *down* to a multiple of `round_to`, so fewer would empty it)."""
        return min(n, max(self.round_to, math.ceil((1 - self.max_prune) * n - 1e-9)))

    def slice_floor(self, n: int) -> int:
        """Channels of an `n`-channel slice of a group that always stay: the cap, and at least one
        (rounding applies to the group, not to its slices)."""
        return min(n, max(1, math.ceil((1 - self.max_prune) * n - 1e-9)))

    def _rounded_up(self, count: int, n: int) -> int:
        """`count`, rounded up to a multiple of `round_to`, at most `n`."""
        return min(n, -(-count // self.round_to) * self.round_to)

    def __call__(self, group) -> torch.Tensor | None:
        imp = self.base(group)
        if imp is None or imp.numel() == 0:
            return imp
        out = imp.clone().double()
        n = out.numel()
        out[torch.topk(out, self.floor(n)).indices] = LIFTED
        slices = split_slices(group, n)
        if not slices:
            return out
        for idx in slices:  # channels the group floor lifted count towards a slice's
            out[idx[torch.topk(out[idx], self.slice_floor(len(idx))).indices]] = LIFTED
        # torch-pruning rounds what remains down to a multiple of `round_to` by cutting the lowest-ranked
        # channels, lifted ones too once the free ones run out, and one of those may be a slice's last.
        # With a multiple lifted, what remains rounds down to no fewer than them.
        lifted = int((out == LIFTED).sum())
        out[torch.topk(out, self._rounded_up(lifted, n)).indices] = LIFTED
        return out


def feasible_ratio(pruner, importance: FlooredImportance, ratio: float) -> float:
    """`ratio`, lowered to the largest share of the ranked scores the floors leave prunable (a little under
    it, so the global threshold never reaches a lifted score and empties a group).

    torch-pruning applies the ratio to the scores it ranks, not to the model's channels: a group the
    criterion does not score (a conv and GroupNorm with no gate) is not ranked, and a group with channel
    groups (a GroupNorm's) is ranked by one score per position within a channel group. Counting every
    channel of every group instead let the threshold reach lifted scores: a gated net with one
    GroupNorm had every cut refused at any keep, and came back unpruned."""
    total = kept = 0
    with torch.random.fork_rng(devices=[]):  # the `random` criterion draws; the step's draws stay the same
        for group in pruner.DG.get_all_groups(ignored_layers=pruner.ignored_layers,
                                              root_module_types=pruner.root_module_types):
            # the channel grouping torch-pruning's own ranking averages over (torch-pruning is pinned)
            ranked = _ranked_lifted(importance(group), pruner._get_channel_groups(group))
            total, kept = total + ranked[0], kept + ranked[1]
    if total == 0:
        return ratio
    return min(ratio, max(0.0, 1 - kept / total - 0.5 / total))


def _ranked_lifted(scores: torch.Tensor | None, channel_groups: int) -> tuple[int, int]:
    """How many scores torch-pruning ranks for a group scored `scores`, and how many of them are lifted.

    With channel groups it ranks each position's mean over the groups, which a lifted channel in any
    group lifts too."""
    if scores is None or scores.numel() == 0:
        return 0, 0  # torch-pruning skips the group
    lifted = scores == LIFTED  # (n,)
    if channel_groups > 1:
        lifted = lifted.view(channel_groups, -1).any(0)  # (n,) -> (groups, n / groups) -> (n / groups,)
    return lifted.numel(), int(lifted.sum())


IMPORTANCES = ("gate", "l1", "bn", "taylor", "random", "group")  # group: DepGraph's group L2 norm
NEEDS_GATES = ("gate",)
NEEDS_GRADIENTS = ("taylor",)


def make_importance(name: str, *, reduction: str = "mean", score: str = "gate", per_mac: float = 0.0,
                    areas: dict[nn.Module, int] | None = None, max_prune: float | None = None,
                    round_to: int = 1) -> tp.importance.Importance:
    """The criterion called `name`; `gate` is facompress's, the others are torch-pruning's own.

    With `max_prune`, wrapped in `FlooredImportance` so that cap holds in a global ranking."""
    imp = _criterion(name, reduction=reduction, score=score, per_mac=per_mac, areas=areas)
    return FlooredImportance(imp, max_prune, round_to) if max_prune is not None else imp


def _criterion(name: str, *, reduction: str, score: str, per_mac: float,
               areas: dict[nn.Module, int] | None) -> tp.importance.Importance:
    if name == "gate":
        return GateImportance(reduction=reduction, score=score, per_mac=per_mac, areas=areas)
    if name == "l1":
        return tp.importance.MagnitudeImportance(p=1)
    if name == "bn":
        return tp.importance.BNScaleImportance()
    if name == "taylor":
        return tp.importance.TaylorImportance()
    if name == "random":
        return tp.importance.RandomImportance()
    if name == "group":  # what torch-pruning's GroupNormPruner ranks by after its sparse training
        return tp.importance.GroupMagnitudeImportance(p=2)
    raise unknown_name("importance", name, IMPORTANCES)
