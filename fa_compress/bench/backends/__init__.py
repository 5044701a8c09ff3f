"""Latency backends, one module per runtime, found by name through a small registry.

>>> backend = get_backend("ort-cpu")
>>> ok, reason = backend.available()
>>> stats = backend.measure("model.onnx", batch_size=8, img_size=224, warmup=10, runs=50)

| name            | artifact           | runs on                                   |
|-----------------|--------------------|-------------------------------------------|
| torch-cpu       | nn.Module          | PyTorch eager, CPU, float32               |
| torch-cuda-fp32 | nn.Module          | PyTorch eager, CUDA, float32, channels_last |
| torch-cuda-fp16 | nn.Module          | PyTorch eager, CUDA, float16, channels_last |
| ort-cpu         | .onnx              | onnxruntime CPUExecutionProvider          |
| ort-cuda        | .onnx              | onnxruntime CUDAExecutionProvider         |
| tensorrt        | .engine / .plan    | TensorRT runtime, CUDA                    |
| openvino-cpu    | .onnx              | OpenVINO CPU plugin (optional extra)      |
"""

# Importing a module registers its backends; this order is the order they are listed and run in.
from . import torch_eager  # noqa: F401, I001
from . import ort  # noqa: F401
from . import tensorrt  # noqa: F401
from . import openvino  # noqa: F401
from ._base import Backend, Runner, backend_names, check_timing_options, get_backend, register, time_step

__all__ = ["Backend", "Runner", "backend_names", "check_timing_options", "get_backend", "register",
           "time_step"]
