"""PyTorch eager backends: CPU (float32, memory format as `auto` picks it on this CPU), CUDA float32 and
CUDA float16 (channels_last)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ...errors import ConfigError
from ._base import Backend, Runner, register
from ...train.memory_format import check_memory_format
from ...train.memory_format import resolve_memory_format


class TorchRunner(Runner):
    """A private copy of the model, in eval mode, on `device` in `dtype` and memory format."""

    def __init__(self, model: nn.Module, device: str, dtype: torch.dtype, channels_last: bool) -> None:
        self.device, self.dtype = torch.device(device), dtype
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        model = copy.deepcopy(model).eval()  # the caller's model keeps its device, dtype and mode
        self.model = model.to(device=self.device, dtype=dtype, memory_format=self.memory_format)
        threads = f", threads={torch.get_num_threads()}" if self.device.type == "cpu" else ""
        self.settings = (f"torch {torch.__version__} eager, {str(dtype).removeprefix('torch.')}, "
                         f"{'channels_last' if channels_last else 'contiguous'}{threads}")

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        return images.to(device=self.device, dtype=self.dtype, memory_format=self.memory_format)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def step_fn(self, batch_size: int, img_size: int) -> Callable[[], None]:
        gen = torch.Generator().manual_seed(0)
        x = self._prepare(torch.randn(batch_size, 3, img_size, img_size, generator=gen))  # (B, 3, H, W)

        def step() -> None:
            self.model(x)
            self._sync()

        return step

    @torch.inference_mode()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(self._prepare(images)).float().cpu()  # (N, classes)


class _TorchBackend(Backend):
    artifact_kind = "torch"
    device: str
    dtype: torch.dtype = torch.float32
    channels_last: bool = False

    def load(self, artifact: Any) -> TorchRunner:
        if not isinstance(artifact, nn.Module):
            raise ConfigError(f"backend {self.name} measures a PyTorch model (nn.Module), got "
                              f"{type(artifact).__name__} {artifact!s:.80}; measure .onnx files with "
                              f"ort-cpu/ort-cuda and .engine files with tensorrt")
        self.require_available()
        return TorchRunner(artifact, self.device, self.dtype, self.channels_last)


@register
class TorchCpuBackend(_TorchBackend):
    """PyTorch eager on the CPU, float32."""

    name = "torch-cpu"
    device = "cpu"
    description = "PyTorch eager, CPU, float32"
    options = ("memory_format",)

    def __init__(self, memory_format: str = "auto") -> None:

        self.memory_format = check_memory_format(memory_format)  # auto: as training picks it, per model

    def load(self, artifact: Any) -> TorchRunner:

        if isinstance(artifact, nn.Module):
            self.channels_last = resolve_memory_format(self.memory_format, "cpu", artifact).chosen == "channels_last"
        return super().load(artifact)

    def available(self) -> tuple[bool, str]:
        return True, ""


def cuda_available() -> tuple[bool, str]:
    """(True, "") when torch sees a CUDA GPU, else why not."""
    if not torch.cuda.is_available():
        build = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        return False, f"no CUDA GPU visible to torch {torch.__version__} ({build})"
    return True, ""


@register
class TorchCudaFp32Backend(_TorchBackend):
    """PyTorch eager on the first CUDA GPU, float32, channels_last."""

    name = "torch-cuda-fp32"
    device = "cuda"
    channels_last = True
    description = "PyTorch eager, CUDA, float32, channels_last"

    def available(self) -> tuple[bool, str]:
        return cuda_available()


@register
class TorchCudaFp16Backend(_TorchBackend):
    """PyTorch eager on the first CUDA GPU with weights and inputs in float16 (`.half()`), channels_last."""

    name = "torch-cuda-fp16"
    device = "cuda"
    dtype = torch.float16
    channels_last = True
    description = "PyTorch eager, CUDA, float16 weights and activations, channels_last"

    def available(self) -> tuple[bool, str]:
        return cuda_available()
