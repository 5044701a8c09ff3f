"""OpenVINO backend: ONNX files on OpenVINO's CPU plugin (optional: `pip install 'facompress[openvino]'`).

OpenVINO reads the same ONNX files as onnxruntime and runs the symmetric int8 Q/DQ form TensorRT
needs with real int8 kernels, so the TensorRT-form INT8 file has a fast CPU runtime too. `openvino`
is imported only inside these functions.

Settings: latency hint, one stream, the same thread count as torch, and float32 inference precision
(on CPUs with AMX or AVX-512 BF16 the plugin would otherwise run float32 models in bfloat16).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..._deps import require
from ...errors import MissingDependencyError
from ._base import Backend, Runner, check_artifact_is_path, register

DEVICE = "CPU"


class OpenVinoRunner(Runner):
    """An ONNX model for OpenVINO's CPU plugin, compiled once per input shape (static shapes: the plugin's
    dynamic-batch kernels ran Lite0 about 4x slower here), each with one synchronous infer request."""

    def __init__(self, core: Any, model: Any, config: dict[str, str], settings: str) -> None:
        self.core, self.model, self.config, self.settings = core, model, config, settings
        self._requests: dict[tuple[int, ...], Any] = {}

    def _request(self, shape: tuple[int, ...]) -> Any:
        if shape not in self._requests:
            model = self.model.clone()
            model.reshape({model.inputs[0].get_any_name(): list(shape)})
            self._requests[shape] = self.core.compile_model(model, DEVICE, self.config).create_infer_request()
        return self._requests[shape]

    def _run(self, x: np.ndarray) -> np.ndarray:
        request = self._request(tuple(x.shape))
        request.infer({0: x})
        return request.get_output_tensor(0).data  # the request's buffer: copy before the next call

    def step_fn(self, batch_size: int, img_size: int) -> Callable[[], None]:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((batch_size, 3, img_size, img_size)).astype(np.float32)  # (B, 3, H, W)
        self._request(tuple(x.shape))  # compile before timing

        def step() -> None:
            self._run(x)  # synchronous: returns when the CPU work is done

        return step

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        x = np.ascontiguousarray(images.detach().cpu().numpy(), dtype=np.float32)  # (N, 3, H, W)
        return torch.from_numpy(np.array(self._run(x), dtype=np.float32))  # (N, classes)


def _openvino_or_reason() -> tuple[Any, str]:
    try:
        return require("openvino", "the openvino-cpu backend"), ""
    except MissingDependencyError as exc:
        return None, str(exc)


@register
class OpenVinoCpuBackend(Backend):
    """OpenVINO's CPU plugin on an ONNX file; latency hint, one stream, float32 precision for float models."""

    name = "openvino-cpu"
    artifact_kind = "onnx"
    description = "OpenVINO, CPU plugin"

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads or torch.get_num_threads()

    def available(self) -> tuple[bool, str]:
        ov, reason = _openvino_or_reason()
        if ov is None:
            return False, reason
        try:
            devices = ov.Core().available_devices
        except Exception as exc:  # noqa: BLE001 - a broken install counts as unavailable, with its reason
            return False, f"openvino {ov.__version__} failed to start: {str(exc).splitlines()[0][:200]}"
        if DEVICE not in devices:
            return False, f"openvino {ov.__version__} offers {', '.join(devices) or 'no devices'}, not {DEVICE}"
        return True, ""

    def load(self, artifact: Any) -> OpenVinoRunner:
        path: Path = check_artifact_is_path(self, artifact, (".onnx",))
        self.require_available()
        ov = require("openvino")
        core = _core()
        config = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1", "INFERENCE_NUM_THREADS": str(self.threads),
                  "INFERENCE_PRECISION_HINT": "f32", "ENABLE_CPU_PINNING": "NO"}
        settings = (f"openvino {ov.__version__.split('-')[0]} CPU, latency hint, 1 stream, threads={self.threads}, "
                    f"f32 precision (int8 where the file has Q/DQ), compiled per input shape")
        return OpenVinoRunner(core, core.read_model(str(path)), config, settings)


@functools.lru_cache(maxsize=1)
def _core() -> Any:
    """The process's one OpenVINO `Core` (OpenVINO's advice: one per application). A Core per load
    (the bench loads each artifact 5 times) crashed later PyTorch training in the same process."""
    return require("openvino").Core()
