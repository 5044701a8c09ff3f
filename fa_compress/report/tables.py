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
    return f"{value:.2f}" if value >= 0.1 else f"{value:.3f}"


def ratio_cell(r: LatencyResult | None) -> str:
    """The latency ratio against the dense artifact timed in the same rounds: `0.62× [0.58, 0.66]`
    (this latency / dense latency, < 1 is faster); a too-wide interval is shown as `noisy` with its range
    and no point figure; `1 (dense)` for the reference itself; — where there was no reference."""
    if r is None or r.reference is None:
        return NONE
    if r.ratio is None:
        return "1 (dense)"
    q = r.ratio
    if q.noisy:
        return f"noisy: {_ratio(q.low)}–{_ratio(q.high)}×"
    return f"{_ratio(q.median)}× [{_ratio(q.low)}, {_ratio(q.high)}]"


def accuracy_cell(a: ArtifactResult) -> str:
    """`77.33 [73.10, 81.10]`: top-1 % and its 95% Wilson interval (n in its own column)."""
    if a.top1_pct is None:
        return NONE
    if a.top1_low_pct is None or a.top1_high_pct is None:
        return fmt(a.top1_pct)
    return f"{a.top1_pct:.2f} [{a.top1_low_pct:.2f}, {a.top1_high_pct:.2f}]"


def diff_cell(a: ArtifactResult, reference: str | None) -> str:
    """Top-1 difference in points against `reference` on the same images, `(noise)` when McNemar's
    exact test cannot tell it from chance (p >= 0.05); `ref` for the reference itself."""
    if reference is None or a.top1_pct is None:
        return NONE
    if a.name == reference:
        return "ref"
    d = next((d for d in a.accuracy_vs if d.reference == reference), None)
    if d is None:
        return NONE
    verdict = "noise" if d.within_noise else "significant"
    return f"{d.diff_points:+.2f} ({verdict}, p={d.p_value:.2g})"


def accuracy_reference(report: BenchReport) -> str | None:
    """The artifact the accuracy differences are taken against: the first with the most MACs measured."""
    measured = [a for a in report.artifacts if a.top1_pct is not None]
    most = max(((a.macs or 0) for a in measured), default=0)
    return next((a.name for a in measured if (a.macs or 0) == most), None)


def headline_latency(artifact: ArtifactResult) -> LatencyResult | None:
    """The artifact's fastest measurement at the smallest batch size it was measured at."""
    if not artifact.latencies:
        return None
    smallest = min(r.batch_size for r in artifact.latencies)
    at_smallest = [r for r in artifact.latencies if r.batch_size == smallest]
    return min(at_smallest, key=lambda r: (r.median_ms, r.backend))


def _largest_batch(artifact: ArtifactResult, backend: str) -> LatencyResult | None:
    on = [r for r in artifact.latencies if r.backend == backend]
    return max(on, key=lambda r: r.batch_size) if on else None


def headline_table(report: BenchReport) -> Table:
    """Per artifact: accuracy with interval, n and difference to dense; size, MACs; on its fastest
    backend at the smallest batch, the latency and its ratio to the dense artifact timed in the same
    rounds, and the same ratio at the largest batch."""
    ref = accuracy_reference(report)
    rows = []
    for a in report.artifacts:
        lat = headline_latency(a)
        big = _largest_batch(a, lat.backend) if lat else None
        big = big if big is not None and lat is not None and big.batch_size != lat.batch_size else None
        rows.append((a.name, accuracy_cell(a), str(a.eval_images) if a.top1_pct is not None else NONE,
                     diff_cell(a, ref), fmt(a.size_mb), fmt(a.macs, 1, 1e6),
                     f"{lat.backend} ({lat.batch_size})" if lat else NONE, fmt(lat.median_ms if lat else None),
                     ratio_cell(lat), ratio_cell(big) if big else NONE))
    small = min(report.settings.batch_sizes) if report.settings else 1
    large = max(report.settings.batch_sizes) if report.settings else small
    note = (f"top-1 %: with its 95% Wilson interval over n test images; Δ top-1: points against {ref or 'dense'} "
            f"on the same images, McNemar's exact test (noise: p >= 0.05). ms: median latency on the artifact's "
            f"fastest backend at its smallest batch. × dense: latency / the dense (most MACs) artifact's latency "
            f"on the same backend and batch, per interleaved round (each visit's fastest call), median [95% bootstrap "
            f"interval]; < 1 is "
            f"faster; noisy: the interval is wider than ±10%, so no single figure is given.")
    return Table("Headline", ("artifact", "top-1 % [95% CI]", "n", "Δ top-1 vs dense", "MB", "MACs M",
                              "backend (batch)", "ms", f"× dense (batch {small})", f"× dense (batch {large})"),
                 tuple(rows), note)


def spread_warnings(report: BenchReport) -> list[str]:
    """One line per latency ratio too uncertain to be read as a figure (and what to do about it)."""
    lines = []
    for name, r in report.noisy_ratios():
        q = r.ratio
        lines.append(f"{name} on {r.backend} at batch {r.batch_size}: latency {q.low:.2f}–{q.high:.2f}× "
                     f"{r.reference} (±{q.half_width_pct:.0f}%, {q.n_rounds} rounds); the machine was too busy "
                     f"for a firm figure: re-run `facompress bench` with more rounds (or sessions) on a quieter machine")
    return lines


def artifact_table(report: BenchReport) -> Table:
    ref = accuracy_reference(report)
    rows = tuple((a.name, a.kind, fmt(a.size_mb), fmt(a.params, 3, 1e6), fmt(a.macs, 1, 1e6),
                  accuracy_cell(a), fmt(a.top5_pct), str(a.eval_images), diff_cell(a, ref),
                  a.source or NONE, diff_cell(a, a.source) if a.source else NONE)
                 for a in report.artifacts)
    return Table("Artifacts", ("artifact", "kind", "size MB", "params M", "MACs M", "top-1 % [95% CI]", "top-5 %",
                               "eval images", "Δ top-1 vs dense", "made from", "Δ top-1 vs made from"), rows,
                 "MACs per image at the benchmark's image size; MB = 10^6 bytes. Δ: percentage points on the same "
                 "images, McNemar's exact test (noise: p >= 0.05).")


def latency_table(report: BenchReport) -> Table:
    """Every measurement, with its ratio to the dense artifact timed in the same rounds."""
    rows = []
    for a in report.artifacts:
        for r in a.latencies:
            rows.append((a.name, r.backend, str(r.batch_size), fmt(r.median_ms, 3), fmt(r.p90_ms, 3),
                         fmt(r.throughput_ips, 1),
                         str(r.n_runs) if r.calls_per_round == 1 else f"{r.n_runs} × {r.calls_per_round} calls",
                         ratio_cell(r), r.reference or NONE))
    order = report.settings.order if report.settings else "interleaved"
    k = report.settings.sessions if report.settings else 1
    sessions = f"{k} independent loads of each artifact" if k > 1 else "one load of each artifact"
    return Table("Latency", ("artifact", "backend", "batch", "median ms", "p90 ms", "images/s", "rounds",
                             "× dense [95% CI]", "dense"), tuple(rows),
                 f"Median and p90 over {order} rounds after warm-up; an artifact whose call is shorter than ~10 ms "
                 f"is visited for several calls per round (rounds × calls) and each visit counts with its fastest "
                 f"call; images/s = batch / median; × dense: this latency / the dense artifact's, per round, median "
                 f"[95% bootstrap interval over {sessions} and blocks of rounds], < 1 is faster.")


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
    load = lambda v: NONE if v is None else " / ".join(f"{x:.2f}" for x in v)  # noqa: E731
    threads = f"torch {env.torch_threads} intra-op" + (
        f", {env.torch_interop_threads} inter-op" if env.torch_interop_threads else "")
    threads += "".join(f", {k}={v}" for k, v in sorted(env.thread_env.items()))
    rows = [("python", env.python), ("platform", env.platform), ("torch", env.torch),
            ("onnxruntime", env.onnxruntime or NONE), ("torch-pruning", env.torch_pruning or NONE),
            ("threads", threads), ("CPU", f"{env.cpu_name} ({env.cpu_count} logical)"),
            ("CPU vector extensions", ", ".join(env.cpu_flags) or NONE),
            ("torch-cpu memory format", env.memory_format or NONE),
            ("load average 1/5/15 min, before", load(env.load_avg_before)),
            ("load average 1/5/15 min, after", load(env.load_avg_after)),
            ("GPU", env.gpu_name or NONE), ("CUDA", env.cuda or NONE)]
    if s is not None:
        rows += [("image size", f"{s.img_size} px"), ("batch sizes", ", ".join(map(str, s.batch_sizes))),
                 ("warm-up / timed rounds", f"{s.warmup} / {s.rounds} ({s.order}, seed {s.seed})"),
                 ("loads (sessions) of each artifact", f"{s.sessions}, the rounds spread over them"),
                 ("accuracy images", "all" if s.eval_limit is None else f"≤ {s.eval_limit}")]
    return Table("Environment", ("", ""), tuple(rows))


def all_tables(report: BenchReport) -> list[Table]:
    """The report's tables in reading order; empty ones are left out."""
    tables = [headline_table(report), artifact_table(report), latency_table(report),
              backend_settings_table(report), skipped_table(report), environment_table(report)]
    return [t for t in tables if t.rows]
