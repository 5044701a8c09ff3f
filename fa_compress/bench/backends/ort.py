"""onnxruntime backends: CPU, and CUDA where onnxruntime-gpu really runs on the GPU.

onnxruntime-gpu falls back to the CPU provider (printing errors) when CUDA libraries are missing;
`ort-cuda` checks `session.get_providers()` and reports itself unavailable instead of timing the CPU.
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

_CUDA_EP = "CUDAExecutionProvider"
_NUMPY_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


class OrtRunner(Runner):
    """An onnxruntime session with one image input (float32 or float16)."""

    def __init__(self, session: Any, settings: str) -> None:
        self.session, self.settings = session, settings
        first = session.get_inputs()[0]
        self.input_name = first.name
        self.input_dtype = _NUMPY_TYPES.get(first.type, np.float32)

    def step_fn(self, batch_size: int, img_size: int) -> Callable[[], None]:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((batch_size, 3, img_size, img_size)).astype(self.input_dtype)  # (B, 3, H, W)
        feed = {self.input_name: x}

        def step() -> None:
            self.session.run(None, feed)  # returns host arrays: the device work has finished

        return step

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        x = images.detach().cpu().numpy().astype(self.input_dtype)  # (N, 3, H, W)
        logits = self.session.run(None, {self.input_name: x})[0]  # (N, classes)
        return torch.from_numpy(np.asarray(logits, dtype=np.float32))


def _ort_or_reason() -> tuple[Any, str]:
    try:
        return require("onnxruntime", "the onnxruntime backends"), ""
    except MissingDependencyError as exc:
        return None, str(exc)


@register
class OrtCpuBackend(Backend):
    """onnxruntime's CPUExecutionProvider, all graph optimisations, a fixed number of intra-op threads."""

    name = "ort-cpu"
    artifact_kind = "onnx"
    description = "onnxruntime, CPUExecutionProvider"

    def __init__(self, intra_op_threads: int | None = None) -> None:
        # Same thread count as torch by default, so ort-cpu and torch-cpu compare like for like.
        self.intra_op_threads = intra_op_threads or torch.get_num_threads()

    def available(self) -> tuple[bool, str]:
        ort, reason = _ort_or_reason()
        return ort is not None, reason

    def load(self, artifact: Any) -> OrtRunner:
        path = check_artifact_is_path(self, artifact, (".onnx",))
        self.require_available()
        ort = require("onnxruntime")
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.intra_op_threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Worker threads spin between calls, onnxruntime's default and what a deployment gets: with
        # spinning off, Lite0 at 64 px ran 1.49x (dense) and 1.67x (0.5 MACs) slower at batch 8 here,
        # small convs paying an OS wake-up each (docs/results.md). A spinning session
        # can slow the next artifact's first call in a round; each visit counts by its fastest call.
        options.add_session_config_entry("session.intra_op.allow_spinning", "1")
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        settings = (f"onnxruntime {ort.__version__} CPUExecutionProvider, "
                    f"intra_op_threads={self.intra_op_threads}, spinning")
        return OrtRunner(session, settings)


@functools.lru_cache(maxsize=1)
def _cuda_provider_works() -> tuple[bool, str]:
    """Create a one-node session on CUDAExecutionProvider and check it was not replaced by the CPU."""
    ort, reason = _ort_or_reason()
    if ort is None:
        return False, reason
    if _CUDA_EP not in ort.get_available_providers():
        return False, (f"onnxruntime {ort.__version__} offers {', '.join(ort.get_available_providers())}, "
                       f"not {_CUDA_EP}; install onnxruntime-gpu on a machine with an NVIDIA GPU")
    try:
        onnx = require("onnx", "probing onnxruntime's CUDA provider")
    except MissingDependencyError:
        return True, ""  # cannot probe; `load` still checks the real session's providers
    helper, TensorProto = onnx.helper, onnx.TensorProto

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "probe",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = min(model.ir_version, 8)
    try:
        session = ort.InferenceSession(model.SerializeToString(), providers=[_CUDA_EP])
    except Exception as exc:  # noqa: BLE001 - any failure to build the session means "unavailable"
        return False, f"{_CUDA_EP} failed to create a session: {str(exc).splitlines()[0][:200]}"
    if _CUDA_EP not in session.get_providers():
        return False, (f"{_CUDA_EP} is listed but sessions fall back to {', '.join(session.get_providers())} "
                       f"(CUDA/cuDNN libraries missing or no GPU)")
    return True, ""


@register
class OrtCudaBackend(Backend):
    """onnxruntime's CUDAExecutionProvider; times include the host<->device copies of input and output."""

    name = "ort-cuda"
    artifact_kind = "onnx"
    description = "onnxruntime, CUDAExecutionProvider (host input/output)"

    def available(self) -> tuple[bool, str]:
        return _cuda_provider_works()

    def load(self, artifact: Any) -> OrtRunner:
        path: Path = check_artifact_is_path(self, artifact, (".onnx",))
        self.require_available()
        ort = require("onnxruntime")
        session = ort.InferenceSession(str(path), providers=[_CUDA_EP])
        if session.get_providers()[0] != _CUDA_EP:
            raise MissingDependencyError(f"ort-cuda: the session for {path.name} runs on "
                                         f"{', '.join(session.get_providers())}, not {_CUDA_EP}; "
                                         f"refusing to time the CPU fallback")
        return OrtRunner(session, f"onnxruntime {ort.__version__} {_CUDA_EP}, host input/output")
