"""Fade the planned cut out before making it (`facompress prune`, with the gate ranking).

A gate of 0 removes its channel exactly: `GatedBatchNorm2d` computes `BN(x) * g` with the gate on
both the scale and the shift, so the channel is 0 before any activation or residual add, and cutting
it changes nothing downstream. `plan_cut` finds the channels a budget would remove (on a copy);
`fade_out` spends a number of `gates` steps (the chain's budget, `steps.py`) driving exactly those
gates to 0 (linearly over the first `until` of the steps, then held there) while every other gate and
the classifier adapt, and leaves them at 0. `pruner.cut_channels_exactly` then removes exactly those
channels (ranking the faded model again would tie them at a Taylor score of 0 with channels no scoring
image reaches, and keep some: the fresh-clone demo's cut came out at 0.507 of dense MACs for a 0.500
plan), so the accuracy right after the cut is the faded model's and its MACs are the plan's.

>>> masks, found = plan_cut(model, head, settings, example, Budget(target_macs=0.5), score_fn=...)
>>> fade_out(model, head, masks, train_set, cfg, ctx, bar, steps=200)  # in place; masks[name]: (C,) bool, True = cut
>>> pruned = cut_channels_exactly(model, example, masks)             # fa_compress.pruning.pruner
>>> faded, faded_head, masks, found = faded_copy(model, head, settings, example, budget, train_set, cfg, ctx, bar)
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace

import torch
from torch import nn
from torch.utils.data import Dataset

from ..errors import ConfigError
from ..gates import iter_gates
from ..train.config import TrainConfig
from ..train.distributed import Context
from ..train.loop import LossFn, run_image_phase
from ..train.progress import PhaseBar
from .budget import Budget, BudgetResult, module_name, prune_to_budget
from .pruner import PruneSettings
from .recover import DEFAULT_RECOVER_BATCH
from .steps import check_steps, epoch_steps

# The planned gates reach 0 at 30% of the fade's steps; the rest adapts to the cut (docs/decisions/fade.md).
DEFAULT_FADE_UNTIL = 0.3


def plan_cut(model: nn.Module, head: nn.Module, settings: PruneSettings, example: torch.Tensor, budget: Budget,
             gradient_fn: Callable | None = None,
             score_fn: Callable | None = None) -> tuple[dict[str, torch.Tensor], BudgetResult]:
    """Which channels of each gate pruning `model` to `budget` with `settings` removes: a (C,) bool
    mask per gated layer (True = cut), found by pruning a traced copy; `model` is left as it was."""
    if settings.importance != "gate":
        raise ConfigError(f"fading the cut out needs importance gate (got {settings.importance})")
    work = copy.deepcopy(model)
    for _, m in iter_gates(work):
        m.channel_origin = torch.arange(m.num_features)
    pruned, found = prune_to_budget(work, work.get_submodule(module_name(model, head)), settings, example, budget,
                                    gradient_fn, score_fn)
    kept = {name: m.channel_origin for name, m in pruned.named_modules()
            if getattr(m, "channel_origin", None) is not None}
    masks = {}
    for name, m in iter_gates(model):
        mask = torch.ones(m.num_features, dtype=torch.bool)
        mask[kept[name]] = False
        masks[name] = mask
    return masks, found


def cut_channels(masks: dict[str, torch.Tensor]) -> int:
    """How many channels the masks cut, over all gated layers."""
    return int(sum(int(m.sum()) for m in masks.values()))


def fade_out(model: nn.Module, head: nn.Module, masks: dict[str, torch.Tensor], train_ds: Dataset,
             cfg: TrainConfig, ctx: Context, bar: PhaseBar, *, steps: int | None = None,
             until: float = DEFAULT_FADE_UNTIL,
             batch_size: int | None = DEFAULT_RECOVER_BATCH,
             loss_fn: LossFn | None = None) -> tuple[float, float, float]:
    """Exactly `steps` optimizer steps of the `gates` phase (None: one epoch of `train_ds`), in place,
    in batches of `batch_size` images (the recovery's 8 by default; None: `cfg`'s), fading the masked
    gates from 1x to 0 over the first `until` of the steps; the masked gates end exactly 0. Returns
    (loss, accuracy, images/s) over the steps. No gate penalty: the budget, not the L1 term, decides
    what goes. `loss_fn`: the loss in place of the cross-entropy (a
    `train.distill.Distillation` from the dense model)."""
    check_steps("fade_steps", steps)
    if not 0 < until <= 1:
        raise ConfigError(f"the fade must end within its steps (until in (0, 1], got {until})")
    cfg = replace(cfg, gate_l1=0.0, batch_size=batch_size or cfg.batch_size)
    gates = {name: m for name, m in iter_gates(model) if name in masks and bool(masks[name].any())}
    steps = steps or epoch_steps(len(train_ds), cfg.batch_size, ctx)
    fade_steps = max(1, round(until * steps))
    cut = {name: masks[name].to(m.gate.device, m.gate.dtype) for name, m in gates.items()}  # (C,) 1 = cut

    def set_level(level: float) -> None:
        for name, m in gates.items():
            m.fade = 1 - (1 - level) * cut[name]  # (C,): 1 on kept channels, `level` on cut ones

    done = 0

    def step(_: nn.Module) -> None:
        nonlocal done
        done += 1
        set_level(max(0.0, 1 - done / fade_steps))

    set_level(1.0)
    try:
        return run_image_phase(model, head, "gates", 1, train_ds, cfg, ctx, bar, after_backward=step,
                               label="fade", loss_fn=loss_fn, steps=steps)
    finally:
        with torch.no_grad():
            for name, m in gates.items():
                m.gate[cut[name].bool()] = 0.0
                m.fade = None


def faded_copy(model: nn.Module, head: nn.Module, settings: PruneSettings, example: torch.Tensor, budget: Budget,
               train_ds: Dataset, cfg: TrainConfig, ctx: Context, bar: PhaseBar, *, steps: int | None = None,
               until: float = DEFAULT_FADE_UNTIL, batch_size: int | None = DEFAULT_RECOVER_BATCH,
               gradient_fn: Callable | None = None,
               score_fn: Callable | None = None) -> tuple[nn.Module, nn.Module, dict[str, torch.Tensor], BudgetResult]:
    """A copy of `model` with the cut `budget` plans faded out (`model` is left as it was): (the copy,
    its head, the cut masks, the plan's budget result; cut the copy with
    `pruner.cut_channels_exactly(copy, example, masks)`)."""
    masks, found = plan_cut(model, head, settings, example, budget, gradient_fn, score_fn)
    name = module_name(model, head)
    faded = copy.deepcopy(model)
    faded_head = faded.get_submodule(name) if name else faded
    fade_out(faded, faded_head, masks, train_ds, cfg, ctx, bar, steps=steps, until=until, batch_size=batch_size)
    return faded, faded_head, masks, found
