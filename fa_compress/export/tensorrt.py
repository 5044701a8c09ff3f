"""TensorRT engines from ONNX: the only module of facompress that imports `tensorrt` (inside functions).

Works on TensorRT 10 and 11. The network is strongly typed, so precision comes from the ONNX itself:
an FP32 file gives an FP32 engine (TF32 allowed by TensorRT's defaults), the FP16 file from
`convert_fp16` an FP16 engine, the QDQ file from `quantize_int8` an INT8 engine. No weak-typing
builder flag (`BuilderFlag.FP16/INT8`, removed in TensorRT 11) and no calibrator is used.

>>> check_trt_available()          # MissingDependencyError with one line saying what is missing
>>> info = build_engine(Path("m.onnx"), Path("m.engine"), min_batch=1, opt_batch=8, max_batch=32,
...                     img_size=224, timing_cache_path=Path("run/trt.cache"))
>>> logits = run_engine(info.path, images_np)   # (N, K) float32
"""

from __future__ import annotations

import importlib
import json
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..run import atomic_write_bytes
from ..errors import CheckpointError, ConfigError, MissingDependencyError, NotFoundError
from ._records import size_mb, to_record
from .parity import FP16_TOLERANCE, INT8_TOLERANCE, ParityReport, Tolerance, compare_logits

INSTALL_HINT = "pip install 'facompress[tensorrt]' on a Linux machine with an NVIDIA GPU and CUDA driver"


@dataclass(frozen=True)
class EngineInfo:
    """One built engine; the same facts are written beside it as `<engine>.json`."""

    path: Path
    trt_version: str
    gpu_name: str
    build_s: float
    size_mb: float
    precision: str  # "fp32" | "fp16" | "int8", as read from the ONNX
    min_batch: int
    opt_batch: int
    max_batch: int
    img_size: int
    workspace_mb: int
    timing_cache_reused: bool  # a cache from an earlier build was loaded


def check_trt_available() -> None:
    """Raise `MissingDependencyError` (one line: what is missing, how to get it) unless TensorRT can run here."""
    try:
        importlib.import_module("tensorrt")
    except Exception as exc:  # noqa: BLE001 - the bindings without their libraries raise OSError/ImportError
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MissingDependencyError(
            f"TensorRT is not available: the tensorrt Python package cannot be imported ({reason}); "
            f"install it with: {INSTALL_HINT}"
        ) from exc
    import torch

    if not torch.cuda.is_available():
        raise MissingDependencyError(
            "TensorRT is installed but no CUDA GPU is visible (torch.cuda.is_available() is False); TensorRT "
            f"builds and runs engines on an NVIDIA GPU: run on a machine with one ({INSTALL_HINT})"
        )


def check_batch_bounds(min_batch: int, opt_batch: int, max_batch: int) -> None:
    """Raise `ConfigError` unless 1 <= min_batch <= opt_batch <= max_batch."""
    if not all(isinstance(b, int) for b in (min_batch, opt_batch, max_batch)) or not (
        1 <= min_batch <= opt_batch <= max_batch
    ):
        raise ConfigError(
            f"batch bounds must satisfy 1 <= min <= opt <= max; got min {min_batch}, opt {opt_batch}, max "
            f"{max_batch}. Example: min_batch 1 opt_batch 8 max_batch 32"
        )


def build_engine(onnx_path: Path, engine_path: Path, *, min_batch: int, opt_batch: int, max_batch: int,
                 img_size: int, workspace_mb: int = 2048, timing_cache_path: Path | None = None) -> EngineInfo:
    """Build a strongly typed engine from `onnx_path` with one optimisation profile over the batch size.

    The engine and its `.json` sidecar are written atomically; the timing cache is loaded from
    `timing_cache_path` when present and saved back after the build.
    """
    from .quantize import onnx_precision

    check_batch_bounds(min_batch, opt_batch, max_batch)
    if workspace_mb < 64:
        raise ConfigError(f"workspace_mb {workspace_mb} is too small; give TensorRT at least 64 MiB (default 2048)")
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    if not onnx_path.is_file():
        raise NotFoundError(f"ONNX file {onnx_path} does not exist; export it first")
    if not engine_path.parent.is_dir():
        raise NotFoundError(f"folder {engine_path.parent} does not exist; create it or choose another path")
    check_trt_available()
    trt = importlib.import_module("tensorrt")

    start = time.perf_counter()
    logger = _make_logger(trt)
    builder = trt.Builder(logger)
    network, _parser = _parse_onnx(trt, builder, logger, onnx_path)  # _parser holds the weights: keep it alive
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb * 2**20)
    profile = builder.create_optimization_profile()
    name = network.get_input(0).name
    channels = network.get_input(0).shape[1]
    shape = lambda b: (b, channels, img_size, img_size)  # noqa: E731 - (B, C, H, W)
    profile.set_shape(name, shape(min_batch), shape(opt_batch), shape(max_batch))
    config.add_optimization_profile(profile)
    reused = _attach_timing_cache(config, timing_cache_path)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ConfigError(f"TensorRT could not build an engine from {onnx_path.name}: "
                          f"{'; '.join(logger.errors) or 'see the TensorRT log above'}")
    atomic_write_bytes(engine_path, bytes(memoryview(serialized)))
    if timing_cache_path is not None:
        # the builder added what it timed to the attached cache
        atomic_write_bytes(Path(timing_cache_path), bytes(memoryview(config.get_timing_cache().serialize())))

    import torch

    info = EngineInfo(
        path=engine_path, trt_version=str(trt.__version__), gpu_name=torch.cuda.get_device_name(0),
        build_s=round(time.perf_counter() - start, 3), size_mb=size_mb(engine_path),
        precision=onnx_precision(onnx_path), min_batch=min_batch, opt_batch=opt_batch, max_batch=max_batch,
        img_size=img_size, workspace_mb=workspace_mb, timing_cache_reused=reused,
    )
    sidecar = dict(to_record(info), onnx=str(onnx_path), cuda=torch.version.cuda)
    atomic_write_bytes(sidecar_path(engine_path), (json.dumps(sidecar, indent=2) + "\n").encode())
    return info


def sidecar_path(engine_path: Path) -> Path:
    """Where the JSON facts of an engine live: `model.engine` -> `model.engine.json`."""
    return Path(engine_path).with_name(Path(engine_path).name + ".json")


def run_engine(engine_path: Path, images: np.ndarray, *, batch_size: int | None = None) -> np.ndarray:
    """Run `images` (N, C, H, W) through the engine, `batch_size` at a time (default: the profile's max).

    Returns (N, K) float32 logits. Uses TensorRT's tensor API (`set_input_shape`, `set_tensor_address`,
    `execute_async_v3`) with torch CUDA tensors holding the device memory.
    """
    engine_path = Path(engine_path)
    if not engine_path.is_file():
        raise NotFoundError(f"engine {engine_path} does not exist; build it with build_engine / export trt")
    check_trt_available()
    trt = importlib.import_module("tensorrt")
    import torch

    logger = _make_logger(trt)
    engine = trt.Runtime(logger).deserialize_cuda_engine(engine_path.read_bytes())
    if engine is None:
        raise CheckpointError(f"{engine_path} could not be loaded by TensorRT {trt.__version__} on this GPU "
                              f"({'; '.join(logger.errors) or 'version or GPU mismatch'}); rebuild it here")
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
    outputs = [n for n in names if engine.get_tensor_mode(n) != trt.TensorIOMode.INPUT]
    if len(inputs) != 1 or len(outputs) != 1:
        raise CheckpointError(f"{engine_path} has inputs {inputs} and outputs {outputs}; expected one of each")
    in_name, out_name = inputs[0], outputs[0]
    lo, hi = int(engine.get_tensor_profile_shape(in_name, 0)[0][0]), int(engine.get_tensor_profile_shape(in_name, 0)[2][0])
    step = batch_size or hi
    if not lo <= step <= hi:
        raise ConfigError(f"batch size {step} is outside the range {lo}-{hi} {engine_path.name} was built for")
    context = engine.create_execution_context()
    stream = torch.cuda.Stream()
    in_dtype, out_dtype = (_torch_dtype(trt, engine.get_tensor_dtype(n)) for n in (in_name, out_name))
    results = []
    for start in range(0, len(images), step):
        x = torch.from_numpy(np.ascontiguousarray(images[start : start + step])).to("cuda", in_dtype)  # (B, C, H, W)
        if len(x) < lo:  # a short last chunk below the profile minimum: pad with zeros, drop the extra rows
            x = torch.cat([x, x.new_zeros((lo - len(x), *x.shape[1:]))])
        if not context.set_input_shape(in_name, tuple(x.shape)):
            raise ConfigError(f"input shape {tuple(x.shape)} is outside the profile {engine_path.name} was built for")
        out = torch.empty(tuple(context.get_tensor_shape(out_name)), dtype=out_dtype, device="cuda")  # (B, K)
        context.set_tensor_address(in_name, x.data_ptr())
        context.set_tensor_address(out_name, out.data_ptr())
        stream.wait_stream(torch.cuda.current_stream())  # the host-to-device copy above ran there
        if not context.execute_async_v3(stream.cuda_stream):
            raise CheckpointError(f"TensorRT failed to run {engine_path.name}: {'; '.join(logger.errors)}")
        stream.synchronize()
        results.append(out.float().cpu().numpy()[: len(images[start : start + step])])  # (B, K)
    return np.concatenate(results, axis=0)  # (N, K)


def check_engine_parity(engine_path: Path, onnx_path: Path, images: np.ndarray, *,
                        batch_sizes: tuple[int, ...], tolerance: Tolerance | None = None) -> ParityReport:
    """Compare the engine's logits with onnxruntime (CPU) on the ONNX file it was built from.

    Default tolerance: FP16_TOLERANCE for FP32/FP16 engines (TensorRT uses TF32 for FP32 by default),
    INT8_TOLERANCE for INT8 engines.
    """
    from ._ort import open_session, run_batches
    from .quantize import onnx_precision

    if tolerance is None:
        tolerance = INT8_TOLERANCE if onnx_precision(Path(onnx_path)) == "int8" else FP16_TOLERANCE
    session = open_session(Path(onnx_path))
    references = [run_batches(session, images, b) for b in batch_sizes]  # each (N, K)
    candidates = [run_engine(engine_path, images, batch_size=b) for b in batch_sizes]  # each (N, K)
    return compare_logits(references, candidates, path=Path(engine_path), batch_sizes=batch_sizes,
                          tolerance=tolerance)


def _torch_dtype(trt: Any, dtype: Any) -> Any:
    import torch

    table = {trt.DataType.FLOAT: torch.float32, trt.DataType.HALF: torch.float16, trt.DataType.INT8: torch.int8,
             trt.DataType.INT32: torch.int32, trt.DataType.BOOL: torch.bool}
    if dtype not in table:
        raise CheckpointError(f"engine tensor type {dtype} is not one facompress feeds or reads")
    return table[dtype]


def _attach_timing_cache(config: Any, path: Path | None) -> bool:
    """Attach a timing cache loaded from `path` (empty if none); True when an earlier cache was reused.

    A cache from another TensorRT version or GPU is replaced by an empty one, with a warning.
    """
    blob = Path(path).read_bytes() if path is not None and Path(path).is_file() else b""
    cache = config.create_timing_cache(blob)
    if cache is not None and config.set_timing_cache(cache, ignore_mismatch=False):
        return bool(blob)
    warnings.warn(f"timing cache {path} comes from another TensorRT version or GPU; starting a new one",
                  stacklevel=3)
    config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)
    return False


def _parse_onnx(trt: Any, builder: Any, logger: Any, onnx_path: Path) -> tuple[Any, Any]:
    """A strongly typed network from `onnx_path` (the parser must outlive the build: it owns the weights)."""
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        raise ConfigError(f"TensorRT's ONNX parser rejected {onnx_path.name}: {_parser_errors(parser)}")
    if network.num_inputs != 1:
        raise ConfigError(f"{onnx_path.name} has {network.num_inputs} inputs; facompress engines take one image batch")
    return network, parser


def _parser_errors(parser: Any) -> str:
    """Every error the ONNX parser recorded, as 'node: description (code)'."""
    lines = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        node = err.node_name() if hasattr(err, "node_name") else f"node {err.node()}"
        lines.append(f"{node or '<graph>'}: {err.desc()} ({err.code()})")
    return "; ".join(lines) or "no error detail was given"


def _make_logger(trt: Any) -> Any:
    """A TensorRT logger that keeps error messages (for our exceptions) and prints warnings and up."""

    class _Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity: Any, msg: str) -> None:
            if severity in (trt.ILogger.Severity.ERROR, trt.ILogger.Severity.INTERNAL_ERROR):
                self.errors.append(msg)
            if severity in (trt.ILogger.Severity.ERROR, trt.ILogger.Severity.INTERNAL_ERROR,
                            trt.ILogger.Severity.WARNING):
                print(f"[TensorRT] {msg}", file=sys.stderr, flush=True)

    return _Logger()
