"""How OpenMP threads wait between parallel regions: spin on a quiet machine, sleep on a busy one.

OpenMP's default (spin a while before sleeping) is fast while the cores are free and stalls badly
when another job holds one: a thread spins on a core the other job needs. Measured on the 2-core
Xeon here, Lite0 64 px, one `all` epoch of 512 images, channels_last (`OMP_WAIT_POLICY` /
`GOMP_SPINCOUNT`, images/s):

| setting | quiet machine | one core busy with another process |
|---|---:|---:|
| default (spin) / ACTIVE | 176-180 | 64 |
| PASSIVE (sleep at once) | 118 | 89 |
| GOMP_SPINCOUNT 2000 / 10000 | 147 / 174 | 80 / 56 |

and under load 6-19 spinning fell to 4-11 images/s. No spin count wins both, so the command line
looks at the machine once, before torch starts its threads: when other processes keep at least half
a core busy (sampled from /proc/stat over 0.1 s), OpenMP sleeps (`PASSIVE`); otherwise it keeps its
default. An explicit `OMP_WAIT_POLICY` or `GOMP_SPINCOUNT` always wins. The choice changes speed only,
never results; `facompress bench` records it in its environment (`thread_env`).
"""

from __future__ import annotations

import os
import time
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
