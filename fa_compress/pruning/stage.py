"""The `prune` stage: fine-tuned run -> pruned, folded, recovered model with a report.

Every choice here reads the validation split (keep the recovery or undo it); the test split is only
scored for the report. Every step that samples or trains (scoring batches, recovery, a search) is
seeded from the run's seed, so the same command on the same run gives the same model and metrics.
A search that picks the settings before the cut (a latency target: `fa_compress.search.latency`)
is passed in, so this stage never imports what deployment needs.

>>> from fa_compress.pruning.stage import PruneOptions, prune_run
>>> run, result, _ = prune_run(PruneOptions(settings=PruneSettings(keep=0.6)))
>>> run, result, search = prune_run(PruneOptions(), search=LatencyTarget(5.0))   # fa_compress.search
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

import torch
from torch import nn

from .._seed import seed_everything
from ..data import make_loader
from ..errors import ConfigError
from ..models import get_head, get_spec
from ..models.complexity import count_macs, count_params
from ..run import Run
from ..models.saved import model_meta
from ..data import check_same_validation, dataset_of_run
from ..train.config import train_config_of_run
from ..train.distributed import Context, init_context
from ..train.evaluate import evaluate_detailed
from ..train.memory_format import check_memory_format, resolve_memory_format
from ..train.progress import phase_bar
from .pruner import (PruneSettings, channel_counts, check_fits, cut_channels_exactly, gate_scorer, taylor_gradients,
                     timed_prune)
from .recover import DEFAULT_RECOVER_BATCH, DEFAULT_RECOVER_LR, DEFAULT_RECOVER_PHASE, RECOVER_PHASES, recover
from .result import PruneResult, Scores, keep_recovery, paired_vs_dense
from ..machine import wait_policy_record
from ..models.saved import load_run_model
from ..gates import fold_gates, has_gates

# One epoch of training follows the fine-tuning by default, spent where it helps the ranking most.
# With the gate ranking it fades the planned cut out before the cut (pruning/fade.py) and no recovery
# follows; with any other ranking (which cannot fade: it has no gates to drive) it recovers after
# the cut. Measured at 0.75/0.5/0.35 of dense MACs on three tasks, 3 seeds, the fade epoch at batch 8
# against the cut + one batch-8 `gates` recovery epoch (`gate` vs `gate-cut` in
# benchmarks/results/prune_pareto.md): the fade is ahead at 8 of 9 cells (mean validation accuracy
# 84.73% vs 84.12%, the latter already the better of cut and recovery), and it is the model right
# after the cut, within 0.01 point of dense at 0.5 MACs on the default task where the plain cut
# loses 30 points.
DEFAULT_FADE_EPOCHS_GATE = 1
DEFAULT_RECOVER_EPOCHS = 1  # after a cut that was not faded out
_EVAL_BATCH = 128

__all__ = ["PruneOptions", "PruneResult", "SettingsSearch", "prune_run"]


class SettingsSearch(Protocol):
    """Picks the settings to prune with from the fine-tuned model, before the cut.

    Called with a CPU copy of the (gated) fine-tuned model and the functions that score its channels
    from the training split on the CPU (`prune_model`'s `gradient_fn` and `score_fn`); returns the
    settings and a record with `to_dict()` that run.json keeps under `record_key`.
    `fa_compress.search.latency.LatencyTarget` is one; a compute budget can be another.
    """

    record_key: ClassVar[str]

    def __call__(self, model: nn.Module, head_name: str, settings: PruneSettings, img_size: int, *,
                 gradient_fn: Callable | None = None, score_fn: Callable | None = None) -> tuple[PruneSettings, Any]: ...


@dataclass(frozen=True)
class PruneOptions:
    """What `facompress prune` was asked for."""

    settings: PruneSettings = field(default_factory=PruneSettings)
    recover_epochs: int | None = None  # None: DEFAULT_RECOVER_EPOCHS, or 0 after a fade (the fade was the epoch)
    recover_phase: str = DEFAULT_RECOVER_PHASE  # what recovery trains: all, gates or bn
    recover_lr: float = DEFAULT_RECOVER_LR   # the backbone's peak learning rate in an `all` recovery
    recover_batch_size: int = DEFAULT_RECOVER_BATCH  # images per fade and recovery step (pruning/recover.py: measured)
    run: Path | None = None
    device: str = "auto"
    output: str = "pruned"       # model name inside the run
    show_progress: bool = True
    memory_format: str = "auto"  # of scoring, recovery and evaluation: auto, channels_last, contiguous
    seed: int | None = None      # seeds scoring, recovery and searches; None: the run's fine-tuning seed
    fade_epochs: int | None = None  # gate epochs fading the planned cut out before it (pruning/fade.py);
    # None: DEFAULT_FADE_EPOCHS_GATE with the gate ranking, else 0

    def __post_init__(self) -> None:
        """Check the options, and resolve the epochs left to their defaults (so `opts.fade_epochs` and
        `opts.recover_epochs` are always whole numbers after construction)."""
        check_memory_format(self.memory_format)
        if self.fade_epochs is None:
            fades = self.settings.importance == "gate"
            object.__setattr__(self, "fade_epochs", DEFAULT_FADE_EPOCHS_GATE if fades else 0)
        if self.recover_epochs is None:
            object.__setattr__(self, "recover_epochs", 0 if self.fade_epochs else DEFAULT_RECOVER_EPOCHS)
        if self.fade_epochs < 0:
            raise ConfigError(f"--fade-epochs must be >= 0 (got {self.fade_epochs})")
        if self.fade_epochs and self.settings.importance != "gate":
            raise ConfigError(f"--fade-epochs fades the gates of the channels the gate ranking cuts, so it needs "
                              f"--importance gate (got {self.settings.importance}); give --fade-epochs 0")
        if self.recover_epochs < 0:
            raise ConfigError(f"--recover-epochs must be >= 0 (got {self.recover_epochs})")
        if self.recover_phase not in RECOVER_PHASES:
            raise ConfigError(f"--recover-phase must be one of {', '.join(RECOVER_PHASES)} "
                              f"(got {self.recover_phase!r})")
        if isinstance(self.recover_batch_size, bool) or not isinstance(self.recover_batch_size, int) \
                or self.recover_batch_size < 1:
            raise ConfigError(f"--recover-batch-size must be a whole number >= 1 (got {self.recover_batch_size!r})")
        if not 0 < self.recover_lr < 10:
            raise ConfigError(f"--recover-lr must be in (0, 10) (got {self.recover_lr})")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0):
            raise ConfigError(f"--seed must be a whole number >= 0 (got {self.seed!r})")


@dataclass(frozen=True)
class _Data:
    """The run's splits as the stage uses them: train to score and recover, val to choose, test to report."""

    train: Any
    val: Any
    test: Any


def prune_run(opts: PruneOptions, search: SettingsSearch | None = None) -> tuple[Run, PruneResult, Any]:
    """Prune the run's fine-tuned model as asked (or with the settings `search` picks), recover it,
    keep the recovery only if the validation split says it helped, save it as `opts.output` and
    record it; returns the run, the result and the search's record (None without a search)."""
    run = Run.resolve(opts.run)
    cfg = train_config_of_run(run)  # refuses a run without a finished fine-tuning, before any loading
    seed = cfg.seed if opts.seed is None else opts.seed
    cfg = replace(cfg, memory_format=opts.memory_format, seed=seed)
    model, meta = load_run_model(run, "finetuned")
    check_fits(model, get_head(model, meta["arch"]), opts.settings)  # before the data is loaded and scored
    ctx = init_context(opts.device)
    bundle = dataset_of_run(run)
    check_same_validation(run, bundle)
    data = _Data(bundle.train, *(make_loader(d, _EVAL_BATCH, shuffle=False, device=ctx.device.type)
                                 for d in (bundle.val, bundle.test)))
    model.to(ctx.device)
    img = meta["img_size"]
    before = channel_counts(model)
    params0, macs0 = count_params(_folded(model)), count_macs(model, img)
    dense = _score(model, data, ctx, cfg)
    settings, found = _chosen_settings(model, meta, replace(opts.settings, seed=seed), search, data, cfg)
    example = torch.zeros(1, 3, img, img, device=ctx.device)
    fade, masks = None, None
    if opts.fade_epochs:
        fade, masks = _fade(model, meta, settings, example, data, cfg, ctx, opts, seed)
    seed_everything(seed, "prune scores")
    if masks is not None:  # the faded channels, exactly: ranking the faded model again could keep some of them
        t0 = time.perf_counter()
        pruned = cut_channels_exactly(model, example, masks)
        prune_s = time.perf_counter() - t0
    else:
        pruned, prune_s = timed_prune(model, get_head(model, meta["arch"]), settings, example,
                                      *_scorers(settings, data, ctx.device, cfg))
    cut = _score(pruned, data, ctx, cfg)
    pruned, as_pruned, recovered, recover_s = _recover(pruned, meta, data, cfg, ctx, opts, seed)
    kept = "recovered" if keep_recovery(cut, recovered) else "pruned"
    if kept == "pruned" and as_pruned is not None:
        # Like fine-tuning, which keeps its best phase: recovery can hurt a lightly pruned model
        # (Lite0, keep 0.9, taylor: 87.50% -> 84.15% after an `all` epoch; benchmarks/prune_criteria.py).
        pruned = as_pruned
    new_meta = model_meta(pruned, arch=meta["arch"], classes=meta["classes"], img_size=img,
                          normalization=meta["normalization"], data=meta.get("data"), stage="prune",
                          prune=asdict(settings))
    path = run.save_model(opts.output, pruned, new_meta)
    final = recovered if kept == "recovered" else cut
    result = PruneResult(
        params_before=params0, params_after=count_params(pruned), macs_before=macs0,
        macs_after=count_macs(pruned, img), size_mb_before=run.model_path("finetuned").stat().st_size / 1e6,
        size_mb_after=path.stat().st_size / 1e6, acc_before=dense.test.accuracy.value,
        acc_pruned=cut.test.accuracy.value, acc_recovered=recovered.test.accuracy.value if recovered else None,
        keep=settings.keep, prune_s=prune_s, recover_s=recover_s, channels_before=before,
        channels_after=channel_counts(pruned), kept=kept, val_before=dense.val.accuracy,
        val_pruned=cut.val.accuracy, val_recovered=recovered.val.accuracy if recovered else None,
        test_before=dense.test.accuracy, test_pruned=cut.test.accuracy,
        test_recovered=recovered.test.accuracy if recovered else None,
        vs_dense=paired_vs_dense(dense, final), seed=seed, fade=fade)
    searched = {search.record_key: found.to_dict()} if search is not None else {}
    _record(run, opts, settings, result, bundle, ctx, pruned, path.name, searched)
    return run, result, found


def _record(run: Run, opts: PruneOptions, settings: PruneSettings, result: PruneResult, bundle, ctx: Context,
            pruned: nn.Module, model_file: str, searched: dict[str, Any]) -> None:
    """The stage's entry in run.json: what was asked, the seed, the splits it read, the metrics."""
    run.record("prune" if opts.output == "pruned" else f"prune:{opts.output}", {
        "status": "done", "settings": asdict(settings), "recover_epochs": opts.recover_epochs,
        "recover_phase": opts.recover_phase, "recover_lr": opts.recover_lr,
        "recover_batch_size": opts.recover_batch_size, "seed": result.seed,
        "fade_epochs": opts.fade_epochs,
        "selected_on": "validation",
        "dataset": {"validation": bundle.validation.to_dict(), "train_images": len(bundle.train),
                    "val_images": len(bundle.val), "test_images": len(bundle.test)},
        "memory_format": resolve_memory_format(opts.memory_format, ctx.device, pruned).to_dict(),
        "openmp_wait": wait_policy_record(),
        "latency_search": None, **searched, "artifacts": {"model": model_file}, "metrics": result.to_dict()})


def _fade(model: nn.Module, meta: dict, settings: PruneSettings, example: torch.Tensor, data: _Data, cfg,
          ctx: Context, opts: PruneOptions, seed: int) -> tuple[dict, dict[str, torch.Tensor]]:
    """Plan the cut `settings` make, fade those gates to 0 over `opts.fade_epochs` (in place) and
    say what it did, and the masks (gate name -> (C,) bool, True = cut) for `cut_channels_exactly`."""
    from .budget import Budget
    from .fade import cut_channels, fade_out, plan_cut

    head = get_head(model, meta["arch"])
    seed_everything(seed, "fade plan")
    masks, _ = plan_cut(model, head, settings, example, Budget(keep=settings.keep),
                        *_scorers(settings, data, ctx.device, cfg))
    seed_everything(seed, "fade")
    t0 = time.perf_counter()
    with phase_bar(opts.show_progress and ctx.is_main) as bar:
        fade_out(model, head, masks, data.train, cfg, ctx, bar, epochs=opts.fade_epochs,
                 batch_size=opts.recover_batch_size)
    return {"epochs": opts.fade_epochs, "channels": cut_channels(masks), "seconds": time.perf_counter() - t0}, masks


def _score(model: nn.Module, data: _Data, ctx: Context, cfg) -> Scores:
    """Validation (to choose on) and test (to report) accuracy with per-image correctness."""
    return Scores(evaluate_detailed(model, data.val, ctx, cfg), evaluate_detailed(model, data.test, ctx, cfg))


def _recover(pruned: nn.Module, meta: dict, data: _Data, cfg, ctx: Context, opts: PruneOptions,
             seed: int) -> tuple[nn.Module, nn.Module | None, Scores | None, float]:
    """Seeded recovery epochs, in place: (the model, a copy from before recovery to undo it with,
    the recovered model's scores, seconds); the last three are None / 0 when no recovery ran."""
    if opts.recover_epochs <= 0:
        return pruned, None, None, 0.0
    as_pruned = copy.deepcopy(pruned)
    seed_everything(seed, "recovery")
    with phase_bar(opts.show_progress and ctx.is_main) as bar:
        t0 = time.perf_counter()
        rec = recover(pruned, get_head(pruned, meta["arch"]), data.train, data.val, opts.recover_epochs,
                      cfg, ctx, bar, phase=opts.recover_phase, lr=opts.recover_lr,
                      batch_size=opts.recover_batch_size)
        seconds = time.perf_counter() - t0
    if rec is None:
        return pruned, None, None, seconds
    return pruned, as_pruned, _score(pruned, data, ctx, cfg), seconds


def _scorers(settings: PruneSettings, data: _Data, device, cfg) -> tuple[Callable, Callable]:
    """`prune_model`'s (gradient_fn, score_fn): fixed, seeded samples of the training split."""
    return (taylor_gradients(data.train, device, images=settings.score_images, seed=settings.seed,
                             memory_format=cfg.memory_format),
            gate_scorer(data.train, device, images=settings.score_images, seed=settings.seed,
                        memory_format=cfg.memory_format))


def _chosen_settings(model: nn.Module, meta: dict, settings: PruneSettings, search: SettingsSearch | None,
                     data: _Data, cfg) -> tuple[PruneSettings, Any]:
    """The settings to prune with: as given, or as `search` picks them on a CPU copy of the model."""
    if search is None:
        return settings, None
    seed_everything(settings.seed, "search")
    gradient_fn, score_fn = _scorers(settings, data, "cpu", cfg)
    chosen, record = search(copy.deepcopy(model).cpu(), get_spec(meta["arch"]).head, settings, meta["img_size"],
                            gradient_fn=gradient_fn, score_fn=score_fn)
    return chosen, record


def _folded(model):
    """A gate-free copy, so parameter counts compare like with like (gates fold away at export)."""

    return fold_gates(copy.deepcopy(model)) if has_gates(model) else model
