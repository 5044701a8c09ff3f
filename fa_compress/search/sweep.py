"""Sweeps: prune, recover, export and benchmark several budgets (keep ratios or MAC targets) and
criteria from one fine-tuned run, then draw the accuracy-latency-size frontier. Each point carries
its validation accuracy (what keep-or-undo chose on) and its test accuracy with image count and 95%
interval (reported only). With several criteria at the same MAC targets, a user sees on their own
data whether the gates beat torch-pruning's criteria at equal compute.

>>> result = sweep_run(None, keeps=(0.9, 0.75, 0.6, 0.5))   # the latest run
>>> result = sweep_run(None, importances=("gate", "taylor", "l1"), target_macs=(0.75, 0.5, 0.35))
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ..accuracy import Accuracy
from ..errors import ConfigError
from ..pruning.pruner import PruneSettings
from ..run import Run
from ..run.directory import _write_json
from ..errors import unknown_name
from ..pruning.importance import IMPORTANCES
from ..report.bench_stage import bench_run
from ..bench.suite import check_options
from ..export.pipeline import ExportOptions, export_run
from ..pruning.budget import Budget
from ..pruning.stage import PruneOptions, prune_run
from .._deps import require


@dataclass(frozen=True)
class SweepPoint:
    """One keep ratio's model, measured."""

    keep: float
    model: str
    params: int
    macs: int
    size_mb: float
    acc_pruned: float
    acc_recovered: float | None
    acc_final: float  # the saved model's test accuracy: after recovery, unless validation said undo it
    onnx_median_ms: dict[str, float]  # "<backend>@<batch>" -> median latency of the FP32 ONNX
    val_final: Accuracy | None = None  # the saved model's validation accuracy (what chose)
    test_final: Accuracy | None = None  # acc_final with its image count and 95% interval
    importance: str = "gate"            # the criterion that ranked the channels
    target_macs: float | None = None    # the MAC budget asked for (None: a keep ratio)
    macs_fraction: float = 1.0          # MACs reached, fraction of dense


@dataclass(frozen=True)
class SweepResult:
    dense: SweepPoint
    points: tuple[SweepPoint, ...]
    plot: str | None

    def to_dict(self) -> dict:
        return {"dense": asdict(self.dense), "points": [asdict(p) for p in self.points], "plot": self.plot}


def parse_keeps(text: str) -> tuple[float, ...]:
    """`"0.9,0.75"` -> (0.9, 0.75); each must lie in (0, 1]."""
    try:
        keeps = tuple(float(k) for k in text.split(",") if k.strip())
    except ValueError as exc:
        raise ConfigError(f"keep {text!r} must be comma-separated numbers, e.g. 0.9,0.75,0.6,0.5") from exc
    if not keeps:
        raise ConfigError("keep needs at least one ratio, e.g. 0.9,0.75,0.6,0.5")
    for k in keeps:
        PruneSettings(keep=k)  # validates the range
    return keeps


def parse_fractions(text: str, option: str = "target_macs") -> tuple[float, ...]:
    """`"0.75,0.5"` -> (0.75, 0.5); each must lie in (0, 1)."""
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise ConfigError(f"{option} {text!r} must be comma-separated fractions, e.g. 0.75,0.5,0.35") from exc
    if not values or any(not 0 < v < 1 for v in values):
        raise ConfigError(f"{option} needs fractions of the dense model in (0, 1), e.g. 0.75,0.5,0.35 (got {text!r})")
    return values


def parse_importances(text: str) -> tuple[str, ...]:
    """`"gate,taylor"` -> ("gate", "taylor"), each a known criterion."""

    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise ConfigError(f"importance needs at least one criterion of {', '.join(IMPORTANCES)}")
    for n in names:
        if n not in IMPORTANCES:
            raise unknown_name("importance", n, IMPORTANCES)
    return names


def model_name_for(keep: float, importance: str | None = None, target_macs: float | None = None) -> str:
    """`pruned-k060` for a keep ratio; `pruned-<criterion>-m050` for a MAC target."""
    if target_macs is not None:
        return f"pruned-{importance}-m{round(target_macs * 100):03d}"
    return f"pruned-k{round(keep * 100):03d}" if importance in (None, "gate") else f"pruned-{importance}-k{round(keep * 100):03d}"


def sweep_run(run: Run | Path | None, keeps: Sequence[float] = (), *, base: PruneSettings = PruneSettings(),
              importances: Sequence[str] | None = None, target_macs: Sequence[float] = (),
              recover_epochs: int | None = None, int8: bool = False, backends: Sequence[str] = ("ort-cpu",),
              batch_sizes: Sequence[int] = (1, 8), runs: int = 30, show_progress: bool = True) -> SweepResult:
    """For each criterion and each keep ratio (or MAC target): prune + recover, export to ONNX, then
    benchmark them all. Every criterion gets the same budgets and `facompress prune`'s one epoch of
    training after fine-tuning (the gate ranking fades its cut out, the others recover after it);
    `recover_epochs` given: that many recovery epochs for every criterion, and no fade."""

    importances = tuple(importances or (base.importance,))
    if bool(keeps) == bool(target_macs):
        raise ConfigError("give either keep ratios (keep) or MAC targets (target_macs) to sweep over")
    run = run if isinstance(run, Run) else Run.resolve(run)
    for k in keeps:
        PruneSettings(keep=k)
    budgets = [Budget(target_macs=t) for t in target_macs]  # validates the range before any work
    check_options(backends, batch_sizes, 1, 0, runs)  # before the first prune writes anything
    if recover_epochs is not None and recover_epochs < 0:
        raise ConfigError(f"recover_epochs must be >= 0 (got {recover_epochs})")
    plans = [(imp, k, None) for imp in importances for k in keeps] + \
            [(imp, None, b) for imp in importances for b in budgets]
    with run.writer("sweep"):  # one writer: the prunes, exports and benchmark below run under this lock
        results, found = {}, {}
        for imp, k, budget in plans:
            name = model_name_for(k or 0.0, imp, budget.target_macs if budget else None)
            settings = replace(base, importance=imp, keep=k if k is not None else base.keep)
            _, results[name], found[name] = prune_run(
                PruneOptions(settings=settings, budget=budget, recover_epochs=recover_epochs, run=run.path, output=name,
                             show_progress=show_progress, fade_epochs=None if recover_epochs is None else 0))
            export_run(run, ExportOptions(model_name=name, int8=int8))
        export_run(run, ExportOptions(model_name="finetuned", int8=int8))
        report = bench_run(run, backends=list(backends), batch_sizes=list(batch_sizes), runs=runs,
                           progress=show_progress)
        return _summarise(run, report, plans, results)


def _latencies(report, onnx_name: str) -> dict[str, float]:
    art = next((a for a in report.artifacts if a.name == onnx_name), None)
    return {f"{r.backend}@{r.batch_size}": r.median_ms for r in art.latencies} if art else {}


def _summarise(run: Run, report, plans, results: dict) -> SweepResult:
    first = next(iter(results.values()))
    dense_file = run.model_path("finetuned").stat().st_size / 1e6
    dense = SweepPoint(1.0, "finetuned", first.params_before, first.macs_before, dense_file, first.acc_before,
                       first.acc_before, first.acc_before, _latencies(report, "finetuned.onnx"), first.val_before,
                       first.test_before, importance="dense")
    points = []
    for imp, k, budget in plans:
        name = model_name_for(k or 0.0, imp, budget.target_macs if budget else None)
        r = results[name]
        points.append(SweepPoint(r.keep, name, r.params_after, r.macs_after, r.size_mb_after, r.acc_pruned,
                                 r.acc_recovered, r.acc_final, _latencies(report, f"{name}.onnx"), r.val_final,
                                 r.test_final, importance=imp, target_macs=budget.target_macs if budget else None,
                                 macs_fraction=r.macs_after / r.macs_before))
    points = tuple(points)
    plot = _plot_frontier(run.path / "sweep_frontier.png", dense, points)
    result = SweepResult(dense, points, plot.name if plot else None)
    _write_json(run.path / "sweep.json", result.to_dict())
    run.record("sweep", {"status": "done", "keeps": sorted({p[1] for p in plans if p[1] is not None}),
                         "importances": sorted({p[0] for p in plans}),
                         "target_macs": sorted({p[2].target_macs for p in plans if p[2] is not None}),
                         "artifacts": {"summary": "sweep.json", **({"plot": plot.name} if plot else {})}})
    return result


def _plot_frontier(path: Path, dense: SweepPoint, points: Sequence[SweepPoint]) -> Path | None:
    """Test accuracy (95% interval as error bars) against MACs and against measured latency, one line
    per criterion, the dense model as a star."""

    require("matplotlib", "the sweep plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key = next(iter(dense.onnx_median_ms), None)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for imp in dict.fromkeys(p.importance for p in points):
        mine = sorted((p for p in points if p.importance == imp), key=lambda p: p.macs_fraction)
        acc = [100 * p.acc_final for p in mine]
        err = [[a - 100 * p.test_final.low for a, p in zip(acc, mine)],
               [100 * p.test_final.high - a for a, p in zip(acc, mine)]] if all(p.test_final for p in mine) else None
        ax1.errorbar([p.macs_fraction for p in mine], acc, yerr=err, marker="o", capsize=3, label=imp,
                     lw=2.5 if imp == "gate" else 1)
        if key is not None:
            ax2.errorbar([p.onnx_median_ms.get(key, float("nan")) for p in mine], acc, yerr=err, marker="o",
                         capsize=3, label=imp, lw=2.5 if imp == "gate" else 1)
    for ax, x in ((ax1, 1.0), (ax2, dense.onnx_median_ms.get(key, float("nan")) if key else float("nan"))):
        ax.plot([x], [100 * dense.acc_final], marker="*", ms=12, color="k", ls="none", label="dense")
        ax.set_ylabel("test top-1 accuracy (%, 95% interval)")
        ax.grid(alpha=0.3)
    ax1.set_xlabel("MACs, fraction of dense")
    ax2.set_xlabel(f"ONNX latency {key} (ms, median)" if key else "latency not measured")
    ax1.legend(fontsize=8)
    fig.suptitle("Sweep: accuracy against compute and measured latency, per criterion")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
