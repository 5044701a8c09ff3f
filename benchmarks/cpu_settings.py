"""Images/s of Lite0's `gates` and `all` phases (64 px) with facompress's old CPU settings and today's:
before = contiguous tensors, OpenMP always PASSIVE; after = channels_last (what
`--memory-format auto` picks for Lite0 here) and OpenMP's default spinning (what
`fa_compress/wait_policy.py` keeps on a quiet machine). The wait policy must be set before torch
starts, so each measurement is its own process; pairs alternate before/after so slow phases of the
machine hit both alike. Writes results/cpu_settings.{md,json}.

    .venv/bin/python benchmarks/cpu_settings.py --pairs 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from ._common import RESULTS  # noqa: E402  (the suite runner points it elsewhere)
SETTINGS = {"before": ("contiguous", "PASSIVE"), "after": ("channels_last", "ACTIVE")}
CHILD = r"""
import sys, torch
from fa_compress.data.memory import InMemoryImageDataset
from fa_compress.gates import insert_gates
from fa_compress.models import build_model, get_head, get_spec
from fa_compress.train.config import TrainConfig
from fa_compress.train.distributed import init_context
from fa_compress.train.loop import run_image_phase
from fa_compress.train.progress import phase_bar
phase, fmt, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
torch.set_num_threads(2)
g = torch.Generator().manual_seed(0)
ds = InMemoryImageDataset(torch.randint(0, 256, (n, 3, 64, 64), dtype=torch.uint8, generator=g),
                          torch.randint(0, 10, (n,), generator=g), get_spec("efficientnet_lite0").normalization, flip=True)
torch.manual_seed(0)
model = insert_gates(build_model("efficientnet_lite0", num_classes=10, weights="none"))
with phase_bar(False) as bar:
    run_image_phase(model, get_head(model, "efficientnet_lite0"), phase, 1, ds, TrainConfig(batch_size=32, memory_format=fmt), init_context("cpu"), bar)  # warm-up epoch
    print(run_image_phase(model, get_head(model, "efficientnet_lite0"), phase, 2, ds, TrainConfig(batch_size=32, memory_format=fmt), init_context("cpu"), bar)[2])
"""


def measure(phase: str, which: str, images: int) -> float:
    fmt, policy = SETTINGS[which]
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env["OMP_WAIT_POLICY"] = policy
    out = subprocess.run([sys.executable, "-c", CHILD, phase, fmt, str(images)], env=env, check=True,
                         capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--images", type=int, default=512)
    args = p.parse_args()
    rows = {}
    for phase in ("gates", "all"):
        runs = {"before": [], "after": []}
        for i in range(args.pairs):
            for which in (("before", "after") if i % 2 == 0 else ("after", "before")):
                runs[which].append(measure(phase, which, args.images))
        ratios = [a / b for a, b in zip(runs["after"], runs["before"])]
        rows[phase] = {**runs, "speedups": ratios, "median_speedup": statistics.median(ratios)}
        print(f"{phase}: before {statistics.median(runs['before']):.1f} img/s, after "
              f"{statistics.median(runs['after']):.1f} img/s, speed-up {statistics.median(ratios):.2f}x "
              f"[{min(ratios):.2f}-{max(ratios):.2f}]", flush=True)
    load = os.getloadavg()
    lines = ["# Lite0 64 px phases: old CPU settings vs today's", "",
             f"Command: `.venv/bin/python benchmarks/cpu_settings.py --pairs {args.pairs} --images {args.images}`; "
             f"{os.cpu_count()} cores, load average after {load[0]:.2f}. Before: contiguous, OMP_WAIT_POLICY=PASSIVE; "
             "after: channels_last, OpenMP spinning (the defaults on a quiet machine). Images/s of the second of "
             "two epochs in one process, pairs alternating; speed-up per pair, median [min-max].", "",
             "| phase | before img/s | after img/s | speed-up |", "|---|---:|---:|---:|"]
    for phase, r in rows.items():
        lines.append(f"| {phase} | {statistics.median(r['before']):.1f} | {statistics.median(r['after']):.1f} | "
                     f"**{r['median_speedup']:.2f}x** [{min(r['speedups']):.2f}-{max(r['speedups']):.2f}] |")
    (RESULTS / "cpu_settings.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "cpu_settings.json").write_text(json.dumps({"args": vars(args), "rows": rows, "load_after": load}, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
