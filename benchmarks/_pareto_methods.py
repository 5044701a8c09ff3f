"""The compression methods benchmarks/prune_pareto.py compares, and the fine-tunings they start from.

Every method prunes to the same MAC budget (`fa_compress.pruning.budget`), so they compare at equal
compute. Methods differ in the model they start from and in how channels are ranked:

- `gated` start: the default `facompress finetune` (gates, `head,gates,gates,gates`, gate L1).
  `gate` is facompress's default: its ranking (whatever `PruneSettings()` holds: Taylor scores of
  the gates divided by the square root of each channel's MAC cost) and its one epoch after
  fine-tuning spent fading the planned cut out before making it; `gate-cut` the same ranking cut at
  once and recovered for one epoch (`--fade-epochs 0`); `gate-mac0` the plain Taylor scores,
  `gate-mac` divided by the full cost (HALP-style); `gate-value` ranks by the gate values (the
  paper's reading); `taylor`, `bn`, `l1`, `random` are torch-pruning's criteria on the same model.
- torch-pruning's iterative pruning, `taylor-iter` and `l1-iter`: the cut made in three steps on the
  schedule of torch-pruning's `iterative_steps` (each step re-scores the model the last one left, and a
  third of the training follows each), with each step's MACs set by the budget search (1 -> target, linear
  in MACs) so it ends at the same compute as the others.
- torch-pruning's own sparse training, given the same number of fine-tuning epochs:
  `bnscale-sparse` (Network Slimming: L1 on BatchNorm scales through `BNScalePruner.regularize`,
  `head,bn,bn,bn`, then ranked by BatchNorm scale) and `group-sparse` (DepGraph's group sparsity,
  `GroupNormPruner.regularize`, `head,all,all,all`, ranked by group L2 norm).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.data import DataLoader

import fa_compress as fc
from fa_compress.gates import insert_gates
from fa_compress.models import build_model, get_head
from fa_compress.train.config import TrainConfig

ARCH = "efficientnet_lite0"  # the model of the first three tasks; a zoo task names its own (benchmarks/_tasks.py)


@dataclass(frozen=True)
class Start:
    """How the model a method prunes is fine-tuned."""

    name: str
    gated: bool
    schedule: tuple[str, ...]
    sparse: str | None = None  # torch-pruning pruner whose `regularize` runs after every backward
    train: dict = field(default_factory=dict)  # TrainConfig overrides


STARTS = {
    "gated": Start("gated", True, TrainConfig().schedule),
    "gated-cost": Start("gated-cost", True, TrainConfig().schedule, train={"gate_penalty": "cost-l1"}),
    "gated-polar": Start("gated-polar", True, TrainConfig().schedule, train={"gate_penalty": "polar"}),
    "bnscale": Start("bnscale", False, ("head", "bn", "bn", "bn"), sparse="bnscale"),
    "groupnorm": Start("groupnorm", False, ("head", "all", "all", "all"), sparse="groupnorm"),
}


@dataclass(frozen=True)
class Method:
    """A start and the `PruneSettings` overrides that rank its channels."""

    name: str
    start: str
    settings: dict
    fade_epochs: int = 0  # epochs fading the planned cut out before it is made (fa_compress.pruning.fade)
    fade_until: float | None = None  # the fraction of those epochs the fade takes; None: the library's
    fade_batch: int | None = None  # images per fade step; None: the library's (fa_compress.pruning.fade)
    recover: bool = True  # False: no recovery after the cut (the fade epoch took its place)
    recover_epochs: int | None = None  # None: the benchmark's --recover-epochs
    iterative: int = 1  # cuts in torch-pruning's iterative schedule (re-scored, training between); 1: one cut
    targets: tuple[float, ...] | None = None  # the MAC targets it runs at (None: every one asked for)


# Every stored row but the default's was measured when channel counts were rounded to multiples of 8
# (the library's default before it became 16): those methods keep 8, so rerunning them repeats their rows.
R8 = {"round_to": 8}

METHODS = {
    # the defaults: Taylor score / MAC^0.5, channel counts in multiples of 16, and the one epoch after
    # fine-tuning spent fading the planned cut out (batch 8, reaching 0 at 30% of the epoch: `facompress
    # prune`'s default with the gate ranking); no recovery after the cut
    "gate": Method("gate", "gated", {"importance": "gate"}, fade_epochs=1, recover=False),
    # the same in multiples of 8 (`--round-to 8`, the rounding before)
    "gate-r8": Method("gate-r8", "gated", {"importance": "gate", **R8}, fade_epochs=1, recover=False),
    # the same ranking (multiples of 8) cut at once, then one `gates` recovery epoch (`--fade-epochs 0`)
    "gate-cut": Method("gate-cut", "gated", {"importance": "gate", **R8}),
    # the fade reaching 0 at 60% of the epoch (the library's first fade) instead of 30%
    "gate-until60": Method("gate-until60", "gated", {"importance": "gate", **R8}, fade_epochs=1, recover=False,
                           fade_until=0.6),
    "gate-r16-until60": Method("gate-r16-until60", "gated", {"importance": "gate", "round_to": 16}, fade_epochs=1,
                               recover=False, fade_until=0.6),
    # the fade at the fine-tuning's batch of 32 (the first fade runs, results/prune_pareto_batch32.md)
    "gate-fade": Method("gate-fade", "gated", {"importance": "gate", **R8}, fade_epochs=1, recover=False,
                        fade_batch=32),
    "gate-fade30": Method("gate-fade30", "gated", {"importance": "gate", **R8}, fade_epochs=1, recover=False,
                          fade_until=0.3, fade_batch=32),
    "gate-fade-rec": Method("gate-fade-rec", "gated", {"importance": "gate", **R8}, fade_epochs=1,
                            recover_epochs=1, fade_batch=32),  # 2 epochs in all: compare with --recover-epochs 2
    # rankings and penalties measured with the cut + recovery (results/calib_tops4*.md, prune_pareto_batch32.md)
    "gate-mac0": Method("gate-mac0", "gated", {"importance": "gate", "gate_per_mac": 0.0, **R8}),
    "gate-value": Method("gate-value", "gated", {"importance": "gate", "gate_score": "value", **R8}),
    "gate-mac": Method("gate-mac", "gated", {"importance": "gate", "gate_per_mac": 1.0, **R8}),
    "gate-mac0.5": Method("gate-mac0.5", "gated", {"importance": "gate", "gate_per_mac": 0.5, **R8}),
    "gate-cost": Method("gate-cost", "gated-cost", {"importance": "gate", **R8}),
    "gate-polar": Method("gate-polar", "gated-polar", {"importance": "gate", **R8}),
    # torch-pruning's criteria and sparse-training pruners, in multiples of 8 as they were measured
    "taylor": Method("taylor", "gated", {"importance": "taylor", **R8}),
    "taylor-r16": Method("taylor-r16", "gated", {"importance": "taylor", "round_to": 16}),  # the default's rounding
    # torch-pruning's iterative pruning (its `iterative_steps`): three cuts, each re-scored on the model the
    # one before left and followed by a third of the training, for the deep cuts
    "taylor-iter": Method("taylor-iter", "gated", {"importance": "taylor", **R8}, iterative=3, targets=(0.35, 0.25)),
    "l1-iter": Method("l1-iter", "gated", {"importance": "l1", **R8}, iterative=3, targets=(0.35, 0.25)),
    "bn": Method("bn", "gated", {"importance": "bn", **R8}),
    "l1": Method("l1", "gated", {"importance": "l1", **R8}),
    "random": Method("random", "gated", {"importance": "random", **R8}),
    "bnscale-sparse": Method("bnscale-sparse", "bnscale", {"importance": "bn", **R8}),
    "group-sparse": Method("group-sparse", "groupnorm", {"importance": "group", **R8}),
}
TORCH_PRUNING = ("taylor", "taylor-r16", "taylor-iter", "bn", "l1", "l1-iter", "random", "bnscale-sparse",
                 "group-sparse")


def _sparse_hook(kind: str | None, model: nn.Module, img_size: int, arch: str = ARCH):
    """torch-pruning's own sparse-training regulariser for `model`, as an `after_backward` hook."""
    if kind is None:
        return None
    import torch_pruning as tp

    example = torch.zeros(1, 3, img_size, img_size)
    head = get_head(model, arch)
    if kind == "bnscale":  # Network Slimming's lambda (1e-4)
        pruner = tp.pruner.BNScalePruner(model, example, importance=tp.importance.BNScaleImportance(),
                                         reg=1e-4, ignored_layers=[head])
    else:  # torch-pruning's defaults for GroupNormPruner
        pruner = tp.pruner.GroupNormPruner(model, example, importance=tp.importance.GroupMagnitudeImportance(p=2),
                                           reg=1e-4, ignored_layers=[head])
    return lambda m: pruner.regularize(m)


def fine_tune(start: Start, data, seed: int, img_size: int, arch: str = ARCH, *,
              min_phase_steps: int | None = None) -> tuple[nn.Module, dict]:
    """Fine-tune `arch` (ImageNet weights) as `start` says, through `fa_compress.finetune` (the path the
    `finetune` stage trains with); returns the model of the phase with the best validation accuracy.
    `min_phase_steps`: each phase's step floor (None: the library's)."""
    torch.manual_seed(seed)
    model = build_model(arch, num_classes=len(data.classes), weights="imagenet")
    if start.gated:
        insert_gates(model)
    hook = _sparse_hook(start.sparse, model, img_size, arch)
    result = fc.finetune(model, data.train, DataLoader(data.val, batch_size=128), schedule=start.schedule,
                         head=get_head(model, arch), device="cpu", after_backward=hook, seed=seed,
                         min_phase_steps=min_phase_steps, **start.train)
    return model, {"best_phase": result.best_index, "seconds": result.total_s, "schedule": list(start.schedule),
                   "train": start.train, "sparse": start.sparse,
                   "phase_steps": [p.steps.steps if p.steps is not None else None for p in result.phases]}
