"""Keep-ratio sweeps: prune, recover, export and benchmark each ratio from one fine-tuned run,
then draw the accuracy-latency-size frontier. Each point carries its validation accuracy (what
keep-or-undo chose on) and its test accuracy with image count and 95% interval (reported only).

>>> result = sweep_run(None, keeps=(0.9, 0.75, 0.6, 0.5))   # the latest run
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ..accuracy import Accuracy
from ..errors import ConfigError
from ..prune.pruner import PruneSettings
from ..run import Run, _write_json


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
        raise ConfigError(f"--keep {text!r} must be comma-separated numbers, e.g. 0.9,0.75,0.6,0.5") from exc
    if not keeps:
        raise ConfigError("--keep needs at least one ratio, e.g. 0.9,0.75,0.6,0.5")
    for k in keeps:
        PruneSettings(keep=k)  # validates the range
    return keeps


def model_name_for(keep: float) -> str:
    return f"pruned-k{round(keep * 100):03d}"


def sweep_run(run: Run | Path | None, keeps: Sequence[float], *, base: PruneSettings = PruneSettings(),
              recover_epochs: int = 1, int8: bool = False, backends: Sequence[str] = ("ort-cpu",),
              batch_sizes: Sequence[int] = (1, 8), runs: int = 30, show_progress: bool = True) -> SweepResult:
    """For each keep: prune + recover (`pruned-kNNN`), export to ONNX, then benchmark them all."""
    from ..bench.run_bench import bench_run
    from ..bench.suite import check_options
    from ..export.pipeline import ExportOptions, export_run
    from ..prune.stage import PruneOptions, prune_run

    run = run if isinstance(run, Run) else Run.resolve(run)
    for k in keeps:
        PruneSettings(keep=k)
    check_options(backends, batch_sizes, 1, 0, runs)  # before the first prune writes anything
    if recover_epochs < 0:
        raise ConfigError(f"--recover-epochs must be >= 0 (got {recover_epochs})")
    results = {}
    for k in keeps:
        name = model_name_for(k)
        _, results[k], _ = prune_run(PruneOptions(settings=replace(base, keep=k), recover_epochs=recover_epochs,
                                                  run=run.path, output=name, show_progress=show_progress))
        export_run(run, ExportOptions(model_name=name, int8=int8))
    export_run(run, ExportOptions(model_name="finetuned", int8=int8))
    report = bench_run(run, backends=list(backends), batch_sizes=list(batch_sizes), runs=runs,
                       progress=show_progress)
    return _summarise(run, report, keeps, results)


def _latencies(report, onnx_name: str) -> dict[str, float]:
    art = next((a for a in report.artifacts if a.name == onnx_name), None)
    return {f"{r.backend}@{r.batch_size}": r.median_ms for r in art.latencies} if art else {}


def _summarise(run: Run, report, keeps: Sequence[float], results: dict) -> SweepResult:
    first = results[keeps[0]]
    dense_file = run.model_path("finetuned").stat().st_size / 1e6
    dense = SweepPoint(1.0, "finetuned", first.params_before, first.macs_before, dense_file, first.acc_before,
                       first.acc_before, first.acc_before, _latencies(report, "finetuned.onnx"), first.val_before,
                       first.test_before)
    points = tuple(SweepPoint(k, model_name_for(k), r.params_after, r.macs_after, r.size_mb_after, r.acc_pruned,
                              r.acc_recovered, r.acc_final, _latencies(report, f"{model_name_for(k)}.onnx"),
                              r.val_final, r.test_final)
                   for k, r in results.items())
    plot = _plot_frontier(run.path / "sweep_frontier.png", dense, points)
    result = SweepResult(dense, points, plot.name if plot else None)
    _write_json(run.path / "sweep.json", result.to_dict())
    run.record("sweep", {"status": "done", "keeps": list(keeps),
                         "artifacts": {"summary": "sweep.json", **({"plot": plot.name} if plot else {})}})
    return result


def _plot_frontier(path: Path, dense: SweepPoint, points: Sequence[SweepPoint]) -> Path | None:
    from .._deps import require

    require("matplotlib", "the sweep plot")
    import matplotlib.pyplot as plt

    everyone = [dense, *points]
    key = next(iter(dense.onnx_median_ms), None)
    if key is None:
        return None
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6))
    for p in everyone:
        acc = 100 * p.acc_final
        t = p.test_final  # the 95% interval of the test accuracy, as error bars
        yerr = [[acc - 100 * t.low], [100 * t.high - acc]] if t is not None else None
        ax1.scatter(p.onnx_median_ms.get(key, float("nan")), acc, s=20 + 4 * p.size_mb)
        ax1.errorbar(p.onnx_median_ms.get(key, float("nan")), acc, yerr=yerr, fmt="none", capsize=3, lw=0.8)
        ax1.annotate(f"keep {p.keep}", (p.onnx_median_ms.get(key, float("nan")), acc), fontsize=8)
        ax2.errorbar(p.size_mb, acc, yerr=yerr, fmt="o", capsize=3, lw=0.8)
        ax2.annotate(f"{p.keep}", (p.size_mb, acc), fontsize=8)
    ax1.set_xlabel(f"ONNX latency {key} (ms, median)")
    ax1.set_ylabel("test top-1 accuracy (%, 95% interval)")
    ax2.set_xlabel("model file (MB)")
    fig.suptitle("Keep-ratio sweep: accuracy vs latency and size (marker size ~ file size)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
