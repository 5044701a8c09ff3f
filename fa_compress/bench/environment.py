"""The environment a benchmark ran in: what a reader needs to compare its numbers with theirs."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path

from ..machine import THREAD_ENV_VARS, cpu_flags, cpu_name, load_average
from .results import Environment
from ..train.memory_format import check_memory_format, describe_auto_cpu


def _version(*dists: str) -> str | None:
    """Installed version of the first distribution found (read from metadata, nothing imported)."""
    for dist in dists:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def cpu_memory_format(asked: str = "auto") -> str:
    """The torch-cpu memory format asked for, in one line: for `auto`, what it picks on this CPU and why
    (fa_compress/train/memory_format.py)."""

    return describe_auto_cpu() if check_memory_format(asked) == "auto" else f"{asked}: asked for, every model"


def environment(load_avg_before: tuple[float, ...] | None = None, memory_format: str = "auto") -> Environment:
    """Versions, threads, CPU flags, load and device names of this process (load after: now), and the
    torch-cpu memory format (`memory_format`: auto, channels_last or contiguous)."""
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
        cpu_flags=cpu_flags(),
        load_avg_before=load_avg_before,
        load_avg_after=load_average(),
        torch_interop_threads=torch.get_num_interop_threads(),
        thread_env={k: os.environ[k] for k in THREAD_ENV_VARS if k in os.environ},
        memory_format=cpu_memory_format(memory_format),
    )
