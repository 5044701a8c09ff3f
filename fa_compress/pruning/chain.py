"""The pruning chain, composed once: plan the cut -> fade it out (optional) -> cut exactly -> recover
(optional) -> keep or undo the recovery on the validation split. The model comes out pruned and with
its gates folded into BatchNorm.

The run-directory stage (`stage.prune_run`), the Python API (`fa_compress.prune`) and the benchmarks all
call `prune_chain`; its defaults (`ChainOptions`) are the ones `facompress prune` shows. Why the gate
ranking fades its cut out instead of recovering afterwards: docs/decisions/fade.md; how many steps the
fade and the recovery take: docs/decisions/step-budgets.md. Two options, off by default
(docs/decisions/distillation-and-gradual-cuts.md): the fade and the recovery can also learn from the
dense model (`distill_weight`, train/distill.py), and a MAC or params target can be reached in several
faded cuts (`prune_steps`, gradual.py).

>>> options = ChainOptions().resolved("gate")  # fade max(one epoch, 400 steps), no recovery
>>> result = prune_chain(model, head, PruneSettings(), example, Budget(target_macs=0.5), train_set, cfg, ctx,
...                      options=options, score=lambda m: Scores(val=..., test=...))
>>> result.model, result.budget.macs_fraction, result.kept
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .._seed import seed_everything
from ..errors import ConfigError
from ..train.config import TrainConfig
from ..train.distill import DEFAULT_DISTILL_TEMPERATURE, Distillation, check_distill
from ..train.distributed import Context
from ..train.progress import phase_bar
from .budget import Budget, BudgetResult, module_name, prune_to_budget
from .fade import DEFAULT_FADE_UNTIL, cut_channels, fade_out, plan_cut
from .gradual import DEFAULT_PRUNE_STEPS, check_gradual, check_prune_steps, fade_and_cut_in_steps
from .pruner import PruneSettings, cut_channels_exactly, gate_scorer, taylor_gradients
from .recover import DEFAULT_RECOVER_BATCH, DEFAULT_RECOVER_LR, DEFAULT_RECOVER_PHASE, RECOVER_PHASES, recover
from .result import Scores, keep_recovery
from .steps import StepBudget, check_deep_factor, check_steps, depth_factor, epoch_steps, step_budget

DEFAULT_DEEP_CUT_FACTOR = 2.0  # twice the default budget at 0.35 of the MACs and below (docs/decisions/step-budgets.md)


@dataclass(frozen=True)
class ChainOptions:
    """The training the chain spends around the cut, in optimizer steps. Whether each runs, when left at
    None, follows the ranking (`resolved`): the gate ranking fades its cut out and does not recover; any
    other ranking cannot fade and recovers. How many steps (`fade_budget`, `recover_budget`): as given
    in steps, or in whole epochs, else one epoch but at least `steps.FLOOR_STEPS`."""

    fade_epochs: int | None = None     # 0: no fade; steps and epochs are two ways of giving one budget
    fade_steps: int | None = None
    recover_epochs: int | None = None  # 0: no recovery
    recover_steps: int | None = None
    recover_phase: str = DEFAULT_RECOVER_PHASE  # what recovery trains: all, gates or bn
    recover_lr: float = DEFAULT_RECOVER_LR      # the backbone's peak learning rate in an `all` recovery
    recover_batch_size: int = DEFAULT_RECOVER_BATCH  # images per fade and recovery step
    fade_until: float = DEFAULT_FADE_UNTIL      # the fraction of the fade's steps that drive the gates to 0
    # the fade and the recovery learn from the dense model too (train/distill.py); 0: labels only
    distill_weight: float = 0.0
    distill_temperature: float = DEFAULT_DISTILL_TEMPERATURE
    prune_steps: int = DEFAULT_PRUNE_STEPS      # cuts on the way to the budget, each faded in (pruning/gradual.py)
    # the default fade and recovery budgets grow up to this many times for cuts below half the MACs (steps.py)
    deep_cut_factor: float = DEFAULT_DEEP_CUT_FACTOR

    def __post_init__(self) -> None:
        for name in ("fade_epochs", "recover_epochs"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ConfigError(f"{name} must be a whole number >= 0 (got {value!r})")
        for kind in ("fade", "recover"):
            check_steps(f"{kind}_steps", getattr(self, f"{kind}_steps"))
            if getattr(self, f"{kind}_steps") is not None and getattr(self, f"{kind}_epochs") is not None:
                raise ConfigError(f"{kind}_steps and {kind}_epochs both set the {kind}'s training; give one of them")
        if self.recover_phase not in RECOVER_PHASES:
            raise ConfigError(f"recover_phase must be one of {', '.join(RECOVER_PHASES)} (got {self.recover_phase!r})")
        if isinstance(self.recover_batch_size, bool) or not isinstance(self.recover_batch_size, int) \
                or self.recover_batch_size < 1:
            raise ConfigError(f"recover_batch_size must be a whole number >= 1 (got {self.recover_batch_size!r})")
        if not 0 < self.recover_lr < 10:
            raise ConfigError(f"recover_lr must be in (0, 10) (got {self.recover_lr})")
        if not 0 < self.fade_until <= 1:
            raise ConfigError(f"fade_until must be in (0, 1] (got {self.fade_until})")
        check_distill(self.distill_weight, self.distill_temperature)
        check_prune_steps(self.prune_steps)
        check_deep_factor(self.deep_cut_factor)

    def resolved(self, importance: str) -> ChainOptions:
        """These options with whether the fade and the recovery run decided for `importance`: a training
        that does not run reads 0 epochs; one that runs keeps its steps or epochs as given (None: the
        default budget). Resolving resolved options changes nothing."""
        fades = self.fade_steps is not None or \
            (importance == "gate" if self.fade_epochs is None else self.fade_epochs > 0)
        if fades and importance != "gate":
            name = "fade_steps" if self.fade_steps is not None else "fade_epochs"
            raise ConfigError(f"{name} fades the gates of the channels the gate ranking cuts, so it needs "
                              f"importance gate (got {importance}); set fade_epochs to 0")
        recovers = self.recover_steps is not None or \
            (not fades if self.recover_epochs is None else self.recover_epochs > 0)
        return replace(self, fade_epochs=self.fade_epochs if fades else 0,
                       recover_epochs=self.recover_epochs if recovers else 0)

    @property
    def fades(self) -> bool:
        """Whether the chain fades the cut out (on resolved options)."""
        return self.fade_steps is not None or self.fade_epochs != 0

    @property
    def recovers(self) -> bool:
        """Whether the chain recovers after the cut (on resolved options)."""
        return self.recover_steps is not None or self.recover_epochs != 0

    def fade_budget(self, images: int, ctx: Context, macs_fraction: float | None = None) -> StepBudget:
        """The fade's steps on `images` training images before a cut to `macs_fraction` of the dense MACs
        (None: depth unknown, no growth), and the rule that chose them."""
        return step_budget("fade_steps", self.fade_steps, self.fade_epochs,
                           epoch_steps=epoch_steps(images, self.recover_batch_size, ctx),
                           factor=depth_factor(macs_fraction, self.deep_cut_factor), macs_fraction=macs_fraction)

    def recover_budget(self, images: int, ctx: Context, macs_fraction: float | None = None) -> StepBudget:
        """The recovery's steps on `images` training images after a cut to `macs_fraction` of the dense
        MACs (None: depth unknown, no growth), and the rule that chose them."""
        return step_budget("recover_steps", self.recover_steps, self.recover_epochs,
                           epoch_steps=epoch_steps(images, self.recover_batch_size, ctx),
                           factor=depth_factor(macs_fraction, self.deep_cut_factor), macs_fraction=macs_fraction)


@dataclass
class ChainResult:
    """What the chain made: the kept model, the plan it met, and the model's scores along the way."""

    model: nn.Module                  # pruned, gates folded; the recovered one when validation kept it
    budget: BudgetResult              # the keep ratio the plan used and the MACs / params it reached
    masks: dict[str, torch.Tensor] | None  # gate name -> (C,) bool, True = cut (None: not faded)
    fade: dict[str, Any] | None       # steps and their rule (StepBudget), channels cut, seconds (None: no fade)
    cut: Scores | None                # right after the cut (None: no scoring given)
    recovered: Scores | None          # after recovery (None: none ran, or no scoring)
    kept: str                         # "pruned" or "recovered"
    prune_s: float                    # planning and cutting, seconds
    recover_s: float
    teacher_s: float = 0.0            # the distillation teacher's forward passes in the fade and recovery
    recovery: dict[str, Any] | None = None  # steps and their rule (StepBudget) (None: no recovery ran)


def chain_scorers(settings: PruneSettings, train_ds: Dataset, device: torch.device | str,
                  memory_format: str = "auto") -> tuple[Callable, Callable]:
    """`prune_model`'s (gradient_fn, score_fn): fixed, seeded samples of the training images."""
    return (taylor_gradients(train_ds, device, images=settings.score_images, seed=settings.seed,
                             memory_format=memory_format),
            gate_scorer(train_ds, device, images=settings.score_images, seed=settings.seed,
                        memory_format=memory_format))


def prune_chain(model: nn.Module, head: nn.Module, settings: PruneSettings, example: torch.Tensor,
                budget: Budget | None, train_ds: Dataset | None, cfg: TrainConfig, ctx: Context, *,
                options: ChainOptions, seed: int, score: Callable[[nn.Module], Scores] | None = None,
                val_loader: DataLoader | None = None, progress: bool = False) -> ChainResult:
    """Prune `model` (in place where the chain allows; use the returned model) to `budget` (None: keep
    `settings.keep`) as `options` say (resolved here for the ranking). `score` scores a model on the
    validation split (which keeps or undoes the recovery) and the test split (reported only)."""
    options = options.resolved(settings.importance)  # a no-op on options the caller resolved
    if train_ds is None and (options.fades or options.recovers):
        raise ConfigError("train_data is needed: the fade and the recovery train on it")
    budget = budget or Budget(keep=settings.keep)
    check_gradual(options.prune_steps, budget, fades=options.fades)
    head_name = module_name(model, head)
    # the dense model, frozen before anything trains or cuts it
    teacher = Distillation(model, options.distill_weight, options.distill_temperature) \
        if options.distill_weight and train_ds is not None else None
    scorers = chain_scorers(settings, train_ds, ctx.device, cfg.memory_format) if train_ds is not None else (None, None)
    fade, masks = None, None
    if options.fades and options.prune_steps > 1:
        pruned, found, masks, fade, prune_s = _fade_in_steps(model, head_name, settings, example, budget, scorers,
                                                              train_ds, cfg, ctx, options, seed, progress, teacher)
    elif options.fades:
        seed_everything(seed, "fade plan")
        t0 = time.perf_counter()
        masks, found = plan_cut(model, head, settings, example, budget, *scorers)
        plan_s = time.perf_counter() - t0
        fade = _fade(model, head, masks, train_ds, cfg, ctx, options, seed, progress, teacher, _depth(budget, found))
        seed_everything(seed, "prune scores")
        t0 = time.perf_counter()
        pruned = cut_channels_exactly(model, example, masks)  # ranking the faded model again could keep some
        prune_s = plan_s + time.perf_counter() - t0
    else:
        seed_everything(seed, "prune scores")
        t0 = time.perf_counter()
        pruned, found = prune_to_budget(model, head, settings, example, budget, *scorers)
        prune_s = time.perf_counter() - t0
    cut = score(pruned) if score is not None else None
    recovered_model, recover_s, recovery = _recover(pruned, head_name, train_ds, cfg, ctx, options, seed, val_loader,
                                                    progress, teacher, _depth(budget, found))
    recovered = score(recovered_model) if recovered_model is not None and score is not None else None
    # chosen on validation; with no scoring at all (an API call without val_data) a recovery is kept
    kept = "pruned" if recovered_model is None or (cut is not None and not keep_recovery(cut, recovered)) \
        else "recovered"
    return ChainResult(model=recovered_model if kept == "recovered" else pruned, budget=found, masks=masks,
                       fade=fade, cut=cut, recovered=recovered, kept=kept, prune_s=prune_s, recover_s=recover_s,
                       teacher_s=teacher.seconds if teacher is not None else 0.0, recovery=recovery)


def _depth(budget: Budget, found: BudgetResult) -> float:
    """The depth a default budget grows for: the MAC target as asked (so a benchmark giving every method the
    target's budget gives the library's), else the MACs the plan reached."""
    return budget.target_macs if budget.target_macs is not None else found.macs_fraction


def _fade(model: nn.Module, head: nn.Module, masks: dict[str, torch.Tensor], train_ds: Dataset, cfg: TrainConfig,
          ctx: Context, options: ChainOptions, seed: int, progress: bool,
          teacher: Distillation | None = None, macs_fraction: float | None = None) -> dict[str, Any]:
    """Fade the masked gates to 0 over `options.fade_budget` steps (for a cut to `macs_fraction` of the
    dense MACs), in place; what it did (the steps, the rule that chose them, the epochs asked for, the
    channels faded, seconds)."""
    steps = options.fade_budget(len(train_ds), ctx, macs_fraction)
    seed_everything(seed, "fade")
    t0 = time.perf_counter()
    with phase_bar(progress and ctx.is_main) as bar:
        fade_out(model, head, masks, train_ds, cfg, ctx, bar, steps=steps.steps, until=options.fade_until,
                 batch_size=options.recover_batch_size, loss_fn=teacher)
    return {**steps.to_dict(), "epochs": options.fade_epochs, "channels": cut_channels(masks),
            "seconds": time.perf_counter() - t0}


def _recover(pruned: nn.Module, head_name: str, train_ds: Dataset | None, cfg: TrainConfig, ctx: Context,
             options: ChainOptions, seed: int, val_loader: DataLoader | None, progress: bool,
             teacher: Distillation | None = None,
             macs_fraction: float | None = None) -> tuple[nn.Module | None, float, dict[str, Any] | None]:
    """A recovered copy of `pruned` (cut to `macs_fraction` of the dense MACs), the seconds it took and its
    steps with the rule that chose them (None, 0, None when no recovery ran)."""
    if not options.recovers:
        return None, 0.0, None
    steps = options.recover_budget(len(train_ds), ctx, macs_fraction)
    model = copy.deepcopy(pruned)
    head = model.get_submodule(head_name) if head_name else model
    seed_everything(seed, "recovery")
    t0 = time.perf_counter()
    with phase_bar(progress and ctx.is_main) as bar:
        ran = recover(model, head, train_ds, val_loader, None, cfg, ctx, bar, phase=options.recover_phase,
                      lr=options.recover_lr, batch_size=options.recover_batch_size, loss_fn=teacher, steps=steps.steps)
    return (model if ran is not None else None), time.perf_counter() - t0, steps.to_dict()


def _fade_in_steps(model: nn.Module, head_name: str, settings: PruneSettings, example: torch.Tensor, budget: Budget,
                   scorers: tuple, train_ds: Dataset, cfg: TrainConfig, ctx: Context, options: ChainOptions,
                   seed: int, progress: bool, teacher: Distillation | None,
                   ) -> tuple[nn.Module, BudgetResult, dict[str, torch.Tensor], dict[str, Any], float]:
    """`options.prune_steps` planned, faded and exact cuts (pruning/gradual.py), the fade's training
    split evenly between them: (pruned model, what it reached, the last masks, the fades' record, seconds)."""

    total = options.fade_budget(len(train_ds), ctx, budget.target_macs)  # a keep or params target: no growth

    def fade_step(m: nn.Module, head: nn.Module, masks: dict[str, torch.Tensor], share: int) -> dict[str, Any]:
        share_options = replace(options, fade_epochs=None, fade_steps=share)
        return _fade(m, head, masks, train_ds, cfg, ctx, share_options, seed, progress, teacher)

    pruned, found, masks, fades, prune_s = fade_and_cut_in_steps(
        model, head_name, settings, example, budget, scorers, steps=options.prune_steps, seed=seed,
        fade_budget=total.steps, fade_step=fade_step)
    fade = {**total.to_dict(), "epochs": options.fade_epochs, "channels": sum(f["channels"] for f in fades),
            "seconds": sum(f["seconds"] for f in fades), "cuts": fades}
    return pruned, found, masks, fade, prune_s
