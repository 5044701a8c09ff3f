"""What a benchmark produces, as frozen dataclasses, and their JSON form (the only place it lives).

>>> text = report.to_json()
>>> assert BenchReport.from_json(text) == report
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import CheckpointError
from .stats import RatioStats

FORMAT_VERSION = 2  # 2: interleaved rounds, ratio intervals, accuracy intervals; 1 still reads


@dataclass(frozen=True)
class Environment:
    """Where the numbers were measured: versions, threads, processor names."""

    python: str
    platform: str
    torch: str
    onnxruntime: str | None
    torch_pruning: str | None
    torch_threads: int
    cpu_name: str
    cpu_count: int
    gpu_name: str | None
    cuda: str | None
    cpu_flags: tuple[str, ...] = ()  # the vector extensions INT8 speed depends on (avx2, avx512_vnni, amx_int8, ...)
    load_avg_before: tuple[float, ...] | None = None  # 1, 5 and 15 minute load averages when measuring began
    load_avg_after: tuple[float, ...] | None = None
    torch_interop_threads: int | None = None
    thread_env: dict[str, str] = field(default_factory=dict)  # OMP_NUM_THREADS etc., where set
    memory_format: str | None = None  # torch-cpu's: what was asked and, for `auto`, what it picks here and why


@dataclass(frozen=True)
class BenchSettings:
    """How the measurements were taken."""

    batch_sizes: tuple[int, ...]
    warmup: int  # untimed rounds (or runs, in sequential order) before timing
    rounds: int  # timed runs of each artifact; interleaved: one run of each per round
    img_size: int
    eval_limit: int | None  # images of the test split used for accuracy; None = all
    order: str = "interleaved"  # or "sequential": each artifact's runs one after the other
    seed: int = 0  # shuffles the interleaved order and seeds the bootstrap intervals
    memory_format: str = "auto"  # asked of torch-cpu: auto, channels_last or contiguous
    sessions: int = 1  # independent loads of each artifact the rounds were spread over


@dataclass(frozen=True)
class LatencyResult:
    """One artifact on one backend at one batch size."""

    backend: str
    batch_size: int
    median_ms: float  # over rounds, of each visit's fastest call (interference only ever adds time)
    p90_ms: float
    mean_ms: float  # of every timed call, interference included
    min_ms: float
    n_runs: int  # rounds
    throughput_ips: float  # images per second at the median latency
    settings: str = ""  # what the backend did: threads, precision, memory format
    reference: str | None = None  # the dense artifact timed in the same rounds (itself, for the dense one)
    ratio: RatioStats | None = None  # this latency / the reference's, per round: < 1 is faster
    calls_per_round: int = 1  # calls timed together as one sample (short calls are repeated to ~10 ms)


@dataclass(frozen=True)
class AccuracyDiff:
    """Top-1 of an artifact minus a reference's on the same images, with McNemar's exact test."""

    reference: str
    diff_points: float  # percentage points, this minus reference
    only_this: int  # images this artifact got right and the reference wrong
    only_reference: int
    n_images: int
    p_value: float
    within_noise: bool  # p >= 0.05: the difference may be chance


@dataclass(frozen=True)
class ArtifactResult:
    """Everything measured about one artifact (a model file, an ONNX file, an engine)."""

    name: str
    kind: str  # "torch" | "onnx" | "tensorrt"
    path: str  # relative to the run directory when inside it
    size_mb: float | None  # bytes on disk / 1e6
    params: int | None
    macs: int | None  # multiply-accumulates per image at the benchmark's image size
    top1_pct: float | None
    top5_pct: float | None  # only where there are more than 5 classes
    eval_images: int  # images the accuracy was measured on (0 = not measured)
    latencies: tuple[LatencyResult, ...] = ()
    source: str | None = None  # the artifact this one was made from (params and MACs come from it)
    top1_low_pct: float | None = None  # 95% Wilson interval of top-1 over `eval_images`
    top1_high_pct: float | None = None
    accuracy_vs: tuple[AccuracyDiff, ...] = ()  # paired comparisons on the same images

    def latency(self, backend: str, batch_size: int) -> LatencyResult | None:
        """The measurement on `backend` at `batch_size`, if any."""
        return next((r for r in self.latencies if r.backend == backend and r.batch_size == batch_size), None)


@dataclass(frozen=True)
class SkippedBackend:
    """A backend that measured nothing, and why (unavailable here, or failed on one artifact)."""

    backend: str
    reason: str
    artifact: str | None = None  # None: unavailable for every artifact


@dataclass(frozen=True)
class BenchReport:
    """The whole benchmark of a run."""

    env: Environment
    artifacts: tuple[ArtifactResult, ...]
    skipped: tuple[SkippedBackend, ...]
    created: str  # ISO 8601 local time with offset
    settings: BenchSettings | None = None
    run: str | None = None  # the run directory measured
    notes: tuple[str, ...] = field(default=())

    def artifact(self, name: str) -> ArtifactResult | None:
        return next((a for a in self.artifacts if a.name == name), None)

    def noisy_ratios(self) -> list[tuple[str, LatencyResult]]:
        """(artifact name, measurement) of every ratio whose interval is too wide to be a figure."""
        return [(a.name, r) for a in self.artifacts for r in a.latencies if r.ratio is not None and r.ratio.noisy]

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT_VERSION, **asdict(self)}

    def to_json(self) -> str:
        """Stable, indented JSON (the same report always gives the same text)."""
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchReport:
        try:
            if data.get("format") not in (1, FORMAT_VERSION):
                raise CheckpointError(f"benchmark report format {data.get('format')!r} is not "
                                      f"{FORMAT_VERSION}; re-run `facompress bench`")
            settings = data.get("settings")
            if settings is not None:
                settings = dict(settings)
                if "runs" in settings:  # format 1 called the timed runs "runs"
                    settings["rounds"] = settings.pop("runs")
                settings = BenchSettings(**{**settings, "batch_sizes": tuple(settings["batch_sizes"])})
            artifacts = tuple(_artifact_from_dict(a) for a in data["artifacts"])
            return cls(env=_environment_from_dict(data["env"]), artifacts=artifacts,
                       skipped=tuple(SkippedBackend(**s) for s in data["skipped"]),
                       created=data["created"], settings=settings, run=data.get("run"),
                       notes=tuple(data.get("notes", ())))
        except (KeyError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"benchmark report is malformed ({type(exc).__name__}: {exc}); "
                                  f"re-run `facompress bench`") from exc

    @classmethod
    def from_json(cls, text: str) -> BenchReport:
        """Parse what `to_json` wrote; `CheckpointError` when the text is not such a report."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"benchmark report is not valid JSON ({exc}); re-run `facompress bench`") from exc
        if not isinstance(data, dict):
            raise CheckpointError("benchmark report is not a JSON object; re-run `facompress bench`")
        return cls.from_dict(data)


def _latency_from_dict(r: dict[str, Any]) -> LatencyResult:
    ratio = r.get("ratio")
    return LatencyResult(**{**r, "ratio": RatioStats(**ratio) if ratio is not None else None})


def _artifact_from_dict(a: dict[str, Any]) -> ArtifactResult:
    return ArtifactResult(**{**a, "latencies": tuple(_latency_from_dict(r) for r in a["latencies"]),
                             "accuracy_vs": tuple(AccuracyDiff(**d) for d in a.get("accuracy_vs", ()))})


def _environment_from_dict(env: dict[str, Any]) -> Environment:
    tuples = {k: tuple(env[k]) for k in ("cpu_flags", "load_avg_before", "load_avg_after") if env.get(k) is not None}
    return Environment(**{**env, **tuples})
