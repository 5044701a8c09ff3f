"""Reduced-precision ONNX: static INT8 (onnxruntime quantisation) and FP16 (onnxconverter-common).

>>> q = quantize_int8(Path("model.onnx"), Path("model.int8-trt.onnx"), calib_images)   # QDQ s8, TensorRT-ready
>>> q = quantize_int8(Path("model.onnx"), Path("model.int8-ort.onnx"), calib_images, form=ort_cpu_form())
>>> q.size_ratio                                                                   # ~0.25 for resnet18
>>> convert_fp16(Path("model.onnx"), Path("model.fp16.onnx"))                      # float32 in and out

The default INT8 form, "qdq", is the one TensorRT's explicit quantisation reads: QuantizeLinear /
DequantizeLinear pairs, int8 activations and weights, symmetric scales (zero point 0), per-channel
weights. On onnxruntime's CPU provider that form is no faster than FP32: `benchmarks/int8_forms.py`
measured resnet18 (64-224 px, batch 1 and 8, a CPU with VNNI) at 0.7-1.3x the FP32
latency for every int8-activation form, against 0.17-0.39x for uint8 activations ("qdq-u8",
"qoperator-u8"), and 5-10x for QOperator with int8 activations. Per-channel vs per-tensor weights,
reduce_range, pre-processing and int32 biases made no consistent difference. So: "qdq" for
TensorRT (and OpenVINO), "qdq-u8" for onnxruntime on CPUs: `int8_form_for(backend)` chooses.

The onnxruntime forms also pad conv channels with zeros (`_pad_channels.pad_conv_channels`, exact):
MLAS's fast symmetric INT8 kernels take a depthwise conv only in multiples of 16 channels, and pruned
channel counts (rounded to 8, the default before 16, or to any `--round-to`) often are not; the
generic kernel they fall back to is slower than FP32. On EfficientNet-Lite0 pruned to 0.5 of dense
MACs at 64 px (7 of its 16 depthwise convs misaligned) that took "qdq-u8" from 0.73x to 0.61x the
pruned FP32 latency at batch 8, 0.68x to 0.59x at batch 1, the file from 0.287x to 0.290x FP32
(docs/decisions/int8-form.md).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._deps import require
from ..run import atomic_write_bytes
from ..errors import ConfigError, NotFoundError, unknown_name
from ._records import size_mb
from ..machine import cpu_flags


@dataclass(frozen=True)
class Int8Form:
    """One way of writing a statically quantised model (see onnxruntime.quantization.quantize_static)."""

    name: str
    quant_format: str  # "qdq" (Q/DQ node pairs around float ops) or "qoperator" (QLinearConv, ...)
    activations: str  # "s8" (int8) or "u8" (uint8)
    per_channel: bool  # one weight scale per output channel (better accuracy) or one per tensor
    symmetric_activations: bool  # zero point 0 (int8) / 128 (uint8); TensorRT requires it
    reduce_range: bool  # 7-bit weights: avoids int16 accumulation overflow on AVX2 CPUs without VNNI
    preprocess: bool  # run onnxruntime's quant_pre_process (shape inference + graph optimisation) first
    quantize_bias: bool = True  # int32 bias behind a DequantizeLinear (QDQ only); TensorRT reads float biases
    weights: str = "s8"  # "s8" (int8) or "u8" (uint8) weights
    float_depthwise: bool = False  # leave depthwise convolutions (group == channels) in float32
    float_ops: tuple[str, ...] = ()  # op types left in float32 (e.g. "Gemm" for the classifier)
    # Zero channels so that onnxruntime's fast symmetric INT8 kernels run every conv (exact; `pad_conv_channels`):
    # depthwise convs in multiples of 16 channels, conv outputs of at least 16 in multiples of 8.
    pad_channels: bool = False


INT8_FORMS: dict[str, Int8Form] = {
    f.name: f
    for f in (
        # TensorRT explicit quantisation: symmetric int8 activations and weights (zero point 0, weights in
        # [-127, 127]), per-channel weights, and biases left in float, as NVIDIA's own Q/DQ exporters write them
        # (no int32 DequantizeLinear for TensorRT's parser to handle).
        Int8Form("qdq", "qdq", "s8", per_channel=True, symmetric_activations=True, reduce_range=False, preprocess=True,
                 quantize_bias=False),
        # The fastest form for onnxruntime on x86 CPUs (benchmarks/int8_forms.py): uint8 activations, int8
        # weights of zero point 0, channels padded to what MLAS's symmetric conv kernels take. Still QDQ, so
        # other execution providers read it too; TensorRT does not (it needs int8, zero point 0).
        Int8Form("qdq-u8", "qdq", "u8", per_channel=True, symmetric_activations=False, reduce_range=False,
                 preprocess=True, quantize_bias=False, pad_channels=True),
        # qdq-u8 with 7-bit weights: onnxruntime's advice for x86 CPUs without VNNI, whose u8 x s8 dot product
        # saturates in int16 (an accuracy fix, not a speed-up).
        Int8Form("qdq-u8-rr", "qdq", "u8", per_channel=True, symmetric_activations=False, reduce_range=True,
                 preprocess=True, quantize_bias=False, pad_channels=True),
        # onnxruntime's classic x86 recommendation: QOperator kernels (QLinearConv, ...), uint8 activations.
        Int8Form("qoperator-u8", "qoperator", "u8", per_channel=True, symmetric_activations=False,
                 reduce_range=False, preprocess=True, pad_channels=True),
    )
}
AUTO = "auto"  # --int8-format auto: the form chosen for the backend (and CPU) the file is made for
TENSORRT_FORM = "qdq"
DEFAULT_INT8_FORM = AUTO
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
# Which forms each backend runs as intended: TensorRT only reads symmetric int8 Q/DQ; OpenVINO reads Q/DQ.
BACKEND_FORMS: dict[str, tuple[str, ...]] = {
    "ort-cpu": tuple(INT8_FORMS),
    "tensorrt": (TENSORRT_FORM,),
    "openvino-cpu": ("qdq", "qdq-u8", "qdq-u8-rr"),
}


def ort_cpu_form(flags: tuple[str, ...] | None = None) -> Int8Form:
    """The INT8 form for onnxruntime's CPU provider on a CPU with these vector `flags` (default: this one's).

    uint8 activations with int8 per-channel weights of zero point 0 in Q/DQ form, channels padded to
    MLAS's vector widths: onnxruntime fuses them into QLinearConv (NHWC, the Clip/ReLU6 activations folded
    into the output range, residual Adds into QLinearAdd) and runs MLAS's symmetric u8 x s8 kernels. With VNNI
    this form was the fastest measured; without VNNI, 7-bit weights (`qdq-u8-rr`) keep the int16
    accumulation from saturating (onnxruntime's advice). Measurements: docs/decisions/int8-form.md.
    """

    flags = cpu_flags() if flags is None else flags
    return INT8_FORMS["qdq-u8" if any(f in flags for f in VNNI_FLAGS) or not flags else "qdq-u8-rr"]


def int8_form_for(backend: str, requested: str | Int8Form = AUTO, flags: tuple[str, ...] | None = None) -> Int8Form:
    """The INT8 form to write for `backend`: `requested`, checked to run there, or with "auto" the
    backend's own form (onnxruntime CPU: `ort_cpu_form`; TensorRT and OpenVINO: symmetric int8 "qdq").
    `ConfigError` when the backend cannot run the requested form."""
    if backend not in BACKEND_FORMS:
        raise unknown_name("INT8 backend", backend, BACKEND_FORMS)
    if isinstance(requested, str) and requested == AUTO:
        return ort_cpu_form(flags) if backend == "ort-cpu" else INT8_FORMS[TENSORRT_FORM]
    form = resolve_form(requested)
    if form.name not in BACKEND_FORMS[backend]:
        need = ("int8 activations with zero point 0" if backend == "tensorrt" else "Q/DQ nodes")
        raise ConfigError(f"INT8 form {form.name} cannot run on {backend} ({backend} needs {need}); "
                          f"forms for {backend}: {', '.join(BACKEND_FORMS[backend])}, or auto")
    return form


@dataclass(frozen=True)
class QuantizedExport:
    """One INT8 file and how it compares in size with its FP32 source."""

    path: Path
    form: Int8Form
    calib_images: int
    fp32_size_mb: float
    size_mb: float
    size_ratio: float  # size_mb / fp32_size_mb
    quantize_s: float
    padded_channels: int = 0  # zero output channels added for onnxruntime's kernels (`Int8Form.pad_channels`)


class ImageCalibrationReader:
    """Feeds real, already normalised images to onnxruntime's calibrator, `batch_size` at a time."""

    def __init__(self, input_name: str, images: np.ndarray, batch_size: int = 16) -> None:
        self.input_name = input_name
        self.images = np.ascontiguousarray(images, dtype=np.float32)  # (N, C, H, W)
        self.batch_size = batch_size
        self._batches: Iterator[np.ndarray] = self._iter()

    def _iter(self) -> Iterator[np.ndarray]:
        for start in range(0, len(self.images), self.batch_size):
            yield self.images[start : start + self.batch_size]  # (B, C, H, W)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {self.input_name: batch}

    def rewind(self) -> None:
        self._batches = self._iter()


def resolve_form(form: str | Int8Form) -> Int8Form:
    """An `Int8Form` from its name (see `INT8_FORMS`; "auto": the onnxruntime CPU form for this CPU) or itself."""
    if isinstance(form, Int8Form):
        return form
    if form == AUTO:
        return ort_cpu_form()
    if form not in INT8_FORMS:
        raise unknown_name("INT8 format", form, [*INT8_FORMS, AUTO])
    return INT8_FORMS[form]


def quantize_int8(fp32_path: Path, out_path: Path, calib_images: torch.Tensor, *,
                  form: str | Int8Form = TENSORRT_FORM, calibrate_method: str = "minmax",
                  calib_batch_size: int = 16) -> QuantizedExport:
    """Statically quantise `fp32_path` to `out_path`, calibrated on `calib_images` (N, 3, H, W), normalised.

    `calibrate_method` is "minmax" (default: no clipping, safest for small calibration sets),
    "entropy" or "percentile". The output is written atomically.
    """
    qz = _quantization_module()
    fp32_path, out_path = Path(fp32_path), Path(out_path)
    spec = resolve_form(form)
    _check_paths(fp32_path, out_path)
    if calib_images.ndim != 4 or len(calib_images) == 0:
        raise ConfigError(f"INT8 calibration needs a non-empty (N, C, H, W) batch of real images, "
                          f"got shape {tuple(calib_images.shape)}; raise calib_samples")
    methods = {"minmax": qz.CalibrationMethod.MinMax, "entropy": qz.CalibrationMethod.Entropy,
               "percentile": qz.CalibrationMethod.Percentile}
    if calibrate_method not in methods:
        raise unknown_name("calibration method", calibrate_method, methods)
    qtype = {"s8": qz.QuantType.QInt8, "u8": qz.QuantType.QUInt8}
    if spec.activations not in qtype or spec.weights not in qtype or spec.quant_format not in ("qdq", "qoperator"):
        raise ConfigError(f"INT8 form {spec} is not valid: activations and weights s8|u8, quant_format qdq|qoperator")

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="facompress-quant-") as tmp:
        source = fp32_path
        if spec.preprocess:
            source = Path(tmp) / "pre.onnx"
            with _quiet_quantizer():
                qz.shape_inference.quant_pre_process(str(fp32_path), str(source))
        padded = 0
        if spec.pad_channels:
            source, padded = _padded_copy(source, Path(tmp) / "padded.onnx")
        reader = ImageCalibrationReader(_input_name(source), calib_images.detach().cpu().numpy(), calib_batch_size)
        excluded = float_nodes(source, spec)
        staged = Path(tmp) / "int8.onnx"
        with _quiet_quantizer():
            qz.quantize_static(
                str(source), str(staged), reader,
                quant_format=qz.QuantFormat.QDQ if spec.quant_format == "qdq" else qz.QuantFormat.QOperator,
                activation_type=qtype[spec.activations], weight_type=qtype[spec.weights],
                per_channel=spec.per_channel, reduce_range=spec.reduce_range,
                calibrate_method=methods[calibrate_method], nodes_to_exclude=excluded,
                extra_options={"ActivationSymmetric": spec.symmetric_activations,
                               "WeightSymmetric": spec.weights == "s8",
                               "QuantizeBias": spec.quantize_bias},
            )
        atomic_write_bytes(out_path, staged.read_bytes())
    fp32_mb, int8_mb = size_mb(fp32_path), size_mb(out_path)
    return QuantizedExport(path=out_path, form=spec, calib_images=len(calib_images), fp32_size_mb=fp32_mb,
                           size_mb=int8_mb, size_ratio=round(int8_mb / fp32_mb, 4),
                           quantize_s=round(time.perf_counter() - start, 3), padded_channels=padded)


def _padded_copy(source: Path, out: Path) -> tuple[Path, int]:
    """`source` with its conv channels padded for onnxruntime's INT8 kernels (written to `out`), and the
    number of zero channels added; `source` itself where nothing needs padding."""
    from ._pad_channels import pad_conv_channels

    onnx = require("onnx", "INT8 quantisation")
    model = onnx.load(str(source))
    padding = pad_conv_channels(model)
    if not padding.convs:
        return source, 0
    onnx.save(model, str(out))
    return out, padding.channels_added


def float_nodes(path: Path, form: Int8Form) -> list[str]:
    """Names of the nodes of `path` that `form` leaves in float32 (depthwise convs, `float_ops`)."""
    if not form.float_depthwise and not form.float_ops:
        return []
    onnx = require("onnx", "INT8 quantisation")
    graph: Any = onnx.load(str(path), load_external_data=False).graph
    shapes = {t.name: list(t.dims) for t in graph.initializer}
    names = []
    for node in graph.node:
        if node.op_type in form.float_ops:
            names.append(node.name)
        elif form.float_depthwise and node.op_type == "Conv":
            group = next((a.i for a in node.attribute if a.name == "group"), 1)
            weight = shapes.get(node.input[1], [])
            if group > 1 and len(weight) == 4 and weight[1] == 1:  # (C_out, C_in / group = 1, kH, kW)
                names.append(node.name)
    return names


def convert_fp16(fp32_path: Path, out_path: Path) -> Path:
    """Write an FP16 copy of `fp32_path` whose inputs and outputs stay float32 (casts inside the graph).

    That is the form TensorRT's strongly typed builder turns into an FP16 engine.
    """
    onnx = require("onnx", "FP16 conversion")
    float16 = require("onnxconverter_common", "FP16 conversion").float16
    fp32_path, out_path = Path(fp32_path), Path(out_path)
    _check_paths(fp32_path, out_path)
    model = onnx.load(str(fp32_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "values truncated to fp16 range" style notices
        half = float16.convert_float_to_float16(model, keep_io_types=True)
    onnx.checker.check_model(half)
    atomic_write_bytes(out_path, half.SerializeToString())
    return out_path


def onnx_precision(path: Path) -> str:
    """"int8" (Q/DQ or QLinear nodes), "fp16" (float16 initializers) or "fp32": what a strongly typed
    TensorRT build of this file will run in."""
    onnx = require("onnx", "reading ONNX files")
    graph = onnx.load(str(path), load_external_data=False).graph
    ops = {n.op_type for n in graph.node}
    if ops & {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger"}:
        return "int8"
    if any(t.data_type == onnx.TensorProto.FLOAT16 for t in graph.initializer):
        return "fp16"
    return "fp32"


@contextlib.contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """Silence onnxruntime.quantization's advice, which it logs on the root logger, and its warnings."""

    def drop(record: logging.LogRecord) -> bool:
        return "onnxruntime" not in record.pathname or record.levelno >= logging.ERROR

    root = logging.getLogger()
    root.addFilter(drop)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.removeFilter(drop)


def _quantization_module() -> Any:
    """onnxruntime.quantization with its shape_inference submodule loaded."""
    require("onnxruntime", "INT8 quantisation")
    importlib.import_module("onnxruntime.quantization.shape_inference")
    return importlib.import_module("onnxruntime.quantization")


def _check_paths(src: Path, dst: Path) -> None:
    if not src.is_file():
        raise NotFoundError(f"ONNX file {src} does not exist; export the FP32 model first")
    if not dst.parent.is_dir():
        raise NotFoundError(f"folder {dst.parent} does not exist; create it or choose another path")
    if src.resolve() == dst.resolve():
        raise ConfigError(f"the output {dst} would overwrite its own source; choose another name")


def _input_name(path: Path) -> str:
    onnx = require("onnx", "INT8 quantisation")
    graph: Any = onnx.load(str(path), load_external_data=False).graph
    initializers = {t.name for t in graph.initializer}
    return next(i.name for i in graph.input if i.name not in initializers)
