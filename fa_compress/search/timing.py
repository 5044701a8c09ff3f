"""Timing one pruned candidate as it would be deployed: a PyTorch model, an FP32 ONNX file, or the INT8
file `facompress export --int8` writes for onnxruntime's CPU provider.

Each ONNX candidate is written to a temporary folder, timed, hashed and deleted; its `TimedFile`
(precision read back from the file's nodes, SHA-256, size) is what the search records.

>>> calib = Int8Calibration(calibration_images(train_set, 256, seed=0), int8_form_for("ort-cpu"))
>>> timer = candidate_timer("ort-cpu", batch_size=1, img_size=64, int8=calib)
>>> timing = timer(pruned_model)       # Timing(median_ms=..., p90_ms=..., file=TimedFile(precision="int8", ...))
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..bench.backends import get_backend
from ..errors import ConfigError
from ..export.onnx import export_onnx
from ..export.quantize import Int8Form, onnx_precision, quantize_int8
from ..run import file_digest

# The backends whose INT8 form `export --int8` knows and whose artifact is an ONNX file.
INT8_BACKENDS = ("ort-cpu", "openvino-cpu")


@dataclass(frozen=True)
class TimedFile:
    """The file a candidate was timed as (deleted after timing; its digest identifies it)."""

    precision: str    # "fp32" or "int8", read from the file's nodes (`onnx_precision`)
    form: str | None  # the INT8 form (fa_compress/export/quantize.py), None for FP32
    sha256: str
    size_bytes: int


@dataclass(frozen=True)
class Timing:
    """Median and p90 latency of one candidate, and the file that was timed (None: a PyTorch model)."""

    median_ms: float
    p90_ms: float
    file: TimedFile | None = None
    settings: str = ""  # what the backend ran with (threads, provider), as its runner reports it

    @classmethod
    def of(cls, measured: Timing | tuple[float, float]) -> Timing:
        """A `Timing` from what a measure function returned: a `Timing`, or (median_ms, p90_ms)."""
        if isinstance(measured, Timing):
            return measured
        median_ms, p90_ms = measured
        return cls(float(median_ms), float(p90_ms))


@dataclass(frozen=True)
class Int8Calibration:
    """What an INT8 candidate is quantised with, as `facompress export --int8` does it."""

    images: torch.Tensor  # (N, 3, H, W): normalised training images, never the test split
    form: Int8Form        # `int8_form_for(backend)`: the form export writes for that backend


MeasureFn = Callable[[nn.Module], "Timing | tuple[float, float]"]


def candidate_timer(backend: str, *, batch_size: int, img_size: int, warmup: int = 5, runs: int = 20,
                    int8: Int8Calibration | None = None) -> Callable[[nn.Module], Timing]:
    """A function timing a (pruned, gate-free) model on `backend`: ONNX backends time a temporary FP32
    export, or with `int8` its INT8 quantisation (the same export and quantisation `export --int8` runs)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ConfigError(f"batch_size must be > 0 (got {batch_size})")
    impl = get_backend(backend)
    impl.require_available()
    if impl.artifact_kind not in ("torch", "onnx"):
        raise ConfigError(f"backend {backend} cannot time a candidate model; use torch-cpu or ort-cpu")
    if int8 is not None and backend not in INT8_BACKENDS:
        raise ConfigError(f"int8 candidates run on {' or '.join(INT8_BACKENDS)}, not backend {backend}")

    def timer(model: nn.Module) -> Timing:
        model = model.eval()
        if impl.artifact_kind == "torch":
            runner = impl.load(model)
            stats = impl.measure(runner, batch_size, img_size, warmup=warmup, runs=runs)
            return Timing(stats.median_ms, stats.p90_ms, None, runner.settings)
        with tempfile.TemporaryDirectory(prefix="facompress-candidate-") as tmp:
            path = _deployed_file(model, Path(tmp), img_size, int8)
            runner = impl.load(path)
            stats = impl.measure(runner, batch_size, img_size, warmup=warmup, runs=runs)
            digest = file_digest(path)
            timed = TimedFile(onnx_precision(path), int8.form.name if int8 else None, digest.sha256,
                              digest.size_bytes)
        return Timing(stats.median_ms, stats.p90_ms, timed, runner.settings)

    return timer


def _deployed_file(model: nn.Module, folder: Path, img_size: int, int8: Int8Calibration | None) -> Path:
    """`model` as the ONNX file a deployment would run: FP32, or quantised to INT8 from that FP32 file."""
    fp32 = export_onnx(model, folder / "candidate.onnx", img_size=img_size, metadata={}).path
    if int8 is None:
        return fp32
    return quantize_int8(fp32, folder / "candidate.int8-ort.onnx", int8.images, form=int8.form).path
