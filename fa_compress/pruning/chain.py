"""The pruning chain, composed once: plan the cut -> fade it out (optional) -> cut exactly -> recover
(optional) -> keep or undo the recovery on the validation split. The model comes out pruned and with
its gates folded into BatchNorm.

The run-directory stage (`stage.prune_run`), the Python API (`fa_compress.prune`) and the benchmarks all
call `prune_chain`; its defaults (`ChainOptions`) are the ones `facompress prune` shows. Why the gate
ranking fades its cut out for one epoch instead of recovering afterwards: docs/decisions/fade.md.

>>> options = ChainOptions().resolved("gate")            # fade 1 epoch, no recovery
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
from ..train.distributed import Context
from ..train.progress import phase_bar
from .budget import Budget, BudgetResult, module_name, prune_to_budget
from .fade import DEFAULT_FADE_UNTIL, cut_channels, fade_out, plan_cut
from .pruner import PruneSettings, cut_channels_exactly, gate_scorer, taylor_gradients
from .recover import DEFAULT_RECOVER_BATCH, DEFAULT_RECOVER_LR, DEFAULT_RECOVER_PHASE, RECOVER_PHASES, recover
from .result import Scores, keep_recovery

DEFAULT_FADE_EPOCHS_GATE = 1  # with the gate ranking: one epoch fading the planned cut out (docs/decisions/fade.md)
DEFAULT_RECOVER_EPOCHS = 1    # after a cut that was not faded out


@dataclass(frozen=True)
class ChainOptions:
    """The training the chain spends around the cut. Epochs left at None take their defaults from the
    ranking (`resolved`): the gate ranking fades for `DEFAULT_FADE_EPOCHS_GATE` and does not recover;
    any other ranking cannot fade and recovers for `DEFAULT_RECOVER_EPOCHS`."""

    fade_epochs: int | None = None
    recover_epochs: int | None = None
    recover_phase: str = DEFAULT_RECOVER_PHASE  # what recovery trains: all, gates or bn
    recover_lr: float = DEFAULT_RECOVER_LR      # the backbone's peak learning rate in an `all` recovery
    recover_batch_size: int = DEFAULT_RECOVER_BATCH  # images per fade and recovery step
    fade_until: float = DEFAULT_FADE_UNTIL      # the fraction of the fade's steps that drive the gates to 0

    def __post_init__(self) -> None:
        for name in ("fade_epochs", "recover_epochs"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ConfigError(f"{name} must be a whole number >= 0 (got {value!r})")
        if self.recover_phase not in RECOVER_PHASES:
            raise ConfigError(f"recover_phase must be one of {', '.join(RECOVER_PHASES)} (got {self.recover_phase!r})")
        if isinstance(self.recover_batch_size, bool) or not isinstance(self.recover_batch_size, int) \
                or self.recover_batch_size < 1:
            raise ConfigError(f"recover_batch_size must be a whole number >= 1 (got {self.recover_batch_size!r})")
        if not 0 < self.recover_lr < 10:
            raise ConfigError(f"recover_lr must be in (0, 10) (got {self.recover_lr})")
        if not 0 < self.fade_until <= 1:
            raise ConfigError(f"fade_until must be in (0, 1] (got {self.fade_until})")

    def resolved(self, importance: str) -> ChainOptions:
        """These options with the epochs left at None filled in for `importance`."""
        fade = self.fade_epochs
        if fade is None:
            fade = DEFAULT_FADE_EPOCHS_GATE if importance == "gate" else 0
        if fade and importance != "gate":
            raise ConfigError(f"fade_epochs fades the gates of the channels the gate ranking cuts, so it needs "
                              f"importance gate (got {importance}); set fade_epochs to 0")
        recover_epochs = self.recover_epochs
        if recover_epochs is None:
            recover_epochs = 0 if fade else DEFAULT_RECOVER_EPOCHS
        return replace(self, fade_epochs=fade, recover_epochs=recover_epochs)


@dataclass
class ChainResult:
    """What the chain made: the kept model, the plan it met, and the model's scores along the way."""

    model: nn.Module                  # pruned, gates folded; the recovered one when validation kept it
    budget: BudgetResult              # the keep ratio the plan used and the MACs / params it reached
    masks: dict[str, torch.Tensor] | None  # gate name -> (C,) bool, True = cut (None: not faded)
    fade: dict[str, Any] | None       # epochs, channels cut, seconds (None: no fade)
    cut: Scores | None                # right after the cut (None: no scoring given)
    recovered: Scores | None          # after recovery (None: none ran, or no scoring)
    kept: str                         # "pruned" or "recovered"
    prune_s: float                    # planning and cutting, seconds
    recover_s: float


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
    `settings.keep`) as `options` say; `options` must be `resolved`. `score` scores a model on the
    validation split (which keeps or undoes the recovery) and the test split (reported only)."""
    if options.fade_epochs is None or options.recover_epochs is None:
        raise ConfigError("the chain's options must be resolved for the ranking first (ChainOptions.resolved)")
    if train_ds is None and (options.fade_epochs or options.recover_epochs):
        raise ConfigError("train_data is needed: the fade and the recovery train on it")
    budget = budget or Budget(keep=settings.keep)
    head_name = module_name(model, head)
    scorers = chain_scorers(settings, train_ds, ctx.device, cfg.memory_format) if train_ds is not None else (None, None)
    fade, masks = None, None
    if options.fade_epochs:
        seed_everything(seed, "fade plan")
        t0 = time.perf_counter()
        masks, found = plan_cut(model, head, settings, example, budget, *scorers)
        plan_s = time.perf_counter() - t0
        fade = _fade(model, head, masks, train_ds, cfg, ctx, options, seed, progress)
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
    recovered_model, recover_s = _recover(pruned, head_name, train_ds, cfg, ctx, options, seed, val_loader, progress)
    recovered = score(recovered_model) if recovered_model is not None and score is not None else None
    # chosen on validation; with no scoring at all (an API call without val_data) a recovery is kept
    kept = "pruned" if recovered_model is None or (cut is not None and not keep_recovery(cut, recovered)) \
        else "recovered"
    return ChainResult(model=recovered_model if kept == "recovered" else pruned, budget=found, masks=masks,
                       fade=fade, cut=cut, recovered=recovered, kept=kept, prune_s=prune_s, recover_s=recover_s)


def _fade(model: nn.Module, head: nn.Module, masks: dict[str, torch.Tensor], train_ds: Dataset, cfg: TrainConfig,
          ctx: Context, options: ChainOptions, seed: int, progress: bool) -> dict[str, Any]:
    """Fade the masked gates to 0 over `options.fade_epochs`, in place; what it did."""
    seed_everything(seed, "fade")
    t0 = time.perf_counter()
    with phase_bar(progress and ctx.is_main) as bar:
        fade_out(model, head, masks, train_ds, cfg, ctx, bar, epochs=options.fade_epochs, until=options.fade_until,
                 batch_size=options.recover_batch_size)
    return {"epochs": options.fade_epochs, "channels": cut_channels(masks), "seconds": time.perf_counter() - t0}


def _recover(pruned: nn.Module, head_name: str, train_ds: Dataset | None, cfg: TrainConfig, ctx: Context,
             options: ChainOptions, seed: int, val_loader: DataLoader | None,
             progress: bool) -> tuple[nn.Module | None, float]:
    """A recovered copy of `pruned` (None when no recovery ran) and the seconds it took."""
    if not options.recover_epochs:
        return None, 0.0
    model = copy.deepcopy(pruned)
    head = model.get_submodule(head_name) if head_name else model
    seed_everything(seed, "recovery")
    t0 = time.perf_counter()
    with phase_bar(progress and ctx.is_main) as bar:
        ran = recover(model, head, train_ds, val_loader, options.recover_epochs, cfg, ctx, bar,
                      phase=options.recover_phase, lr=options.recover_lr, batch_size=options.recover_batch_size)
    return (model if ran is not None else None), time.perf_counter() - t0
