"""Find the largest keep ratio whose *measured* latency meets a target (no MAC-based estimate).

It exports each candidate to time it, so it sits above `pruning/` and `export/`: `prune_run` takes it
as an injected `SettingsSearch` and never imports export itself.

>>> search = search_keep_for_latency(model, head, PruneSettings(), target_ms=5.0,
...                                  measure=backend_measure("ort-cpu", batch_size=1, img_size=64))
>>> search.best_keep
>>> run, result, search = prune_run(PruneOptions(), search=LatencyTarget(5.0, backend="ort-cpu"))
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from ..errors import ConfigError, UserError
from ..pruning.pruner import PruneSettings, prune_model
from ..bench.backends import get_backend
from ..export.onnx import export_onnx
from ..gates import fold_gates
from ..pruning.budget import scored_base

MeasureFn = Callable[[nn.Module], tuple[float, float]]  # model -> (median_ms, p90_ms)


@dataclass(frozen=True)
class SearchStep:
    keep: float
    median_ms: float
    p90_ms: float
    meets_target: bool


@dataclass(frozen=True)
class LatencySearch:
    target_ms: float
    steps: tuple[SearchStep, ...]
    best_keep: float

    def to_dict(self) -> dict:
        return {"target_ms": self.target_ms, "best_keep": self.best_keep, "steps": [asdict(s) for s in self.steps]}


class UnreachableTarget(UserError):
    """Even the smallest keep ratio tried is slower than the target."""


def check_latency_options(backend: str, batch_size: int) -> None:
    """`ConfigError` / `NotFoundError` for a backend name or batch size a latency target cannot use."""

    get_backend(backend)  # an unknown name fails here, with the known ones listed
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ConfigError(f"batch_size must be > 0 (got {batch_size})")


@dataclass(frozen=True)
class LatencyTarget:
    """A `SettingsSearch` for `prune_run`: prune to the largest keep whose measured median latency on
    `backend` at `batch_size` is at most `target_ms`."""

    target_ms: float
    backend: str = "ort-cpu"
    batch_size: int = 1
    record_key: ClassVar[str] = "latency_search"

    def __post_init__(self) -> None:
        if not self.target_ms > 0:
            raise ConfigError(f"target_latency_ms must be > 0 ms (got {self.target_ms})")
        check_latency_options(self.backend, self.batch_size)

    def __call__(self, model: nn.Module, head_name: str, settings: PruneSettings, img_size: int, *,
                 gradient_fn: Callable | None = None,
                 score_fn: Callable | None = None) -> tuple[PruneSettings, LatencySearch]:
        measure = backend_measure(self.backend, batch_size=self.batch_size, img_size=img_size)
        search = search_keep_for_latency(model, head_name, settings, target_ms=self.target_ms, measure=measure,
                                         img_size=img_size, gradient_fn=gradient_fn, score_fn=score_fn)
        return replace(settings, keep=search.best_keep), search


def backend_measure(backend: str, *, batch_size: int, img_size: int, warmup: int = 5, runs: int = 20) -> MeasureFn:
    """Measure a (pruned, gate-free) model on a latency backend; ONNX backends get a temporary export."""

    if batch_size <= 0:
        raise ConfigError(f"batch_size must be > 0 (got {batch_size})")
    impl = get_backend(backend)
    impl.require_available()

    def measure(model: nn.Module) -> tuple[float, float]:
        model = model.eval()
        if impl.artifact_kind == "torch":
            stats = impl.measure(model, batch_size, img_size, warmup=warmup, runs=runs)
        elif impl.artifact_kind == "onnx":

            with tempfile.TemporaryDirectory() as tmp:
                path = export_onnx(model, Path(tmp) / "candidate.onnx", img_size=img_size, metadata={}).path
                stats = impl.measure(path, batch_size, img_size, warmup=warmup, runs=runs)
        else:
            raise ConfigError(f"backend {backend} cannot time a candidate model; use torch-cpu or ort-cpu")
        return stats.median_ms, stats.p90_ms

    return measure


def _try(model: nn.Module, head_name: str, settings: PruneSettings, keep: float, example: torch.Tensor,
         measure: MeasureFn, target_ms: float) -> SearchStep:
    """Prune a copy of the scored `model` at `keep` and time it."""
    candidate = copy.deepcopy(model)
    for src, dst in zip(model.parameters(), candidate.parameters()):  # deepcopy drops .grad (taylor reads it)
        if src.grad is not None:
            dst.grad = src.grad.clone()
    head = candidate.get_submodule(head_name)
    if keep < 1:
        prune_model(candidate, head, replace(settings, keep=keep), example)
    else:

        fold_gates(candidate)
    median, p90 = measure(candidate)
    return SearchStep(round(keep, 4), median, p90, median <= target_ms)


def search_keep_for_latency(model: nn.Module, head_name: str, settings: PruneSettings, *, target_ms: float,
                            measure: MeasureFn, img_size: int, min_keep: float = 0.1, iterations: int = 6,
                            gradient_fn: Callable | None = None, score_fn: Callable | None = None) -> LatencySearch:
    """Bisect keep in [min_keep, 1] on measured median latency; `model` itself is not modified.

    The channels are scored once (`gradient_fn` / `score_fn`, as `prune_model` takes them, when the
    criterion needs training images) and every candidate is cut from that scored copy.
    """

    model = scored_base(model, settings, gradient_fn, score_fn)
    if target_ms <= 0:
        raise ConfigError(f"target_latency_ms must be > 0 (got {target_ms})")
    example = torch.zeros(1, 3, img_size, img_size, device=next(model.parameters()).device)
    steps = [_try(model, head_name, settings, 1.0, example, measure, target_ms)]
    if steps[-1].meets_target:
        return LatencySearch(target_ms, tuple(steps), 1.0)
    steps.append(_try(model, head_name, settings, min_keep, example, measure, target_ms))
    if not steps[-1].meets_target:
        fastest = min(steps, key=lambda s: s.median_ms)
        raise UnreachableTarget(
            f"target {target_ms} ms is unreachable: the fastest measured was {fastest.median_ms:.2f} ms "
            f"at keep {fastest.keep} (dense {steps[0].median_ms:.2f} ms); raise the target")
    lo, hi = min_keep, 1.0  # lo meets the target, hi does not
    for _ in range(iterations):
        mid = (lo + hi) / 2
        steps.append(_try(model, head_name, settings, mid, example, measure, target_ms))
        lo, hi = (mid, hi) if steps[-1].meets_target else (lo, mid)
    return LatencySearch(target_ms, tuple(steps), round(lo, 4))
