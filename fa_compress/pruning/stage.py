"""The `prune` stage: fine-tuned run -> pruned, folded, recovered model with a report.

Every choice here reads the validation split (keep the recovery or undo it); the test split is only
scored for the report. Every step that samples or trains (scoring batches, recovery, a search) is
seeded from the run's seed, so the same command on the same run gives the same model and metrics.
The chain itself (plan, fade, exact cut, recovery, keep-or-undo) is `chain.prune_chain`, shared with the
Python API and the benchmarks. A search that picks the settings before the cut (a latency target:
`fa_compress.search.latency`) is passed in, so this stage never imports what deployment needs.

>>> from fa_compress.pruning.stage import PruneOptions, prune_run
>>> run, result, _ = prune_run(PruneOptions(settings=PruneSettings(keep=0.6)))
>>> run, result, budget = prune_run(PruneOptions(budget=Budget(target_macs=0.5)))   # budget: the plan's BudgetResult
>>> run, result, search = prune_run(PruneOptions(), search=LatencyTarget(5.0))   # fa_compress.search
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

import torch
from torch import nn

from .._seed import seed_everything
from ..data import check_same_validation, dataset_of_run, make_loader
from ..errors import ConfigError
from ..gates import fold_gates, has_gates
from ..machine import wait_policy_record
from ..models import get_head, get_spec
from ..models.complexity import count_macs, count_params
from ..models.saved import load_run_model, model_meta
from ..run import Run
from ..train.config import train_config_of_run
from ..train.distributed import Context, init_context
from ..train.evaluate import evaluate_detailed
from ..train.memory_format import check_memory_format, resolve_memory_format
from .budget import Budget
from .chain import ChainOptions, chain_scorers, prune_chain
from .depth import DepthCheck
from .pruner import PruneSettings, channel_counts, check_fits
from .result import PruneResult, Scores, paired_vs_dense, recovery_decision

_EVAL_BATCH = 128

__all__ = ["PruneOptions", "PruneResult", "SettingsSearch", "prune_run"]


class SettingsSearch(Protocol):
    """Picks the settings to prune with from the fine-tuned model, before the cut.

    Called with a CPU copy of the (gated) fine-tuned model and the functions that score its channels
    from the training split on the CPU (`prune_model`'s `gradient_fn` and `score_fn`); returns the
    settings and a record with `to_dict()` that run.json keeps under `record_key`. A search whose
    `reads_train_data` is true (e.g. to calibrate INT8 candidates) also gets `train_data=`, the training split.
    `fa_compress.search.latency.LatencyTarget` is one; a compute budget can be another.
    """

    record_key: ClassVar[str]

    def __call__(self, model: nn.Module, head_name: str, settings: PruneSettings, img_size: int, *,
                 gradient_fn: Callable | None = None, score_fn: Callable | None = None) -> tuple[PruneSettings, Any]: ...


@dataclass(frozen=True)
class PruneOptions:
    """What `facompress prune` was asked for."""

    settings: PruneSettings = field(default_factory=PruneSettings)
    budget: Budget | None = None  # a MAC / params target or `auto`; None: keep `settings.keep` of the channels
    recover_epochs: int | None = ChainOptions.recover_epochs  # 0: none; None: the default (no recovery after a fade)
    recover_steps: int | None = ChainOptions.recover_steps    # the recovery's budget in steps instead of epochs
    recover_phase: str = ChainOptions.recover_phase
    recover_lr: float = ChainOptions.recover_lr
    recover_batch_size: int = ChainOptions.recover_batch_size
    run: Path | None = None
    device: str = "auto"
    output: str = "pruned"       # model name inside the run
    show_progress: bool = True
    memory_format: str = "auto"  # of scoring, recovery and evaluation: auto, channels_last, contiguous
    seed: int | None = None      # seeds scoring, recovery and searches; None: the run's fine-tuning seed
    fade_epochs: int | None = ChainOptions.fade_epochs  # 0: no fade; None: the default (a fade with the gate ranking)
    fade_steps: int | None = ChainOptions.fade_steps    # the fade's budget in steps instead of epochs (chain.py)
    distill_weight: float = ChainOptions.distill_weight  # 0: the fade and recovery learn from labels only
    distill_temperature: float = ChainOptions.distill_temperature
    prune_steps: int = ChainOptions.prune_steps
    deep_cut_factor: float = ChainOptions.deep_cut_factor  # the default budgets' growth for deep cuts (steps.py)

    def __post_init__(self) -> None:
        """Check the options, and decide for the ranking whether the fade and the recovery run (one that
        does not reads 0 epochs after construction; `ChainOptions.resolved`)."""
        check_memory_format(self.memory_format)
        chain = self.chain_options()
        object.__setattr__(self, "fade_epochs", chain.fade_epochs)
        object.__setattr__(self, "recover_epochs", chain.recover_epochs)
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0):
            raise ConfigError(f"seed must be a whole number >= 0 (got {self.seed!r})")

    def chain_options(self) -> ChainOptions:
        """The chain's options (checked, resolved for the ranking)."""
        return ChainOptions(fade_epochs=self.fade_epochs, fade_steps=self.fade_steps,
                            recover_epochs=self.recover_epochs, recover_steps=self.recover_steps,
                            recover_phase=self.recover_phase, recover_lr=self.recover_lr,
                            recover_batch_size=self.recover_batch_size, distill_weight=self.distill_weight,
                            distill_temperature=self.distill_temperature,
                            prune_steps=self.prune_steps,
                            deep_cut_factor=self.deep_cut_factor).resolved(self.settings.importance)


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
    with run.writer("prune"):  # before any loading: a refused prune writes nothing
        return _prune_run(run, opts, search)


def _prune_run(run: Run, opts: PruneOptions, search: SettingsSearch | None) -> tuple[Run, PruneResult, Any]:
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
    settings, searched = _chosen_settings(model, meta, replace(opts.settings, seed=seed), search, data, cfg)
    example = torch.zeros(1, 3, img, img, device=ctx.device)
    chain = prune_chain(model, get_head(model, meta["arch"]), settings, example, opts.budget if search is None else None,
                        data.train, cfg, ctx, options=opts.chain_options(), seed=seed,
                        score=lambda m: _score(m, data, ctx, cfg), val_loader=data.val, progress=opts.show_progress)
    pruned, cut, recovered, kept = chain.model, chain.cut, chain.recovered, chain.kept
    settings = replace(settings, keep=chain.budget.keep)
    new_meta = model_meta(pruned, arch=meta["arch"], classes=meta["classes"], img_size=img,
                          normalization=meta["normalization"], data=meta.get("data"), stage="prune",
                          prune=asdict(settings))
    path = run.save_model(opts.output, pruned, new_meta)
    final = recovered if kept == "recovered" else cut
    depth = DepthCheck.of(dense.val.correct, final.val.correct)  # validation only
    result = PruneResult(
        params_before=params0, params_after=count_params(pruned), macs_before=macs0,
        macs_after=count_macs(pruned, img), size_mb_before=run.model_path("finetuned").stat().st_size / 1e6,
        size_mb_after=path.stat().st_size / 1e6, acc_before=dense.test.accuracy.value,
        acc_pruned=cut.test.accuracy.value, acc_recovered=recovered.test.accuracy.value if recovered else None,
        keep=settings.keep, prune_s=chain.prune_s, recover_s=chain.recover_s, channels_before=before,
        channels_after=channel_counts(pruned), kept=kept, val_before=dense.val.accuracy,
        val_pruned=cut.val.accuracy, val_recovered=recovered.val.accuracy if recovered else None,
        test_before=dense.test.accuracy, test_pruned=cut.test.accuracy,
        test_recovered=recovered.test.accuracy if recovered else None,
        vs_dense=paired_vs_dense(dense, final), seed=seed, fade=chain.fade, recovery=chain.recovery,
        depth=depth.to_dict(), teacher_s=chain.teacher_s,
        selection=recovery_decision(cut, recovered).to_dict() if recovered else None)
    found = searched if search is not None else (chain.budget if opts.budget is not None else None)
    record = {search.record_key: searched.to_dict()} if search is not None else \
        {"budget": chain.budget.to_dict()} if opts.budget is not None else {}
    _record(run, opts, settings, result, bundle, ctx, pruned, path.name, record)
    return run, result, found


def _record(run: Run, opts: PruneOptions, settings: PruneSettings, result: PruneResult, bundle, ctx: Context,
            pruned: nn.Module, model_file: str, searched: dict[str, Any]) -> None:
    """The stage's entry in run.json: what was asked, the seed, the splits it read, the metrics."""
    run.record("prune" if opts.output == "pruned" else f"prune:{opts.output}", {
        "status": "done", "settings": asdict(settings), "recover_epochs": opts.recover_epochs,
        "recover_phase": opts.recover_phase, "recover_lr": opts.recover_lr,
        "recover_batch_size": opts.recover_batch_size, "seed": result.seed,
        "fade_epochs": opts.fade_epochs, "fade_steps": opts.fade_steps, "recover_steps": opts.recover_steps,
        "too_deep": result.depth["too_deep"], "distill_weight": opts.distill_weight,
        "distill_temperature": opts.distill_temperature, "prune_steps": opts.prune_steps,
        "deep_cut_factor": opts.deep_cut_factor, "selected_on": "validation",
        "dataset": {"validation": bundle.validation.to_dict(), "train_images": len(bundle.train),
                    "val_images": len(bundle.val), "test_images": len(bundle.test)},
        "memory_format": resolve_memory_format(opts.memory_format, ctx.device, pruned).to_dict(),
        "openmp_wait": wait_policy_record(),
        "latency_search": None, **searched, "artifacts": {"model": model_file}, "metrics": result.to_dict()})


def _score(model: nn.Module, data: _Data, ctx: Context, cfg) -> Scores:
    """Validation (to choose on) and test (to report) accuracy with per-image correctness."""
    return Scores(evaluate_detailed(model, data.val, ctx, cfg), evaluate_detailed(model, data.test, ctx, cfg))


def _chosen_settings(model: nn.Module, meta: dict, settings: PruneSettings, search: SettingsSearch | None,
                     data: _Data, cfg) -> tuple[PruneSettings, Any]:
    """The settings to prune with: as given, or as `search` picks them on a CPU copy of the model."""
    if search is None:
        return settings, None
    seed_everything(settings.seed, "search")
    gradient_fn, score_fn = chain_scorers(settings, data.train, "cpu", cfg.memory_format)
    train = {"train_data": data.train} if getattr(search, "reads_train_data", False) else {}
    chosen, record = search(copy.deepcopy(model).cpu(), get_spec(meta["arch"]).head, settings, meta["img_size"],
                            gradient_fn=gradient_fn, score_fn=score_fn, **train)
    return chosen, record


def _folded(model):
    """A gate-free copy, so parameter counts compare like with like (gates fold away at export)."""

    return fold_gates(copy.deepcopy(model)) if has_gates(model) else model
