"""Benchmark a list of artifacts on a list of backends: the engine behind `facompress bench`.

>>> artifacts = [Artifact("dense", "torch", Path("finetuned.safetensors"), model=dense),
...              Artifact("onnx-fp32", "onnx", Path("model.onnx"), source="dense")]
>>> report = bench_artifacts(artifacts, batch_sizes=(1, 8), img_size=64, eval_data=test_loader)
>>> report.artifacts[1].latency("ort-cpu", 8).ratio     # vs the densest ONNX timed in the same rounds
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
from ..accuracy import compare_paired
from .backends import Backend, Runner, backend_names, check_timing_options, get_backend
from .compare import compare_steps
from ..machine import load_average
from .environment import environment
from .interleave import check_rounds
from .measure import Evaluation, accuracy, count_macs, count_params, size_mb
from .results import AccuracyDiff, ArtifactResult, BenchReport, BenchSettings, LatencyResult, SkippedBackend
from .stats import session_ratio_stats, summarize, throughput_ips
from ..train.memory_format import check_memory_format

# Which backend measures an artifact's accuracy, by kind, first available wins.
ACCURACY_BACKENDS = {"torch": ("torch-cuda-fp32", "torch-cpu"), "onnx": ("ort-cpu", "ort-cuda", "openvino-cpu"),
                     "tensorrt": ("tensorrt",)}


@dataclass(frozen=True)
class Artifact:
    """Something to benchmark: a model (kind "torch") or a file ("onnx", "tensorrt")."""

    name: str
    kind: str
    path: Path | None = None
    model: nn.Module | None = None  # required for kind "torch"
    source: str | None = None  # the artifact it was made from; params and MACs are taken from it
    backends: tuple[str, ...] | None = None  # the backends it is made for (an INT8 form); None: all of its kind

    @property
    def target(self) -> Any:
        """What a backend of this kind loads."""
        return self.model if self.kind == "torch" else self.path

    def runs_on(self, backend: str) -> bool:
        """Whether this artifact is measured on `backend` (its kind is checked separately)."""
        return self.backends is None or backend in self.backends


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
                  rounds: int, memory_format: str = "auto") -> None:
    """Fail before measuring anything: unknown backend names or memory format, batch sizes <= 0, no rounds."""

    check_memory_format(memory_format)
    for name in backends or ():
        get_backend(name)
    if not batch_sizes:
        raise ConfigError("no batch size given; pass e.g. batch_sizes 1,8")
    for bs in batch_sizes:
        check_timing_options(bs, img_size, warmup, rounds)


def _select_backends(names: Sequence[str] | None, memory_format: str) -> tuple[list[Backend], list[SkippedBackend]]:
    """Instances of the named backends (all when None) that run here, and the skipped ones with reasons."""
    chosen = [get_backend(n, memory_format=memory_format)  # unknown name: error
              for n in (names if names is not None else backend_names())]
    usable, skipped = [], []
    for backend in chosen:
        ok, reason = backend.available()
        if ok:
            usable.append(backend)
        else:
            skipped.append(SkippedBackend(backend.name, reason))
    return usable, skipped


def _static_figures(artifact: Artifact, done: dict[str, dict[str, Any]], img_size: int) -> dict[str, Any]:
    size = size_mb(artifact.path) if artifact.path is not None and artifact.path.is_file() else None
    if artifact.kind == "torch" and artifact.model is not None:
        return {"size_mb": size, "params": count_params(artifact.model),
                "macs": count_macs(artifact.model, img_size)}
    src = done.get(artifact.source or "", {})
    return {"size_mb": size, "params": src.get("params"), "macs": src.get("macs")}


def _accuracy(artifact: Artifact, eval_batches: Any, eval_limit: int | None, notes: list[str],
              memory_format: str) -> Evaluation | None:
    if eval_batches is None:
        return None
    for name in ACCURACY_BACKENDS.get(artifact.kind, ()):
        backend = get_backend(name, memory_format=memory_format)
        if not artifact.runs_on(name) or not backend.available()[0]:
            continue
        try:
            return accuracy(backend.load(artifact.target).predict, eval_batches, eval_limit)
        except Exception as exc:  # noqa: BLE001 - recorded in the report, the sweep goes on
            notes.append(f"accuracy of {artifact.name} on {name} failed: {_reason(exc)}")
            return None
    notes.append(f"accuracy of {artifact.name} not measured: no {artifact.kind} backend available here")
    return None


def _accuracy_fields(name: str, evals: dict[str, Evaluation], reference: str | None,
                     source: str | None) -> dict[str, Any]:
    """top-1/top-5 with the Wilson interval, and paired tests against the dense reference and the source."""
    ev = evals.get(name)
    if ev is None:
        return {"top1_pct": None, "top5_pct": None, "eval_images": 0}
    acc = ev.top1
    diffs = []
    for other in dict.fromkeys(o for o in (reference, source) if o and o != name and o in evals):
        if evals[other].n_images != ev.n_images:
            continue  # not the same images: no paired test
        c = compare_paired(ev.correct, evals[other].correct)
        diffs.append(AccuracyDiff(other, round(100.0 * c.diff, 4), c.only_a, c.only_b, c.n,
                                  round(c.p_value, 6), not c.significant))
    return {"top1_pct": ev.top1_pct, "top5_pct": ev.top5_pct, "eval_images": ev.n_images,
            "top1_low_pct": round(100.0 * acc.low, 4), "top1_high_pct": round(100.0 * acc.high, 4),
            "accuracy_vs": tuple(diffs)}


# Each artifact is loaded this many times and the rounds are spread over the loads: one load keeps its
# own speed (with one load, two benches of the same files were 3-14% apart, their intervals +-0.4-3.6%),
# which only several loads show, and the ratio's interval resamples them (`stats.session_ratio_stats`).
# 5 rather than 3: the t interval's half-width is t(K-1) / sqrt(K) spreads, 1.24 at 5 loads, 2.48 at 3.
DEFAULT_SESSIONS = 5
# Timed rounds of each artifact: 90 spread over 5 loads kept two benches of the same files on a loaded
# machine within 1.0% and each inside the other's interval, 4 of 4 ratios; 30 did for 3 of 4
# (docs/results.md).
DEFAULT_ROUNDS = 90


@dataclass(frozen=True)
class Timing:
    """How latency is measured: warm-up, rounds, order and the seed of the shuffles and intervals."""

    batch_sizes: tuple[int, ...]
    img_size: int
    warmup: int = 5
    rounds: int = DEFAULT_ROUNDS
    order: str = "interleaved"
    seed: int = 0
    sessions: int = DEFAULT_SESSIONS

    @property
    def rounds_per_session(self) -> int:
        """`rounds` timed runs of each artifact in all, spread over its sessions (at least one each)."""
        return -(-self.rounds // self.sessions)


def check_sessions(sessions: int) -> None:
    """`ConfigError` unless `sessions` is a whole number >= 1."""
    if isinstance(sessions, bool) or not isinstance(sessions, int) or sessions < 1:
        raise ConfigError(f"sessions (independent loads of each artifact) must be >= 1, got {sessions!r}")


def _session_key(name: str, session: int) -> str:
    return f"{name} (session {session})"


def _load_runners(backend: Backend, group: Sequence[Artifact], sessions: int,
                  skipped: list[SkippedBackend]) -> dict[str, list[Runner]]:
    """`sessions` independent loads of every artifact of `group` (an artifact that fails to load is skipped)."""
    runners: dict[str, list[Runner]] = {}
    for a in group:
        try:
            runners[a.name] = [backend.load(a.target) for _ in range(sessions)]
        except Exception as exc:  # noqa: BLE001 - recorded as a skip with its reason
            skipped.append(SkippedBackend(backend.name, f"load failed: {_reason(exc)}", a.name))
    return runners


def _steps(backend: Backend, runners: dict[str, list[Runner]], bs: int, img_size: int,
           skipped: list[SkippedBackend]) -> dict[str, list[Any]]:
    """Per artifact, one prepared, already run once step per session; an artifact that fails at this
    batch size is skipped."""
    steps = {}
    for name, loads in runners.items():
        try:
            prepared = [runner.step_fn(bs, img_size) for runner in loads]
            for step in prepared:
                step()  # fail here (e.g. out of memory at batch 64), not in the middle of the rounds
            steps[name] = prepared
        except Exception as exc:  # noqa: BLE001 - recorded, not fatal
            skipped.append(SkippedBackend(backend.name, f"batch {bs}: {_reason(exc)}", name))
    return steps


def measure_group(backend: Backend, group: Sequence[Artifact], timing: Timing, reference: str | None,
                  skipped: list[SkippedBackend], advance: Any = lambda description: None
                  ) -> dict[str, list[LatencyResult]]:
    """Latencies of every artifact of `group` on `backend`, all timed in the same rounds per batch size,
    each with its per-round ratio against `reference` (when that artifact is in the group)."""
    runners = _load_runners(backend, group, timing.sessions, skipped)
    out: dict[str, list[LatencyResult]] = {a.name: [] for a in group}
    for bs in timing.batch_sizes:
        advance(f"{backend.name} · batch {bs} · {len(runners)} artifacts × {timing.sessions} sessions")
        steps = _steps(backend, runners, bs, timing.img_size, skipped)
        if not steps:
            continue
        flat = {_session_key(name, k): step for name, loads in steps.items() for k, step in enumerate(loads)}
        timed = compare_steps(flat, warmup=timing.warmup, rounds=timing.rounds_per_session, order=timing.order,
                              seed=timing.seed)  # one calls-per-visit for the whole group: balanced rounds
        sessions = {name: [timed[_session_key(name, k)] for k in range(len(loads))] for name, loads in steps.items()}
        ref = sessions.get(reference) if reference is not None else None
        for name, ts in sessions.items():
            s = summarize([x for t in ts for x in t.samples_s])
            mean_ms = round(sum(t.mean_ms for t in ts) / len(ts), 6)
            ratio = (session_ratio_stats([t.samples_s for t in ts], [t.samples_s for t in ref], seed=timing.seed)
                     if ref is not None and name != reference else None)
            out[name].append(LatencyResult(backend.name, bs, s.median_ms, s.p90_ms, mean_ms, s.min_ms, s.n_runs,
                                           round(throughput_ips(bs, s.median_ms), 3), runners[name][0].settings,
                                           reference=reference if ref is not None else None, ratio=ratio,
                                           calls_per_round=ts[0].calls_per_round))
    return out


def dense_reference(names: Sequence[str], macs: dict[str, int | None]) -> str | None:
    """The first of `names` with the most MACs of all artifacts (`macs`), or None when none of them has."""
    most = max((m or 0 for m in macs.values()), default=0)
    return next((n for n in names if (macs.get(n) or 0) == most), None)


def bench_artifacts(artifacts: Sequence[Artifact], *, backends: Sequence[str] | None = None,
                    batch_sizes: Sequence[int] = (1, 8), warmup: int = 5, rounds: int = DEFAULT_ROUNDS,
                    img_size: int = 224, eval_data: Any = None, eval_limit: int | None = None,
                    progress: bool = False, root: Path | None = None, run_label: str | None = None,
                    notes: Sequence[str] = (), order: str = "interleaved", seed: int = 0,
                    memory_format: str = "auto", sessions: int = DEFAULT_SESSIONS) -> BenchReport:
    """Measure every artifact on every available backend that takes its kind, at each batch size.

    Per backend and batch size, all its artifacts are timed in the same interleaved rounds (see
    `interleave.time_steps`); each latency carries its ratio to the dense artifact's (the one with the
    most MACs) in the same rounds, with a 95% bootstrap interval; the `rounds` are spread over `sessions`
    independent loads of each artifact, and the interval resamples the loads too (the ratio of one load
    to another moves by several percent). Accuracies carry n, a Wilson interval
    and McNemar tests against the dense artifact and the artifact's source. Unavailable backends (and
    loads or batch sizes that failed) are listed in `report.skipped` with the reason. Paths are stored
    relative to `root` when they lie inside it. `memory_format` (auto, channels_last, contiguous) lays
    out torch-cpu's models and batches, for latency and accuracy; the report's environment records it.
    """
    if not artifacts:
        raise NotFoundError("nothing to benchmark: no model, ONNX file or engine found; "
                            "run `facompress finetune` (and prune/export) first")
    names = [a.name for a in artifacts]
    if len(set(names)) != len(names):
        raise ConfigError(f"artifact names must be unique, got {names}")
    check_rounds(warmup, rounds, order)
    check_sessions(sessions)
    check_options(backends, batch_sizes, img_size, warmup, rounds, memory_format)
    load_before = load_average()
    timing = Timing(tuple(batch_sizes), img_size, warmup, rounds, order, seed, sessions)
    usable, skipped = _select_backends(backends, memory_format)
    eval_batches, notes_out = _eval_batches(eval_data), list(notes)
    plan = [(b, [a for a in artifacts if b.artifact_kind == a.kind and a.runs_on(b.name)]) for b in usable]
    plan = [(b, group) for b, group in plan if group]
    static: dict[str, dict[str, Any]] = {}
    evals: dict[str, Evaluation] = {}
    lats: dict[str, list[LatencyResult]] = {a.name: [] for a in artifacts}
    with _progress(progress, len(artifacts) + len(plan) * len(batch_sizes)) as advance:
        for a in artifacts:
            advance(f"{a.name} · accuracy")
            static[a.name] = _static_figures(a, static, img_size)
            ev = _accuracy(a, eval_batches, eval_limit, notes_out, memory_format)
            if ev is not None:
                evals[a.name] = ev
        macs = {n: f["macs"] for n, f in static.items()}
        for backend, group in plan:
            ref = dense_reference([a.name for a in group], macs)
            for name, results in measure_group(backend, group, timing, ref, skipped, advance).items():
                lats[name] += results
    acc_ref = dense_reference([n for n in names if n in evals], macs)
    done = [ArtifactResult(name=a.name, kind=a.kind, path=_rel(a.path, root), **static[a.name],
                           latencies=tuple(lats[a.name]), source=a.source,
                           **_accuracy_fields(a.name, evals, acc_ref, a.source))
            for a in artifacts]
    settings = BenchSettings(tuple(batch_sizes), warmup, rounds, img_size, eval_limit, order, seed, memory_format,
                             sessions)
    return BenchReport(env=environment(load_before, memory_format), artifacts=tuple(done), skipped=tuple(skipped),
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
