"""The environment a benchmark ran in: what a reader needs to compare its numbers with theirs."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path

from .results import Environment


def _version(*dists: str) -> str | None:
    """Installed version of the first distribution found (read from metadata, nothing imported)."""
    for dist in dists:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def cpu_name() -> str:
    """The CPU model name from /proc/cpuinfo, else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def environment() -> Environment:
    """Versions, threads and device names of this process."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return Environment(
        python=platform.python_version(),
        platform=f"{sys.platform}-{platform.machine()}",
        torch=torch.__version__,
        onnxruntime=_version("onnxruntime", "onnxruntime-gpu"),
        torch_pruning=_version("torch-pruning", "torch_pruning"),  # tp.__version__ misreports 1.6.1
        torch_threads=torch.get_num_threads(),
        cpu_name=cpu_name(),
        cpu_count=os.cpu_count() or 1,
        gpu_name=gpu,
        cuda=torch.version.cuda if gpu else None,
    )
