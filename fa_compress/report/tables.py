"""The report's tables as plain rows of text, shared by the Markdown and HTML writers.

Every number is formatted here with a fixed number of digits, so a report rendered twice from the
same `BenchReport` is the same text.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..bench.results import ArtifactResult, BenchReport, LatencyResult

NONE = "—"


@dataclass(frozen=True)
class Table:
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""


def fmt(value: float | int | None, digits: int = 2, scale: float = 1.0) -> str:
    """`value / scale` with `digits` decimals, or an em dash for None."""
    return NONE if value is None else f"{value / scale:.{digits}f}"


def _ratio(value: float) -> str:
    return f"{value:.2f}×" if value >= 0.1 else f"{value:.3f}×"


def headline_latency(artifact: ArtifactResult) -> LatencyResult | None:
    """The artifact's fastest measurement at the smallest batch size it was measured at."""
    if not artifact.latencies:
        return None
    smallest = min(r.batch_size for r in artifact.latencies)
    at_smallest = [r for r in artifact.latencies if r.batch_size == smallest]
    return min(at_smallest, key=lambda r: (r.median_ms, r.backend))


def headline_table(report: BenchReport) -> Table:
    """Per artifact: accuracy, size, MACs, its best small-batch latency, and that latency against a
    densest artifact's (most MACs) on the same backend and batch, so a ratio shows what pruning or
    quantisation did, not what a change of backend did."""
    rows = []
    for a in report.artifacts:
        lat = headline_latency(a)
        rows.append((a.name, fmt(a.top1_pct), fmt(a.size_mb), fmt(a.macs, 1, 1e6),
                     fmt(lat.median_ms if lat else None), f"{lat.backend} ({lat.batch_size})" if lat else NONE,
                     _versus_densest(report, a, lat)))
    note = ("ms: median latency on the artifact's fastest backend at its smallest batch; vs dense: that latency "
            "over the densest artifact's (most MACs) on the same backend and batch, lower is faster; — where no "
            "dense artifact was measured there")
    return Table("Headline", ("artifact", "top-1 %", "MB", "MACs M", "ms", "backend (batch)", "vs dense"),
                 tuple(rows), note)


def _reference(report: BenchReport, backend: str, batch_size: int,
               densest_only: bool) -> tuple[ArtifactResult, LatencyResult] | None:
    """What latencies on (`backend`, `batch_size`) are compared with: the first artifact with the
    report's most MACs measured there; else, unless `densest_only`, the first artifact measured there."""
    most = max(((a.macs or 0) for a in report.artifacts), default=0)
    measured = [(a, r) for a in report.artifacts
                if (r := a.latency(backend, batch_size)) is not None and r.median_ms > 0]
    dense = [(a, r) for a, r in measured if (a.macs or 0) == most]
    return (dense or ([] if densest_only else measured) or [None])[0]


def _versus_densest(report: BenchReport, artifact: ArtifactResult, lat: LatencyResult | None) -> str:
    """`lat` over the latency, on the same backend and batch, of an artifact with the report's most MACs."""
    ref = _reference(report, lat.backend, lat.batch_size, densest_only=True) if lat is not None else None
    if ref is None:
        return NONE
    return "1.00×" if ref[0] is artifact else _ratio(lat.median_ms / ref[1].median_ms)


def artifact_table(report: BenchReport) -> Table:
    rows = tuple((a.name, a.kind, fmt(a.size_mb), fmt(a.params, 3, 1e6), fmt(a.macs, 1, 1e6),
                  fmt(a.top1_pct), fmt(a.top5_pct), str(a.eval_images), a.source or NONE)
                 for a in report.artifacts)
    return Table("Artifacts", ("artifact", "kind", "size MB", "params M", "MACs M", "top-1 %", "top-5 %",
                               "eval images", "made from"), rows,
                 "MACs per image at the benchmark's image size; MB = 10^6 bytes.")


def latency_table(report: BenchReport) -> Table:
    """Every measurement; speed-up against the densest artifact measured on the same backend and batch
    (the first one measured there when no densest one was)."""
    rows = []
    for a in report.artifacts:
        for r in a.latencies:
            ref = _reference(report, r.backend, r.batch_size, densest_only=False)
            speedup = f"{ref[1].median_ms / r.median_ms:.2f}× vs {ref[0].name}" if ref and r.median_ms > 0 else NONE
            rows.append((a.name, r.backend, str(r.batch_size), fmt(r.median_ms, 3), fmt(r.p90_ms, 3),
                         fmt(r.throughput_ips, 1), str(r.n_runs), speedup))
    return Table("Latency", ("artifact", "backend", "batch", "median ms", "p90 ms", "images/s", "runs",
                             "speed-up"), tuple(rows),
                 "Median and p90 of timed runs after warm-up; images/s = batch / median.")


def backend_settings_table(report: BenchReport) -> Table:
    seen: dict[str, str] = {}
    for a in report.artifacts:
        for r in a.latencies:
            seen.setdefault(r.backend, r.settings)
    return Table("Backends", ("backend", "settings"), tuple((k, v or NONE) for k, v in seen.items()))


def skipped_table(report: BenchReport) -> Table:
    rows = tuple((s.backend, s.artifact or "all", s.reason) for s in report.skipped)
    return Table("Skipped backends", ("backend", "artifact", "reason"), rows)


def environment_table(report: BenchReport) -> Table:
    env, s = report.env, report.settings
    rows = [("python", env.python), ("platform", env.platform), ("torch", env.torch),
            ("onnxruntime", env.onnxruntime or NONE), ("torch-pruning", env.torch_pruning or NONE),
            ("torch threads", str(env.torch_threads)), ("CPU", f"{env.cpu_name} ({env.cpu_count} logical)"),
            ("GPU", env.gpu_name or NONE), ("CUDA", env.cuda or NONE)]
    if s is not None:
        rows += [("image size", f"{s.img_size} px"), ("batch sizes", ", ".join(map(str, s.batch_sizes))),
                 ("warm-up / timed runs", f"{s.warmup} / {s.runs}"),
                 ("accuracy images", "all" if s.eval_limit is None else f"≤ {s.eval_limit}")]
    return Table("Environment", ("", ""), tuple(rows))


def all_tables(report: BenchReport) -> list[Table]:
    """The report's tables in reading order; empty ones are left out."""
    tables = [headline_table(report), artifact_table(report), latency_table(report),
              backend_settings_table(report), skipped_table(report), environment_table(report)]
    return [t for t in tables if t.rows]
