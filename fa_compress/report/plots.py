"""The report's PNG plots, drawn with matplotlib's Agg backend (matplotlib is imported lazily).

Each function draws one figure into `path` and returns it, or returns None when there is nothing
to draw (no accuracy measured, no gates given).

>>> plot_gate_histograms({"layer1": [0.9, 1.1, 0.0]}, run_dir / "gates.png")
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._deps import require
from ..bench.results import BenchReport
from ..run import atomic_write_bytes

_DPI = 110


def _figure(width_in: float, height_in: float) -> Any:
    require("matplotlib", "the report's plots")  # also selects the Agg backend
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), dpi=_DPI, layout="constrained")


def _save(fig: Any, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


def pareto_front(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (latency, accuracy) points no other point beats on both: faster and at least as accurate."""
    front: list[tuple[float, float]] = []
    for lat, acc in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or acc > front[-1][1]:
            front.append((lat, acc))
    return front


def _errors(values: Sequence[float], lows: Sequence[float], highs: Sequence[float]) -> list[list[float]]:
    """matplotlib's asymmetric error bars: distances below and above each value, never negative."""
    return [[max(0.0, v - lo) for v, lo in zip(values, lows)], [max(0.0, hi - v) for v, hi in zip(values, highs)]]


def plot_pareto(report: BenchReport, path: Path) -> Path | None:
    """Top-1 against median latency at each backend's smallest batch size, with the Pareto front.
    Vertical bars: the 95% Wilson interval of top-1; horizontal bars: the latency from the fastest
    run to p90, the spread of the timed runs."""
    by_backend: dict[str, list[tuple[float, float, str, float, float, float, float]]] = {}
    for a in report.artifacts:
        if a.top1_pct is None:
            continue
        low, high = (a.top1_low_pct, a.top1_high_pct) if a.top1_low_pct is not None else (a.top1_pct, a.top1_pct)
        for backend in dict.fromkeys(r.backend for r in a.latencies):
            r = min((r for r in a.latencies if r.backend == backend), key=lambda r: r.batch_size)
            by_backend.setdefault(f"{backend} (batch {r.batch_size})", []).append(
                (r.median_ms, a.top1_pct, a.name, r.min_ms, r.p90_ms, low, high))
    if not by_backend:
        return None
    fig = _figure(7.5, 4.8)
    ax = fig.add_subplot()
    markers = "osD^vP*X"
    for i, (label, pts) in enumerate(sorted(by_backend.items())):
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        ax.errorbar(xs, ys, xerr=_errors(xs, [p[3] for p in pts], [p[4] for p in pts]),
                    yerr=_errors(ys, [p[5] for p in pts], [p[6] for p in pts]), fmt=markers[i % len(markers)],
                    markersize=7, capsize=3, elinewidth=1, label=label)
        for lat, acc, name, *_ in pts:
            ax.annotate(name, (lat, acc), textcoords="offset points", xytext=(5, 4), fontsize=8)
    front = pareto_front([(p[0], p[1]) for pts in by_backend.values() for p in pts])
    ax.step([p[0] for p in front], [p[1] for p in front], where="post", color="0.5", linestyle="--",
            linewidth=1, label="Pareto front")
    ax.set_xscale("log")
    ax.set_xlabel("median latency, ms (log scale; bars: fastest run to p90)")
    ax.set_ylabel("top-1 accuracy, % (bars: 95% interval)")
    ax.set_title("Accuracy against latency")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_latency_ratios(report: BenchReport, path: Path) -> Path | None:
    """Each artifact's latency / the dense artifact's, per backend and batch, with its 95% interval;
    ratios whose interval is wider than +-10% are drawn hollow and marked "noisy"."""
    rows = [(f"{a.name} · {r.backend} b{r.batch_size}", r.ratio) for a in report.artifacts
            for r in a.latencies if r.ratio is not None]
    if not rows:
        return None
    fig = _figure(8.0, 0.32 * len(rows) + 1.5)
    ax = fig.add_subplot()
    ys = list(range(len(rows)))
    meds = [q.median for _, q in rows]
    errs = _errors(meds, [q.low for _, q in rows], [q.high for _, q in rows])
    for y, (label, q) in enumerate(rows):
        ax.errorbar([q.median], [y], xerr=[[errs[0][y]], [errs[1][y]]], fmt="o", capsize=3,
                    color="C3" if q.noisy else "C0", markerfacecolor="white" if q.noisy else "C0")
        ax.text(q.high, y, f"  {'noisy ' if q.noisy else ''}{q.median:.2f}×", va="center", fontsize=7)
    ax.axvline(1.0, color="0.4", linestyle="--", linewidth=1)
    ax.set_yticks(ys, [label for label, _ in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("latency / dense latency, same rounds (< 1 is faster); bars: 95% interval")
    ax.set_title("Latency against the dense artifact")
    ax.margins(x=0.25)
    return _save(fig, path)


def plot_size_macs(report: BenchReport, path: Path) -> Path | None:
    """Size on disk and MACs per artifact, side by side."""
    names = [a.name for a in report.artifacts]
    if not names:
        return None
    fig = _figure(9.0, 0.45 * len(names) + 1.6)
    for col, (title, values) in enumerate([
            ("size on disk, MB", [a.size_mb for a in report.artifacts]),
            ("MACs per image, millions", [None if a.macs is None else a.macs / 1e6 for a in report.artifacts])]):
        ax = fig.add_subplot(1, 2, col + 1)
        ys = list(range(len(names)))
        ax.barh(ys, [v or 0.0 for v in values], color="C0" if col == 0 else "C1")
        for y, v in zip(ys, values, strict=True):
            ax.text(v or 0.0, y, f" {v:.3g}" if v is not None else " n/a", va="center", fontsize=8)
        ax.set_yticks(ys, names if col == 0 else [""] * len(names))
        ax.invert_yaxis()
        ax.set_title(title)
        ax.margins(x=0.2)
    return _save(fig, path)


def plot_gate_histograms(gate_values: Mapping[str, Sequence[float]], path: Path, bins: int = 40) -> Path | None:
    """One histogram of gate values per stage; gates start at 1, noise channels fall toward 0."""
    stages = [(k, list(v)) for k, v in gate_values.items() if len(v)]
    if not stages:
        return None
    ncols = min(4, len(stages))
    nrows = math.ceil(len(stages) / ncols)
    fig = _figure(3.2 * ncols, 2.5 * nrows)
    for i, (stage, values) in enumerate(stages):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        ax.hist(values, bins=bins, color="C2")
        ax.axvline(1.0, color="0.4", linestyle="--", linewidth=1)  # the initial value
        ax.set_title(f"{stage} ({len(values)} channels)", fontsize=9)
        ax.tick_params(labelsize=8)
    fig.suptitle("Gate values per stage (dashed: initial value 1)")
    return _save(fig, path)


def plot_channels(before: Mapping[str, int], after: Mapping[str, int], path: Path) -> Path | None:
    """Channels per layer before and after pruning, in the order of `before`."""
    layers = list(before)
    if not layers:
        return None
    kept = [after.get(name, 0) for name in layers]
    total_before, total_after = sum(before.values()), sum(kept)
    fig = _figure(min(4.0 + 0.18 * len(layers), 24.0), 4.2)
    ax = fig.add_subplot()
    xs = list(range(len(layers)))
    ax.bar(xs, [before[n] for n in layers], color="0.8", label="before")
    ax.bar(xs, kept, color="C0", width=0.6, label="after")
    step = max(1, math.ceil(len(layers) / 60))  # at most ~60 readable labels
    ax.set_xticks(xs[::step], layers[::step], rotation=90, fontsize=6)
    ax.set_ylabel("output channels")
    ax.set_title(f"Channels per layer: {total_after} of {total_before} kept "
                 f"({100.0 * total_after / max(total_before, 1):.1f}%)")
    ax.legend(fontsize=8)
    return _save(fig, path)
