"""Find the largest keep ratio whose *measured* latency meets a target (no MAC-based estimate).

The target is a number of milliseconds, or a speed-up over the dense FP32 model measured in the same
search (`target_speedup`). A speed-up is judged pair by pair: the dense FP32 model is timed again right
before each candidate and the candidate meets the target when it is `target_speedup` times faster than
that reference, so a machine whose speed drifts during the search (other work starting or stopping) moves
both sides of each comparison alike; the reported target is the median reference / speed-up. With `int8`, every candidate is
exported to ONNX and quantised to INT8 as `facompress export --int8` writes it, calibrated on training
images, and that INT8 file is what is timed: the keep is planned for the precision it will be deployed in.

It exports each candidate to time it, so it sits above `pruning/` and `export/`: `prune_run` takes it
as an injected `SettingsSearch` and never imports export itself.

>>> search = search_keep_for_latency(model, head, PruneSettings(), target_ms=5.0,
...                                  measure=backend_measure("ort-cpu", batch_size=1, img_size=64))
>>> search.best_keep
>>> run, result, search = prune_run(PruneOptions(), search=LatencyTarget(5.0, backend="ort-cpu"))
>>> run, result, search = prune_run(PruneOptions(), search=LatencyTarget(target_speedup=2, int8=True))
"""

from __future__ import annotations

import copy
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, ClassVar

import torch
from torch import nn

from ..errors import ConfigError
from ..export.pipeline import ExportOptions, calibration_images
from ..export.quantize import int8_form_for
from ..gates import fold_gates
from ..bench.backends import get_backend
from ..pruning.budget import scored_base
from ..pruning.pruner import PruneSettings, prune_model
from .timing import INT8_BACKENDS, Int8Calibration, MeasureFn, TimedFile, Timing, candidate_timer

__all__ = ["LatencySearch", "LatencyTarget", "SearchStep", "UnreachableTarget", "backend_measure",
           "check_latency_options", "latency_target", "search_keep_for_latency"]


@dataclass(frozen=True)
class SearchStep:
    keep: float
    median_ms: float
    p90_ms: float
    meets_target: bool
    file: TimedFile | None = None  # the ONNX file timed (None: a PyTorch model)
    reference_ms: float | None = None  # the dense FP32 model timed right before it (speed-up targets)


@dataclass(frozen=True)
class LatencySearch:
    """The keep ratios tried, their measured latencies, and the largest keep that met the target."""

    target_ms: float
    steps: tuple[SearchStep, ...]
    best_keep: float
    precision: str = "fp32"                 # what the candidates were timed in
    dense_fp32_ms: float | None = None      # the dense model in FP32 on the same backend, same settings
    target_speedup: float | None = None     # target_ms = dense_fp32_ms / target_speedup, when given
    backend: str | None = None
    batch_size: int | None = None
    backend_settings: str = ""

    @property
    def chosen(self) -> SearchStep:
        """The measured step the search chose (keep == best_keep)."""
        return next(s for s in self.steps if s.keep == self.best_keep and s.meets_target)

    def speedup(self, step: SearchStep) -> float | None:
        """How many times faster than the dense FP32 model `step` ran (than the reference timed beside it,
        where there is one)."""
        reference = step.reference_ms or self.dense_fp32_ms
        return None if reference is None else reference / step.median_ms

    def to_dict(self) -> dict:
        chosen = self.chosen
        return {"target_ms": self.target_ms, "best_keep": self.best_keep, "precision": self.precision,
                "backend": self.backend, "batch_size": self.batch_size, "backend_settings": self.backend_settings,
                "dense_fp32_ms": self.dense_fp32_ms, "target_speedup": self.target_speedup,
                "chosen": {**asdict(chosen), "speedup_vs_dense_fp32": self.speedup(chosen)},
                "steps": [asdict(s) for s in self.steps]}


class UnreachableTarget(ConfigError):
    """Even the smallest keep ratio tried is slower than the target."""


def check_latency_options(backend: str, batch_size: int) -> None:
    """`ConfigError` / `NotFoundError` for a backend name or batch size a latency target cannot use."""

    get_backend(backend)  # an unknown name fails here, with the known ones listed
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ConfigError(f"batch_size must be > 0 (got {batch_size})")


def _check_targets(target_ms: float | None, target_speedup: float | None) -> None:
    """Exactly one target: milliseconds (> 0) or a speed-up over the dense FP32 model (> 1)."""
    if target_ms is not None and target_speedup is not None:
        raise ConfigError("give one latency target, not target_latency_ms and target_speedup")
    if target_ms is None and target_speedup is None:
        raise ConfigError("a latency search needs target_latency_ms or target_speedup")
    if target_ms is not None and not target_ms > 0:
        raise ConfigError(f"target_latency_ms must be > 0 ms (got {target_ms})")
    if target_speedup is not None and not target_speedup > 1:
        raise ConfigError(f"target_speedup must be > 1 (got {target_speedup}): the target is the dense FP32 "
                          f"latency divided by it, so 2 asks for twice as fast")


@dataclass(frozen=True)
class LatencyTarget:
    """A `SettingsSearch` for `prune_run`: prune to the largest keep whose measured median latency on
    `backend` at `batch_size` is at most `target_ms`, or at most the dense FP32 latency / `target_speedup`.
    With `int8`, the candidates are timed as the INT8 ONNX files `export --int8` writes for `backend`,
    calibrated on `calib_samples` training images (those export takes, with the run's seed)."""

    target_ms: float | None = None
    backend: str = "ort-cpu"
    batch_size: int = 1
    target_speedup: float | None = None
    int8: bool = False
    calib_samples: int = ExportOptions.calib_samples
    record_key: ClassVar[str] = "latency_search"

    def __post_init__(self) -> None:
        _check_targets(self.target_ms, self.target_speedup)
        check_latency_options(self.backend, self.batch_size)
        if self.int8 and self.backend not in INT8_BACKENDS:
            raise ConfigError(f"int8 candidates run on {' or '.join(INT8_BACKENDS)}, not backend {self.backend}")
        if self.calib_samples < 1:
            raise ConfigError(f"calib_samples must be >= 1 image, got {self.calib_samples}")

    @property
    def reads_train_data(self) -> bool:
        """INT8 candidates are calibrated on training images: `prune_run` passes `train_data`."""
        return self.int8

    def __call__(self, model: nn.Module, head_name: str, settings: PruneSettings, img_size: int, *,
                 gradient_fn: Callable | None = None, score_fn: Callable | None = None,
                 train_data: Any = None) -> tuple[PruneSettings, LatencySearch]:
        fp32 = candidate_timer(self.backend, batch_size=self.batch_size, img_size=img_size)
        measure, reference = fp32, None
        if self.int8:
            if train_data is None:
                raise ConfigError("int8 candidates are calibrated on training images: pass train_data")
            calib = Int8Calibration(calibration_images(train_data, self.calib_samples, settings.seed),
                                    int8_form_for(self.backend))
            measure = candidate_timer(self.backend, batch_size=self.batch_size, img_size=img_size, int8=calib)
            reference = fp32
        search = search_keep_for_latency(model, head_name, settings, target_ms=self.target_ms,
                                         target_speedup=self.target_speedup, measure=measure, reference=reference,
                                         img_size=img_size, gradient_fn=gradient_fn, score_fn=score_fn)
        search = replace(search, backend=self.backend, batch_size=self.batch_size)
        return replace(settings, keep=search.best_keep), search


def latency_target(target_latency_ms: float | None, target_speedup: float | None, backend: str = "ort-cpu",
                   batch_size: int = 1, int8: bool = False) -> LatencyTarget | None:
    """The latency search a command asked for, or None without a target (`int8` alone is an error)."""
    if target_latency_ms is None and target_speedup is None:
        if int8:
            raise ConfigError("int8 plans the keep for INT8 latency: give target_latency_ms or target_speedup too")
        return None
    return LatencyTarget(target_latency_ms, backend, batch_size, target_speedup=target_speedup, int8=int8)


def backend_measure(backend: str, *, batch_size: int, img_size: int, warmup: int = 5,
                    runs: int = 20) -> Callable[[nn.Module], tuple[float, float]]:
    """(median_ms, p90_ms) of a (pruned, gate-free) model on a latency backend (an FP32 ONNX export for
    ONNX backends); `timing.candidate_timer` also says which file was timed, and times INT8 files."""
    timer = candidate_timer(backend, batch_size=batch_size, img_size=img_size, warmup=warmup, runs=runs)

    def measure(model: nn.Module) -> tuple[float, float]:
        timing = timer(model)
        return timing.median_ms, timing.p90_ms

    return measure


def _candidate(model: nn.Module, head_name: str, settings: PruneSettings, keep: float,
               example: torch.Tensor) -> nn.Module:
    """A copy of the scored `model` pruned at `keep` (gates folded, as exported)."""
    candidate = copy.deepcopy(model)
    for src, dst in zip(model.parameters(), candidate.parameters()):  # deepcopy drops .grad (taylor reads it)
        if src.grad is not None:
            dst.grad = src.grad.clone()
    if keep < 1:
        prune_model(candidate, candidate.get_submodule(head_name), replace(settings, keep=keep), example)
    else:
        fold_gates(candidate)
    return candidate


def _step(keep: float, timing: Timing, target_ms: float, reference_ms: float | None = None) -> SearchStep:
    return SearchStep(round(keep, 4), timing.median_ms, timing.p90_ms, timing.median_ms <= target_ms, timing.file,
                      reference_ms)


def search_keep_for_latency(model: nn.Module, head_name: str, settings: PruneSettings, *,
                            target_ms: float | None = None, measure: MeasureFn, img_size: int, min_keep: float = 0.1,
                            iterations: int = 6, gradient_fn: Callable | None = None,
                            score_fn: Callable | None = None, target_speedup: float | None = None,
                            reference: MeasureFn | None = None) -> LatencySearch:
    """Bisect keep in [min_keep, 1] on measured median latency; `model` itself is not modified.

    The channels are scored once (`gradient_fn` / `score_fn`, as `prune_model` takes them, when the
    criterion needs training images) and every candidate is cut from that scored copy. `reference`
    times the dense model in FP32 (default: `measure` itself, whose dense step is then the reference);
    with `target_speedup` it times it again before every candidate, and each candidate must be
    `target_speedup` times faster than the reference timed beside it.
    """
    _check_targets(target_ms, target_speedup)
    model = scored_base(model, settings, gradient_fn, score_fn)
    example = torch.zeros(1, 3, img_size, img_size, device=next(model.parameters()).device)
    dense_model = _candidate(model, head_name, settings, 1.0, example)
    dense = Timing.of(measure(dense_model))
    time_reference = reference or measure
    references = [Timing.of(reference(dense_model)).median_ms if reference else dense.median_ms]

    def target_now() -> float:
        return target_ms if target_ms is not None else statistics.median(references) / target_speedup

    found = LatencySearch(target_now(), (), 1.0, precision=dense.file.precision if dense.file else "fp32",
                          dense_fp32_ms=references[0], target_speedup=target_speedup,
                          backend_settings=dense.settings)

    def trial(keep: float) -> SearchStep:
        candidate = _candidate(model, head_name, settings, keep, example)
        if target_speedup is None:
            return _step(keep, Timing.of(measure(candidate)), target_ms)
        references.append(Timing.of(time_reference(dense_model)).median_ms)  # beside the candidate
        return _step(keep, Timing.of(measure(candidate)), references[-1] / target_speedup, references[-1])

    def done(steps: list[SearchStep], best_keep: float) -> LatencySearch:
        return replace(found, steps=tuple(steps), best_keep=best_keep, target_ms=target_now(),
                       dense_fp32_ms=statistics.median(references))

    steps = [_step(1.0, dense, target_now(), references[0] if target_speedup else None)]
    if steps[-1].meets_target:
        return done(steps, 1.0)
    steps.append(trial(min_keep))
    if not steps[-1].meets_target:
        raise UnreachableTarget(_unreachable(done(steps, 1.0)))
    lo, hi = min_keep, 1.0  # lo meets the target, hi does not
    for _ in range(iterations):
        mid = (lo + hi) / 2
        steps.append(trial(mid))
        lo, hi = (mid, hi) if steps[-1].meets_target else (lo, mid)
    return done(steps, round(lo, 4))


def _unreachable(found: LatencySearch) -> str:
    """Why no keep meets the target: the fastest candidate measured, with its speed-up over dense FP32."""
    fastest = min(found.steps, key=lambda s: s.median_ms)
    reached = (f"the fastest measured was {fastest.median_ms:.2f} ms at keep {fastest.keep} ({found.precision}, "
               f"{found.speedup(fastest):.2f}x the dense FP32 {found.dense_fp32_ms:.2f} ms)")
    if found.target_speedup is not None:
        return (f"target_speedup {found.target_speedup} ({found.target_ms:.2f} ms) is unreachable: {reached}; "
                f"lower target_speedup")
    return f"target {found.target_ms} ms is unreachable: {reached}; raise the target"
