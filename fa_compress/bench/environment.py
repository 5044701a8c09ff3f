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


# The vector extensions INT8 (and FP32) kernels depend on; /proc/cpuinfo names them so.
VECTOR_FLAGS = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8",
                "amx_bf16")
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_WAIT_POLICY", "KMP_AFFINITY")


def cpu_flags(cpuinfo: str | None = None) -> tuple[str, ...]:
    """The CPU's vector extensions among `VECTOR_FLAGS`, sorted (empty where /proc/cpuinfo is unreadable)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return ()
    for line in cpuinfo.splitlines():
        if line.lower().startswith("flags"):
            present = set(line.split(":", 1)[1].split())
            return tuple(sorted(f for f in VECTOR_FLAGS if f in present))
    return ()


def load_average() -> tuple[float, float, float] | None:
    """The 1, 5 and 15 minute load averages, where the OS reports them."""
    try:
        one, five, fifteen = os.getloadavg()
    except (OSError, AttributeError):
        return None
    return round(one, 2), round(five, 2), round(fifteen, 2)


def cpu_memory_format(asked: str = "auto") -> str:
    """The torch-cpu memory format asked for, in one line: for `auto`, what it picks on this CPU and why
    (fa_compress/train/memory_format.py)."""
    from ..train.memory_format import check_memory_format, describe_auto_cpu

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
