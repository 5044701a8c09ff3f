"""Benchmark a list of artifacts on a list of backends: the engine behind `facompress bench`.

>>> artifacts = [Artifact("dense", "torch", Path("finetuned.safetensors"), model=dense),
...              Artifact("onnx-fp32", "onnx", Path("model.onnx"), source="dense")]
>>> report = bench_artifacts(artifacts, batch_sizes=(1, 8), img_size=64, eval_data=test_loader)
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError, NotFoundError
from .backends import Backend, backend_names, check_timing_options, get_backend
from .environment import environment
from .measure import accuracy, count_macs, count_params, size_mb
from .results import ArtifactResult, BenchReport, BenchSettings, LatencyResult, SkippedBackend
from .stats import throughput_ips

# Which backend measures an artifact's accuracy, by kind, first available wins.
ACCURACY_BACKENDS = {"torch": ("torch-cuda-fp32", "torch-cpu"), "onnx": ("ort-cpu", "ort-cuda"),
                     "tensorrt": ("tensorrt",)}


@dataclass(frozen=True)
class Artifact:
    """Something to benchmark: a model (kind "torch") or a file ("onnx", "tensorrt")."""

    name: str
    kind: str
    path: Path | None = None
    model: nn.Module | None = None  # required for kind "torch"
    source: str | None = None  # the artifact it was made from; params and MACs are taken from it

    @property
    def target(self) -> Any:
        """What a backend of this kind loads."""
        return self.model if self.kind == "torch" else self.path


def _reason(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first[:300]}"


@contextlib.contextmanager
def _progress(enabled: bool, total: int) -> Iterator[Any]:
    """A rich progress bar (or a silent stand-in) with `advance(description)`."""
    if not enabled:
        yield lambda description: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), transient=False) as bar:
        task = bar.add_task("bench", total=total)
        yield lambda description: bar.update(task, advance=1, description=description)


def _eval_batches(eval_data: Any) -> Iterable[tuple[torch.Tensor, torch.Tensor]] | None:
    if eval_data is None or isinstance(eval_data, torch.utils.data.DataLoader):
        return eval_data
    if isinstance(eval_data, torch.utils.data.Dataset):
        return torch.utils.data.DataLoader(eval_data, batch_size=32, shuffle=False)
    return eval_data  # any iterable of (images, labels) batches


def check_options(backends: Sequence[str] | None, batch_sizes: Sequence[int], img_size: int, warmup: int,
                  runs: int) -> None:
    """Fail before measuring anything: unknown backend names, batch sizes <= 0, no runs."""
    for name in backends or ():
        get_backend(name)
    if not batch_sizes:
        raise ConfigError("no batch size given; pass e.g. --batch-sizes 1,8")
    for bs in batch_sizes:
        check_timing_options(bs, img_size, warmup, runs)


def _select_backends(names: Sequence[str] | None) -> tuple[list[Backend], list[SkippedBackend]]:
    """Instances of the named backends (all when None) that run here, and the skipped ones with reasons."""
    chosen = [get_backend(n) for n in (names if names is not None else backend_names())]  # unknown: error
    usable, skipped = [], []
    for backend in chosen:
        ok, reason = backend.available()
        if ok:
            usable.append(backend)
        else:
            skipped.append(SkippedBackend(backend.name, reason))
    return usable, skipped


def _static_figures(artifact: Artifact, done: dict[str, ArtifactResult], img_size: int) -> dict[str, Any]:
    size = size_mb(artifact.path) if artifact.path is not None and artifact.path.is_file() else None
    if artifact.kind == "torch" and artifact.model is not None:
        return {"size_mb": size, "params": count_params(artifact.model),
                "macs": count_macs(artifact.model, img_size)}
    src = done.get(artifact.source or "")
    return {"size_mb": size, "params": src.params if src else None, "macs": src.macs if src else None}


def _accuracy(artifact: Artifact, eval_batches: Any, eval_limit: int | None,
              notes: list[str]) -> tuple[float | None, float | None, int]:
    if eval_batches is None:
        return None, None, 0
    for name in ACCURACY_BACKENDS.get(artifact.kind, ()):
        backend = get_backend(name)
        if not backend.available()[0]:
            continue
        try:
            acc = accuracy(backend.load(artifact.target).predict, eval_batches, eval_limit)
        except Exception as exc:  # noqa: BLE001 - recorded in the report, the sweep goes on
            notes.append(f"accuracy of {artifact.name} on {name} failed: {_reason(exc)}")
            return None, None, 0
        return acc.top1_pct, acc.top5_pct, acc.n_images
    notes.append(f"accuracy of {artifact.name} not measured: no {artifact.kind} backend available here")
    return None, None, 0


def _latencies(artifact: Artifact, backend: Backend, batch_sizes: Sequence[int], img_size: int,
               warmup: int, runs: int, skipped: list[SkippedBackend], advance: Any) -> list[LatencyResult]:
    results: list[LatencyResult] = []
    try:
        runner = backend.load(artifact.target)
    except Exception as exc:  # noqa: BLE001 - recorded as a skip with its reason
        skipped.append(SkippedBackend(backend.name, f"load failed: {_reason(exc)}", artifact.name))
        for _ in batch_sizes:
            advance(f"{artifact.name} · {backend.name} (failed)")
        return results
    for bs in batch_sizes:
        advance(f"{artifact.name} · {backend.name} · batch {bs}")
        try:
            s = backend.measure(runner, bs, img_size, warmup, runs)
        except Exception as exc:  # noqa: BLE001 - e.g. out of memory at batch 64: recorded, not fatal
            skipped.append(SkippedBackend(backend.name, f"batch {bs}: {_reason(exc)}", artifact.name))
            continue
        results.append(LatencyResult(backend.name, bs, s.median_ms, s.p90_ms, s.mean_ms, s.min_ms, s.n_runs,
                                     round(throughput_ips(bs, s.median_ms), 3), runner.settings))
    return results


def bench_artifacts(artifacts: Sequence[Artifact], *, backends: Sequence[str] | None = None,
                    batch_sizes: Sequence[int] = (1, 8), warmup: int = 5, runs: int = 30,
                    img_size: int = 224, eval_data: Any = None, eval_limit: int | None = None,
                    progress: bool = False, root: Path | None = None, run_label: str | None = None,
                    notes: Sequence[str] = ()) -> BenchReport:
    """Measure every artifact on every available backend that takes its kind, at each batch size.

    Unavailable backends (and loads or batch sizes that failed) are listed in `report.skipped` with
    the reason. Paths are stored relative to `root` when they lie inside it.
    """
    if not artifacts:
        raise NotFoundError("nothing to benchmark: no model, ONNX file or engine found; "
                            "run `facompress finetune` (and prune/export) first")
    names = [a.name for a in artifacts]
    if len(set(names)) != len(names):
        raise ConfigError(f"artifact names must be unique, got {names}")
    check_options(backends, batch_sizes, img_size, warmup, runs)
    usable, skipped = _select_backends(backends)
    eval_batches, notes_out = _eval_batches(eval_data), list(notes)
    plan = [(a, b) for a in artifacts for b in usable if b.artifact_kind == a.kind]
    done: dict[str, ArtifactResult] = {}
    with _progress(progress, len(artifacts) + len(plan) * len(batch_sizes)) as advance:
        for a in artifacts:
            advance(f"{a.name} · accuracy")
            top1, top5, n = _accuracy(a, eval_batches, eval_limit, notes_out)
            lats = [r for b in usable if b.artifact_kind == a.kind
                    for r in _latencies(a, b, batch_sizes, img_size, warmup, runs, skipped, advance)]
            done[a.name] = ArtifactResult(
                name=a.name, kind=a.kind, path=_rel(a.path, root), **_static_figures(a, done, img_size),
                top1_pct=top1, top5_pct=top5, eval_images=n, latencies=tuple(lats), source=a.source)
    settings = BenchSettings(tuple(batch_sizes), warmup, runs, img_size, eval_limit)
    return BenchReport(env=environment(), artifacts=tuple(done.values()), skipped=tuple(skipped),
                       created=time.strftime("%Y-%m-%dT%H:%M:%S%z"), settings=settings, run=run_label,
                       notes=tuple(notes_out))


def _rel(path: Path | None, root: Path | None) -> str:
    if path is None:
        return ""
    if root is not None:
        try:
            return str(Path(path).resolve().relative_to(Path(root).resolve()))
        except ValueError:
            pass
    return str(path)
