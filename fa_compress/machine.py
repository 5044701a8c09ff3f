"""Facts about this machine that several layers read: the CPU's name and vector extensions (export
picks its INT8 form by them, bench records them), the load average, and how OpenMP threads wait
between parallel regions (spin on a quiet machine, sleep on a busy one; docs/decisions/openmp-wait.md).

The command line calls `choose_wait_policy()` once, before torch starts its threads: when other
processes keep at least half a core busy (sampled from /proc/stat over 0.1 s), OpenMP sleeps
(`PASSIVE`); otherwise it keeps its default. An explicit `OMP_WAIT_POLICY` or `GOMP_SPINCOUNT` always
wins. The choice changes speed only, never results. Nothing here imports torch or numpy.

>>> cpu_flags()            # ('avx2', 'avx512_vnni', ...)
>>> choose_wait_policy()   # 'PASSIVE' on a busy machine, else None
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from collections.abc import Callable

BUSY_CORES = 0.5  # other processes' CPU use, in cores, from which OpenMP sleeps instead of spinning
_CHOSEN: dict = {}  # what `choose_wait_policy` found in this process (for `wait_policy_record`)


def _cpu_times() -> tuple[int, int]:
    """(all, idle) jiffies summed over CPUs, from the first line of /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    return sum(fields), fields[3] + fields[4]  # idle + iowait


def busy_cores(window_s: float = 0.1, read: Callable[[], tuple[int, int]] = _cpu_times,
               cores: int | None = None) -> float | None:
    """Cores kept busy over `window_s` (by anything running now), or None where /proc/stat is missing."""
    try:
        total0, idle0 = read()
        time.sleep(window_s)
        total1, idle1 = read()
    except (OSError, ValueError, IndexError):
        return None
    total = total1 - total0
    if total <= 0:
        return None
    return (cores or os.cpu_count() or 1) * (1 - (idle1 - idle0) / total)


def choose_wait_policy(environ: dict | None = None, busy: Callable[[], float | None] = busy_cores) -> str | None:
    """Set `OMP_WAIT_POLICY=PASSIVE` in `environ` (default: os.environ) when the machine is busy;
    returns what it set, or None (an explicit setting, a quiet machine, or no /proc/stat)."""
    env = os.environ if environ is None else environ
    if "OMP_WAIT_POLICY" in env or "GOMP_SPINCOUNT" in env:
        return None
    load = busy()
    if environ is None:
        _CHOSEN["busy_cores"] = None if load is None else round(load, 2)
    if load is None or load < BUSY_CORES:
        return None
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    return "PASSIVE"


def wait_policy_record() -> dict:
    """What OpenMP waits with in this process and why, for run.json: the variables in force and the
    busy cores the command line saw (absent when it did not look: an explicit setting, or a library call)."""
    found = {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    policy = found["OMP_WAIT_POLICY"] or ("spin count " + found["GOMP_SPINCOUNT"] if found["GOMP_SPINCOUNT"]
                                          else "OpenMP default (spin, then sleep)")
    return {"policy": policy, **({"busy_cores_at_start": _CHOSEN["busy_cores"]} if "busy_cores" in _CHOSEN else {})}


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
