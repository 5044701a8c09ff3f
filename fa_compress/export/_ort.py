"""Opening an onnxruntime session without silent provider fallback.

>>> session = open_session(Path("model.onnx"))            # CPU
>>> logits = run_batches(session, images_np, batch_size=8)  # (N, num_classes)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._deps import require
from ..errors import MissingDependencyError, NotFoundError

_NUMPY_OF_ORT_TYPE = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


def open_session(path: Path, providers: Sequence[str] | None = None) -> Any:
    """An `onnxruntime.InferenceSession` on `providers` (default: CPU only), all of them really in use.

    Raises `MissingDependencyError` when a requested provider is not available here, instead of
    letting onnxruntime fall back to the CPU behind the caller's back.
    """
    ort = require("onnxruntime", "running ONNX models")
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"ONNX file {path} does not exist")
    wanted = list(providers) if providers else ["CPUExecutionProvider"]
    available = ort.get_available_providers()
    missing = [p for p in wanted if p not in available]
    if missing:
        raise MissingDependencyError(
            f"onnxruntime provider(s) {', '.join(missing)} requested; available here: {', '.join(available)}. "
            "Install onnxruntime-gpu on a CUDA machine for CUDA/TensorRT providers"
        )
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: no per-node fallback chatter
    session = ort.InferenceSession(str(path), sess_options=options, providers=wanted)
    used = session.get_providers()
    dropped = [p for p in wanted if p not in used]
    if dropped:
        raise MissingDependencyError(
            f"onnxruntime could not start provider(s) {', '.join(dropped)} (running on {', '.join(used)}); "
            "check the CUDA driver and onnxruntime-gpu install"
        )
    return session


def run_batches(session: Any, images: np.ndarray, batch_size: int) -> np.ndarray:
    """Run `images` (N, C, H, W) through `session` in chunks of `batch_size`; float32 (N, K) logits."""
    io = session.get_inputs()[0]
    dtype = _NUMPY_OF_ORT_TYPE.get(io.type, np.float32)
    out = []
    for start in range(0, len(images), batch_size):
        chunk = np.ascontiguousarray(images[start : start + batch_size], dtype=dtype)  # (B, C, H, W)
        out.append(np.asarray(session.run(None, {io.name: chunk})[0], dtype=np.float32))  # (B, K)
    return np.concatenate(out, axis=0)  # (N, K)
