"""`facompress bench` as one call: every artifact a run holds, on every backend available here.

Artifacts come from the manifest: each stage's `artifacts` maps a key to a file in the run;
`.safetensors` files are PyTorch models, `.onnx` files ONNX models, `.engine`/`.plan` TensorRT
engines; other files (JSON, PNG) are not benchmarked. An entry may also be `{"path": ..., "source":
<artifact name>, "backends": [...]}`; ONNX files otherwise name their source model in their `model_name`
metadata. `backends` (an INT8 form made for one runtime) limits where the file is measured.

>>> report = bench_run(Run.resolve(None), batch_sizes=(1, 8), progress=True)
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError, ConfigError, NotFoundError, UserError
from ..run import Run
from ..models.saved import load_model
from ..bench.results import BenchReport
from ..bench.interleave import check_rounds
from ..bench.suite import DEFAULT_ROUNDS, DEFAULT_SESSIONS, Artifact, bench_artifacts, check_options, check_sessions
from ..export.onnx import check_onnx_file
from ..gates import fold_gates, has_gates
from ..data import dataset_of_run

KINDS_BY_SUFFIX = {".safetensors": "torch", ".onnx": "onnx", ".engine": "tensorrt", ".plan": "tensorrt"}
BENCH_STAGE = "bench"
MIN_IMG_SIZE, MAX_IMG_SIZE = 16, 1024  # px: the range `finetune --img-size` accepts


def default_batch_sizes() -> tuple[int, ...]:
    """1 and 8; 64 as well where a CUDA GPU is present."""
    return (1, 8, 64) if torch.cuda.is_available() else (1, 8)


def _artifact_name(path: Path, kind: str) -> str:
    """Model files by their stem ("finetuned", "pruned"), exported files by their name ("model.int8.onnx")."""
    return path.name.removesuffix(".safetensors") if kind == "torch" else path.name


def _onnx_source(path: Path) -> str | None:
    """The `model_name` an ONNX export recorded in its metadata, if any."""
    try:
        import onnx

        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    except Exception:  # noqa: BLE001 - unreadable metadata only loses the source link
        return None
    return props.get("model_name") or None


def discover_artifacts(run: Run) -> list[tuple[str, str, Path, str | None, tuple[str, ...] | None]]:
    """(name, kind, path, source, backends) of every benchmarkable file the manifest lists, once each, in
    stage order; `backends` None means every backend of the file's kind."""
    found, seen = [], set()
    for stage, entry in run.manifest["stages"].items():
        if stage == BENCH_STAGE or not isinstance(entry, dict):
            continue
        for value in (entry.get("artifacts") or {}).values():
            rel, source = (value.get("path"), value.get("source")) if isinstance(value, dict) else (value, None)
            if not isinstance(rel, str):
                continue
            targets = value.get("backends") if isinstance(value, dict) else None
            targets = tuple(targets) if isinstance(targets, list) and targets else None
            path = run.path / rel
            kind = KINDS_BY_SUFFIX.get(path.suffix)
            if kind is None or not path.is_file() or path.resolve() in seen:
                continue
            seen.add(path.resolve())
            if kind == "onnx" and source is None:
                source = _onnx_source(path)
            found.append((_artifact_name(path, kind), kind, path, source, targets))
    torch_names = {f[0] for f in found if f[1] == "torch"}
    return [(n, k, p, s if s in torch_names else None, t) for n, k, p, s, t in found]


def _load_artifacts(run: Run, notes: list[str]) -> tuple[list[Artifact], int | None]:
    """Artifacts with their torch models loaded (gates folded), and the image size the models were trained at."""

    artifacts, img_size = [], None
    for name, kind, path, source, targets in discover_artifacts(run):
        model = None
        if kind == "onnx":
            check_onnx_file(path)  # a damaged file is refused before anything is measured or written
        if kind == "torch":
            model, meta = load_model(path)
            run.check_model_meta(path, meta)
            img_size = img_size or meta.get("img_size")
            if has_gates(model):
                fold_gates(model)
                notes.append(f"{name}: gates folded into BatchNorm before measuring (exact, as exported)")
        artifacts.append(Artifact(name, kind, path, model=model, source=source, backends=targets))
    return artifacts, img_size


def _eval_data(run: Run, eval_limit: int | None, notes: list[str]) -> Any:

    try:
        bundle = dataset_of_run(run, limit_test=eval_limit if eval_limit is not None else "same")
    except UserError as exc:
        notes.append(f"accuracy not measured: {exc}")
        return None
    return torch.utils.data.DataLoader(bundle.test, batch_size=64, shuffle=False)


def report_inputs(run: Run) -> dict[str, Any]:
    """Gate values per stage (from the fine-tuning's gates.json) and channels per layer before and after
    pruning (from the prune stage's metrics), for the report's plots; empty where the run has none."""
    stages = run.manifest["stages"]
    out: dict[str, Any] = {}
    gates_rel = ((stages.get("finetune") or {}).get("artifacts") or {}).get("gates")
    if isinstance(gates_rel, str) and (run.path / gates_rel).is_file():
        by_stage: dict[str, list[float]] = {}
        layers = run.read_json(gates_rel)  # checked against the checksum the fine-tuning recorded
        if not isinstance(layers, list) or not all(isinstance(x, dict) and isinstance(x.get("stage"), str)
                                                   and isinstance(x.get("gates"), list) for x in layers):
            raise CheckpointError(f"{run.path / gates_rel} is not a gate ranking (a list of layers with "
                                  f"`stage` and `gates`); re-run `facompress finetune`")
        for layer in layers:
            by_stage.setdefault(layer["stage"], []).extend(layer["gates"])
        out["gate_values"] = by_stage
    prune_keys = sorted(k for k in stages if k == "prune" or k.startswith("prune:"))
    if prune_keys:
        metrics = (stages[prune_keys[0]] or {}).get("metrics") or {}
        if metrics.get("channels_before") and metrics.get("channels_after"):
            out["channels_before"], out["channels_after"] = metrics["channels_before"], metrics["channels_after"]
    return out


def summary(report: BenchReport) -> dict[str, Any]:
    """The manifest's short form of a report: per artifact, accuracy (with n and interval), size, median
    latencies and latency ratios against the dense artifact timed in the same rounds."""
    return {a.name: {"kind": a.kind, "top1_pct": a.top1_pct, "top1_interval_pct": [a.top1_low_pct, a.top1_high_pct],
                     "eval_images": a.eval_images, "size_mb": a.size_mb, "macs": a.macs,
                     "latency_ms": {f"{r.backend}@{r.batch_size}": r.median_ms for r in a.latencies},
                     "latency_ratio_vs_dense": {f"{r.backend}@{r.batch_size}": [r.ratio.median, r.ratio.low, r.ratio.high]
                                                for r in a.latencies if r.ratio is not None}}
            for a in report.artifacts}


def bench_run(run: Run, *, backends: Sequence[str] | None = None, batch_sizes: Sequence[int] | None = None,
              warmup: int = 5, rounds: int = DEFAULT_ROUNDS, eval_limit: int | None = None, img_size: int | None = None,
              threads: int | None = None, progress: bool = False, write: bool = True,
              order: str = "interleaved", seed: int = 0, runs: int | None = None,
              memory_format: str = "auto", sessions: int = DEFAULT_SESSIONS) -> BenchReport:
    """Benchmark every artifact of `run`; with `write`, store report.{json,md,html} and plots in the run
    and a summary in run.json. `backends=None` means all (the unavailable ones are listed with reasons).
    `threads` sets torch's CPU threads (onnxruntime's CPU backend uses the same number) for the call.
    Latency: `warmup` untimed then `rounds` timed interleaved rounds (`order="sequential"`: the old
    one-artifact-after-the-other timing), spread over `sessions` loads of each artifact; `runs` is the
    former name of `rounds`. `memory_format` (auto,
    channels_last, contiguous) lays out torch-cpu's models and batches; the report records it. With `write`,
    `RunLockedError` while another command writes the run."""
    if threads is not None and threads < 1:
        raise ConfigError(f"threads must be >= 1, got {threads}")
    saved = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        timing = {"warmup": warmup, "rounds": rounds if runs is None else runs, "order": order, "seed": seed,
                  "memory_format": memory_format, "sessions": sessions}
        with run.writer(BENCH_STAGE) if write else nullcontext():  # a refused bench measures nothing
            return _bench_run(run, backends, batch_sizes, timing, eval_limit, img_size, progress, write)
    finally:
        torch.set_num_threads(saved)


def _bench_run(run: Run, backends: Sequence[str] | None, batch_sizes: Sequence[int] | None, timing: dict[str, Any],
               eval_limit: int | None, img_size: int | None, progress: bool, write: bool) -> BenchReport:
    from .write import write_report

    sizes = tuple(batch_sizes or default_batch_sizes())
    check_rounds(timing["warmup"], timing["rounds"], timing["order"])  # all before loading anything
    check_sessions(timing["sessions"])
    check_options(backends, sizes, img_size or MIN_IMG_SIZE, timing["warmup"], timing["rounds"],
                  timing["memory_format"])
    if img_size is not None and not MIN_IMG_SIZE <= img_size <= MAX_IMG_SIZE:
        raise ConfigError(f"img_size must be in [{MIN_IMG_SIZE}, {MAX_IMG_SIZE}] px (got {img_size}); "
                          f"leave it out to measure at the size the model was trained at")
    if eval_limit is not None and eval_limit < 1:
        raise ConfigError(f"eval_limit must be >= 1 image, got {eval_limit}")
    if not discover_artifacts(run):
        raise NotFoundError(f"run {run.path} holds nothing to benchmark (no .safetensors model, .onnx file or "
                            f"engine in run.json); run `facompress finetune` (then prune/export) first")
    notes: list[str] = []
    artifacts, trained_size = _load_artifacts(run, notes)
    report = bench_artifacts(
        artifacts, backends=backends, batch_sizes=sizes, **timing,
        img_size=img_size or trained_size or 224, eval_data=_eval_data(run, eval_limit, notes),
        eval_limit=eval_limit, progress=progress, root=run.path, run_label=run.path.name, notes=notes)
    if write:
        paths = write_report(run.path, report, **report_inputs(run))
        run.record(BENCH_STAGE, {"status": "done", "artifacts": {p.name.replace(".", "_"): p.name for p in paths},
                                 "summary": summary(report),
                                 "skipped": [f"{s.backend}{f' ({s.artifact})' if s.artifact else ''}: {s.reason}"
                                             for s in report.skipped]})
    return report
