"""The latency-backend base class, its registry, and the one timing loop every backend shares.

A backend takes one kind of artifact (`"torch"`: an `nn.Module`; `"onnx"`: a `.onnx` path;
`"tensorrt"`: an `.engine` path), loads it once into a `Runner`, and times the runner's inference.
Adding a runtime is a subclass and a decorator:

>>> @register
... class MyBackend(Backend):
...     name, artifact_kind = "my-runtime", "onnx"
...     def available(self): return True, ""
...     def load(self, artifact): return MyRunner(artifact)
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import torch

from ...errors import ConfigError, MissingDependencyError, NotFoundError, unknown_name
from ..stats import LatencyStats, summarize

_REGISTRY: dict[str, type[Backend]] = {}


class Runner(ABC):
    """An artifact loaded by a backend, ready to run."""

    settings: str = ""  # what the backend does (threads, precision, memory format), for the report

    @abstractmethod
    def step_fn(self, batch_size: int, img_size: int) -> Callable[[], None]:
        """A callable running one inference on a prepared random batch and waiting for its end."""

    @abstractmethod
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Logits for a float32 CPU batch: (N, 3, H, W) -> (N, classes) float32 on CPU."""


class Backend(ABC):
    """One way of running an artifact: a runtime, a device and a precision."""

    name: ClassVar[str]
    artifact_kind: ClassVar[str]  # "torch" | "onnx" | "tensorrt"
    description: ClassVar[str] = ""
    options: ClassVar[tuple[str, ...]] = ()  # keyword arguments of __init__ that `get_backend` passes on

    @abstractmethod
    def available(self) -> tuple[bool, str]:
        """(True, "") when it can run here, else (False, why not and what would fix it)."""

    @abstractmethod
    def load(self, artifact: Any) -> Runner:
        """Load the artifact (an nn.Module or a file path) for this backend."""

    def require_available(self) -> None:
        ok, reason = self.available()
        if not ok:
            raise MissingDependencyError(f"backend {self.name} is unavailable: {reason}")

    def measure(self, artifact: Any, batch_size: int, img_size: int, warmup: int = 10,
                runs: int = 50) -> LatencyStats:
        """Latency of one inference at `batch_size`: `warmup` untimed runs, then `runs` timed ones.

        `artifact` may be what `load` takes or a `Runner` it returned (load once, time many sizes).
        """
        check_timing_options(batch_size, img_size, warmup, runs)
        self.require_available()
        runner = artifact if isinstance(artifact, Runner) else self.load(artifact)
        return time_step(runner.step_fn(batch_size, img_size), warmup, runs)


def check_timing_options(batch_size: int, img_size: int, warmup: int, runs: int) -> None:
    """`ConfigError` for sizes and counts that cannot be measured."""
    if batch_size <= 0:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}; pass e.g. batch_sizes 1,8")
    if img_size <= 0:
        raise ConfigError(f"image size must be >= 1 pixel, got {img_size}")
    if warmup < 0:
        raise ConfigError(f"warm-up runs must be >= 0, got {warmup}")
    if runs < 1:
        raise ConfigError(f"timed runs must be >= 1, got {runs}")


def time_step(step: Callable[[], None], warmup: int, runs: int) -> LatencyStats:
    """Run `step` `warmup` times untimed, then time `runs` calls (each ends synchronised)."""
    samples: list[float] = []
    with torch.inference_mode():
        for _ in range(warmup):
            step()
        for _ in range(runs):
            start = time.perf_counter()
            step()
            samples.append(time.perf_counter() - start)
    return summarize(samples)


def register(cls: type[Backend]) -> type[Backend]:
    """Class decorator adding a backend to the registry under its `name`."""
    if cls.name in _REGISTRY:
        raise ValueError(f"backend {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def backend_names() -> list[str]:
    """Every registered backend, in registration order."""
    return list(_REGISTRY)


def get_backend(name: str, **options: Any) -> Backend:
    """A new instance of the backend called `name`; `NotFoundError` listing the known ones.

    `options` reach the backends that declare them in `Backend.options`; the others ignore them, so one
    set of options serves every backend:

    >>> [get_backend(n, memory_format="channels_last") for n in ("torch-cpu", "ort-cpu")]
    """
    if name not in _REGISTRY:
        raise unknown_name("backend", name, _REGISTRY)
    cls = _REGISTRY[name]
    return cls(**{k: v for k, v in options.items() if k in cls.options})


def check_artifact_is_path(backend: Backend, artifact: Any, suffixes: tuple[str, ...]) -> Path:
    """The artifact as a `Path` with one of `suffixes`, else a `ConfigError` naming the right backend."""
    if isinstance(artifact, torch.nn.Module) or not isinstance(artifact, (str, Path)):
        raise ConfigError(f"backend {backend.name} runs {'/'.join(suffixes)} files, got "
                          f"{type(artifact).__name__}; measure nn.Modules with torch-cpu or torch-cuda-*")
    path = Path(artifact)
    if path.suffix not in suffixes:
        raise ConfigError(f"backend {backend.name} runs {'/'.join(suffixes)} files, got {path.name}")
    if not path.is_file():
        raise NotFoundError(f"{path} does not exist; export it first (`facompress export`)")
    return path
