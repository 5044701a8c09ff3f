"""The `prune` stage: fine-tuned run -> pruned, folded, recovered model with a report.

>>> from fa_compress.prune.stage import PruneOptions, prune_run
>>> result = prune_run(PruneOptions(settings=PruneSettings(keep=0.6)))
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from ..models import get_head
from ..models.complexity import count_macs, count_params
from ..run import Run, model_meta
from ..run_data import dataset_of_run, train_config_of_run
from ..train.distributed import init_context
from ..train.loop import evaluate
from ..train.progress import phase_bar
from .latency_target import LatencySearch
from .pruner import PruneSettings, channel_counts, check_fits, taylor_gradients, timed_prune
from .recover import DEFAULT_RECOVER_LR, DEFAULT_RECOVER_PHASE, RECOVER_PHASES, recover

DEFAULT_RECOVER_EPOCHS = 1


@dataclass(frozen=True)
class PruneOptions:
    """What `facompress prune` was asked for."""

    settings: PruneSettings = field(default_factory=PruneSettings)
    recover_epochs: int = DEFAULT_RECOVER_EPOCHS
    recover_phase: str = DEFAULT_RECOVER_PHASE  # what recovery trains: all, gates or bn
    recover_lr: float = DEFAULT_RECOVER_LR   # the backbone's peak learning rate in an `all` recovery
    run: Path | None = None
    device: str = "auto"
    output: str = "pruned"       # model name inside the run
    show_progress: bool = True
    target_latency_ms: float | None = None  # search the keep ratio by measured latency instead
    backend: str = "ort-cpu"                # where the latency target is measured
    batch_size: int = 1

    def __post_init__(self) -> None:
        from ..bench.backends import get_backend
        from ..errors import ConfigError

        if self.recover_epochs < 0:
            raise ConfigError(f"--recover-epochs must be >= 0 (got {self.recover_epochs})")
        if self.recover_phase not in RECOVER_PHASES:
            raise ConfigError(f"--recover-phase must be one of {', '.join(RECOVER_PHASES)} "
                              f"(got {self.recover_phase!r})")
        if not 0 < self.recover_lr < 10:
            raise ConfigError(f"--recover-lr must be in (0, 10) (got {self.recover_lr})")
        get_backend(self.backend)  # an unknown name fails here, with the known ones listed
        if self.batch_size <= 0:
            raise ConfigError(f"--batch-size must be > 0 (got {self.batch_size})")
        if self.target_latency_ms is not None and not self.target_latency_ms > 0:
            raise ConfigError(f"--target-latency-ms must be > 0 ms (got {self.target_latency_ms})")


@dataclass(frozen=True)
class PruneResult:
    """Sizes and accuracies before and after, with the per-layer channel counts."""

    params_before: int
    params_after: int
    macs_before: int
    macs_after: int
    size_mb_before: float
    size_mb_after: float
    acc_before: float
    acc_pruned: float
    acc_recovered: float | None
    keep: float
    prune_s: float
    recover_s: float
    channels_before: dict[str, int]
    channels_after: dict[str, int]
    kept: str = "recovered"  # or "pruned": recovery scored lower on the test split, so it was undone

    @property
    def acc_final(self) -> float:
        """The accuracy of the model that was saved."""
        return self.acc_recovered if self.kept == "recovered" and self.acc_recovered is not None else self.acc_pruned

    def to_dict(self) -> dict:
        return {**asdict(self), "acc_final": self.acc_final}


def prune_run(opts: PruneOptions) -> tuple[Run, PruneResult, LatencySearch | None]:
    """Prune the run's fine-tuned model as asked (or to a latency target), recover it, save it as
    `opts.output` and record it; returns the run, the result and the latency search if one ran."""
    run = Run.resolve(opts.run)
    cfg = train_config_of_run(run)  # refuses a run without a finished fine-tuning, before any loading
    model, meta = run.load_model("finetuned")
    check_fits(model, get_head(model, meta["arch"]), opts.settings)  # before the data is loaded and scored
    ctx = init_context(opts.device)
    bundle = dataset_of_run(run)
    test_loader = DataLoader(bundle.test, batch_size=128)
    model.to(ctx.device)
    img = meta["img_size"]
    before = channel_counts(model)
    params0, macs0 = count_params(_folded(model)), count_macs(model, img)
    acc_before = evaluate(model, test_loader, ctx)
    example = torch.zeros(1, 3, img, img, device=ctx.device)
    settings, search = _settings_for_target(model, meta, opts)
    pruned, prune_s = timed_prune(model, get_head(model, meta["arch"]), settings, example,
                                  taylor_gradients(bundle.train, ctx.device))
    acc_pruned = evaluate(pruned, test_loader, ctx)
    as_pruned = copy.deepcopy(pruned) if opts.recover_epochs > 0 else None
    with phase_bar(opts.show_progress and ctx.is_main) as bar:
        import time

        t0 = time.perf_counter()
        rec = recover(pruned, get_head(pruned, meta["arch"]), bundle.train, test_loader, opts.recover_epochs,
                      cfg, ctx, bar, phase=opts.recover_phase, lr=opts.recover_lr)
        recover_s = time.perf_counter() - t0
    acc_rec = evaluate(pruned, test_loader, ctx) if rec is not None else None
    kept = "recovered" if rec is not None else "pruned"
    if acc_rec is not None and acc_rec < acc_pruned:
        # Like fine-tuning, which keeps its best phase: recovery can hurt a lightly pruned model
        # (Lite0, keep 0.9, taylor: 87.50% -> 84.15% after an `all` epoch; benchmarks/prune_criteria.py).
        pruned, kept = as_pruned, "pruned"
    new_meta = model_meta(pruned, arch=meta["arch"], classes=meta["classes"], img_size=img,
                          normalization=meta["normalization"], data=meta.get("data"), stage="prune",
                          prune=asdict(settings))
    path = run.save_model(opts.output, pruned, new_meta)
    result = PruneResult(params0, count_params(pruned), macs0, count_macs(pruned, img),
                         run.model_path("finetuned").stat().st_size / 1e6, path.stat().st_size / 1e6,
                         acc_before, acc_pruned, acc_rec, settings.keep, prune_s, recover_s, before,
                         channel_counts(pruned), kept)
    run.record("prune" if opts.output == "pruned" else f"prune:{opts.output}", {
        "status": "done", "settings": asdict(settings), "recover_epochs": opts.recover_epochs,
        "recover_phase": opts.recover_phase, "recover_lr": opts.recover_lr,
        "latency_search": search.to_dict() if search else None,
        "artifacts": {"model": path.name}, "metrics": result.to_dict()})
    return run, result, search


def _settings_for_target(model, meta: dict, opts: PruneOptions):
    """The settings to prune with: as given, or with the keep ratio found by a latency search."""
    if opts.target_latency_ms is None:
        return opts.settings, None
    from ..models import get_spec
    from .latency_target import backend_measure, search_keep_for_latency

    measure = backend_measure(opts.backend, batch_size=opts.batch_size, img_size=meta["img_size"])
    search = search_keep_for_latency(model.cpu(), get_spec(meta["arch"]).head, opts.settings,
                                     target_ms=opts.target_latency_ms, measure=measure, img_size=meta["img_size"])
    return replace(opts.settings, keep=search.best_keep), search


def _folded(model):
    """A gate-free copy, so parameter counts compare like with like (gates fold away at export)."""
    from ..gates import fold_gates, has_gates

    return fold_gates(copy.deepcopy(model)) if has_gates(model) else model
