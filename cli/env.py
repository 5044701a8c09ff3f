"""`facompress env`: the versions and hardware a bug report needs."""

from __future__ import annotations


def env() -> None:
    """Print versions of facompress, torch and the optional runtimes, and the hardware."""
    import importlib.metadata as md
    import os
    import platform

    import torch

    def version(dist: str) -> str:
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            return "not installed"

    rows = {"facompress": version("facompress"), "python": platform.python_version(),
            "torch": torch.__version__, "torchvision": version("torchvision"),
            "torch-pruning": version("torch-pruning"), "onnx": version("onnx"),
            "onnxruntime": version("onnxruntime"), "onnxruntime-gpu": version("onnxruntime-gpu"),
            "tensorrt": version("tensorrt"), "cpu cores": str(os.cpu_count()),
            "torch threads": str(torch.get_num_threads()),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA GPU"}
    for key, value in rows.items():
        print(f"{key:<16} {value}")
