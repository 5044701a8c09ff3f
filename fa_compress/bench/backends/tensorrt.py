"""TensorRT backend: runs a serialized `.engine` with TensorRT's runtime (10.x and 11.x tensor API).

`tensorrt` is imported only inside these functions; buffers are torch CUDA tensors, so no pycuda.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..._deps import available as dep_available
from ..._deps import require
from ...errors import ConfigError
from ._base import Backend, Runner, check_artifact_is_path, register
from .torch_eager import cuda_available


def _torch_dtype(trt: Any, dtype: Any) -> torch.dtype:
    table = {trt.DataType.FLOAT: torch.float32, trt.DataType.HALF: torch.float16,
             trt.DataType.INT32: torch.int32, trt.DataType.INT8: torch.int8, trt.DataType.BOOL: torch.bool}
    if dtype not in table:
        raise ConfigError(f"engine tensor type {dtype} is not supported by the tensorrt backend")
    return table[dtype]


class TrtRunner(Runner):
    """A deserialized engine with one execution context, one image input and one output."""

    def __init__(self, path: Path) -> None:
        trt = require("tensorrt", "the tensorrt backend")
        self.trt = trt
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        self.engine = self.runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise ConfigError(f"{path} is not an engine this TensorRT {trt.__version__} and GPU can load; "
                              f"rebuild it here with `facompress export --trt`")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        if len(inputs) != 1 or len(outputs) != 1:
            raise ConfigError(f"{path.name} has inputs {inputs} and outputs {outputs}; expected one of each")
        self.input_name, self.output_name = inputs[0], outputs[0]
        self.settings = f"TensorRT {trt.__version__}, engine precision as built"

    def _bind(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Set the input shape and tensor addresses; returns (input, output) device tensors."""
        engine, ctx = self.engine, self.context
        x = images.to("cuda", _torch_dtype(self.trt, engine.get_tensor_dtype(self.input_name))).contiguous()
        ctx.set_input_shape(self.input_name, tuple(x.shape))
        out_shape = tuple(ctx.get_tensor_shape(self.output_name))
        y = torch.empty(out_shape, device="cuda",
                        dtype=_torch_dtype(self.trt, engine.get_tensor_dtype(self.output_name)))
        ctx.set_tensor_address(self.input_name, x.data_ptr())
        ctx.set_tensor_address(self.output_name, y.data_ptr())
        return x, y

    def _execute(self) -> None:
        stream = torch.cuda.current_stream()
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise ConfigError("TensorRT execution failed; see the TensorRT log above")
        stream.synchronize()

    def step_fn(self, batch_size: int, img_size: int) -> Callable[[], None]:
        gen = torch.Generator().manual_seed(0)
        self._buffers = self._bind(torch.randn(batch_size, 3, img_size, img_size, generator=gen))
        return self._execute

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        _, y = self._bind(images)  # (N, 3, H, W) -> (N, classes)
        self._execute()
        return y.float().cpu()


@register
class TensorRTBackend(Backend):
    """A TensorRT engine on the first CUDA GPU."""

    name = "tensorrt"
    artifact_kind = "tensorrt"
    description = "TensorRT engine, CUDA"

    def available(self) -> tuple[bool, str]:
        if not dep_available("tensorrt"):
            return False, ("tensorrt is not importable here (install tensorrt>=10,<12 on a Linux machine "
                           "with an NVIDIA GPU; PyPI's tensorrt-cu* libs need NVIDIA's package index)")
        return cuda_available()

    def load(self, artifact: Any) -> TrtRunner:
        path = check_artifact_is_path(self, artifact, (".engine", ".plan"))
        self.require_available()
        return TrtRunner(path)
