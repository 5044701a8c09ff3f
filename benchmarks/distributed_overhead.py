"""Fine-tuning images/s in 1 vs 2 gloo processes, and the cost of a resnet50 checkpoint.

    .venv/bin/python benchmarks/distributed_overhead.py           # full: ~3-5 min on 2 busy cores
    .venv/bin/python benchmarks/distributed_overhead.py --quick   # calibration

Distributed: the CLI as a user types it,

    facompress finetune --model mobilenet_v2 --weights none --data fake --img-size 32 \
        --limit-train 1024 --schedule gates --quiet --run DIR [--nproc 2]

in rounds of four configurations, rotated each round so that load from other jobs hits all alike: one
process with torch's default threads (2 here) and OpenMP's default waiting, as a user runs it; one
process with OMP_NUM_THREADS=1; one process, 2 threads, OMP_WAIT_POLICY=PASSIVE; and `--nproc 2`
(torchrun, gloo on CPU; each rank runs 1 thread, fa_compress.train.distributed, and the global batch
is split between the ranks). images/s is read from DIR/run.json (stages.finetune.metrics.phases[*]
.images_per_s, the training throughput of the phase, summed over ranks). On 2 cores the 2-process
run cannot beat one process that uses both cores well: the figure measures DDP's overhead (gradient
all-reduce over gloo, a second Python process), not a speed-up.

Checkpoint cost: a resnet50 training state as fine-tuning writes it (fa_compress.run.save_train_state:
model state, AdamW state after one step, scheduler, counters; torch.save to memory, then temporary file,
fsync, rename), and the safetensors model file (fa_compress.run.save_model, with its rebuild metadata);
median of several writes each, to benchmarks/work/, the two in the library's interleaved rounds
(`fa_compress.bench.compare.compare_steps`).

Writes benchmarks/results/distributed_overhead.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from . import _common as C

C.set_threads()

from fa_compress.bench.compare import compare_steps  # noqa: E402
from fa_compress.models import build_model  # noqa: E402
from fa_compress.models.saved import model_meta, save_model# noqa: E402
from fa_compress.run import save_train_state

ROOT = Path(__file__).resolve().parent.parent
WORK = Path(__file__).resolve().parent / "work" / "distributed_overhead"
FINETUNE = ["finetune", "--model", "mobilenet_v2", "--weights", "none", "--data", "fake", "--img-size", "32",
            "--limit-train", "1024", "--schedule", "gates", "--quiet"]


def facompress_exe() -> str:
    exe = Path(sys.executable).parent / "facompress"
    return str(exe) if exe.exists() else "facompress"


# (label, processes, environment changes). The single process runs both as a user gets it (torch's
# default threads: 2 here, OpenMP's default wait policy) and with one thread, since on a loaded 2-core
# machine a 2-thread OpenMP process stalls whenever one of its threads is descheduled.
CONFIGS = [
    ("1 process, default threads (2)", 1, {}),
    ("1 process, OMP_NUM_THREADS=1", 1, {"OMP_NUM_THREADS": "1"}),
    ("1 process, 2 threads, OMP_WAIT_POLICY=PASSIVE", 1, {"OMP_WAIT_POLICY": "PASSIVE"}),
    ("2 processes (--nproc 2, 1 thread each)", 2, {}),
]


def run_finetune(label: str, nproc: int, changes: dict[str, str], run_dir: Path, base_env: dict[str, str]) -> dict:
    """One CLI fine-tuning run; its phases' images/s and the command's wall time."""
    if run_dir.exists():
        shutil.rmtree(run_dir)
    argv = [facompress_exe(), *FINETUNE, "--run", str(run_dir)] + (["--nproc", str(nproc)] if nproc > 1 else [])
    load_before = C.load_average()
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, env={**base_env, **changes}, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    manifest = json.loads((run_dir / "run.json").read_text())
    stage = manifest["stages"]["finetune"]
    phases = stage["metrics"]["phases"]
    shutil.rmtree(run_dir)
    return {"config": label, "nproc": nproc, "env": changes, "world_size": stage.get("world_size"),
            "batch_size": stage.get("options", {}).get("train", {}).get("batch_size"),
            "images_per_s": [p["images_per_s"] for p in phases],
            "phase_seconds": [p["seconds"] for p in phases], "wall_s": round(wall, 2),
            "load_before": load_before, "load_after": C.load_average()}


def checkpoint_cost(repeats: int) -> dict:
    torch.manual_seed(0)
    model = build_model("resnet50", 1000, weights="none")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=100)
    model.train()
    loss = torch.nn.functional.cross_entropy(model(torch.randn(2, 3, 64, 64)), torch.tensor([0, 1]))
    loss.backward()
    opt.step()  # AdamW state (exp_avg, exp_avg_sq per parameter) now exists
    sched.step()
    state = {"phase_index": 0, "step": 1, "model": model.state_dict(), "optimizer": opt.state_dict(),
             "scheduler": sched.state_dict(), "sums": {"loss": 0.0, "correct": 0.0, "seen": 0.0},
             "rng": {"torch": torch.get_rng_state()}}
    WORK.mkdir(parents=True, exist_ok=True)
    state_path, model_path = WORK / "train_state.pt", WORK / "model.safetensors"
    meta = model_meta(model, arch="resnet50", classes=[str(i) for i in range(1000)], img_size=224,
                      normalization={"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]})
    paths = {"train_state": state_path, "safetensors_model": model_path}
    steps = {"train_state": lambda: save_train_state(state_path, state),
             "safetensors_model": lambda: save_model(model_path, model, meta)}
    # the library's interleaved rounds, one write per visit, after one untimed round (the first write)
    timings = compare_steps(steps, warmup=1, rounds=repeats, calls=1, inference=False)
    out = {}
    for label, t in timings.items():
        median, size = t.latency.median_ms / 1e3, paths[label].stat().st_size
        out[label] = {"median_s": round(median, 3), "runs_s": [round(v, 3) for v in t.samples_s], "bytes": size,
                      "mib": round(size / 2**20, 1), "mib_per_s": round(size / 2**20 / median, 1)}
        print(f"{label}: {median:.3f} s median of {repeats}, {size / 2**20:.1f} MiB  [{C.uptime_line()}]")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one round of runs, few checkpoint writes")
    args = parser.parse_args()
    rounds = 1 if args.quick else 2
    ckpt_repeats = 3 if args.quick else 7

    loads = {"at start": C.load_average()}
    print(C.uptime_line())
    start = time.perf_counter()
    base_env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    runs = []
    for i in range(rounds):
        shift = i % len(CONFIGS)
        for label, nproc, changes in CONFIGS[shift:] + CONFIGS[:shift]:  # rotate the order each round
            r = run_finetune(label, nproc, changes, WORK / f"run-{nproc}p-{i}", base_env)
            runs.append(r)
            print(f"round {i + 1}/{rounds} {label}: {[round(v) for v in r['images_per_s']]} img/s, "
                  f"wall {r['wall_s']} s  [{C.uptime_line()}]")
    loads["after fine-tuning runs"] = C.load_average()
    ckpt = checkpoint_cost(ckpt_repeats)
    loads["at end"] = C.load_average()

    def med(values: list[float]) -> float:
        v = sorted(values)
        return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2

    ips = {label: [x for r in runs if r["config"] == label for x in r["images_per_s"]] for label, _, _ in CONFIGS}
    walls = {label: [r["wall_s"] for r in runs if r["config"] == label] for label, _, _ in CONFIGS}
    two, one_default, one_t1 = CONFIGS[3][0], CONFIGS[0][0], CONFIGS[1][0]
    # Per round: the 2-process figure over each 1-process figure of the same round.
    per_round = [{label: next(r["images_per_s"][0] for r in runs[i * len(CONFIGS):(i + 1) * len(CONFIGS)]
                              if r["config"] == label) for label, _, _ in CONFIGS} for i in range(rounds)]
    ratios = {label: [round(pr[two] / pr[label], 3) for pr in per_round] for label, _, _ in CONFIGS}
    envrec = C.env_record(finetune_env="inherited shell environment, OMP_WAIT_POLICY and OMP_NUM_THREADS unset "
                                       "unless the configuration sets them")
    batch = runs[0]["batch_size"]
    notes = [
        "Fine-tuning: `facompress " + " ".join(FINETUNE) + " --run DIR` with and without `--nproc 2` "
        f"(torchrun --standalone, gloo), {rounds} round(s) of all configurations in rotating order; mobilenet_v2, "
        f"random weights, fake data, 32 px, 1024 images, one `gates` phase; default global batch {batch} "
        f"(2 x {batch // 2 if batch else '?'} under --nproc 2); each of 2 ranks runs 1 torch thread. images/s "
        "from run.json (training phase, summed over ranks). The shell environment is "
        "inherited without OMP_WAIT_POLICY / OMP_NUM_THREADS except where a configuration sets them.",
        "On an idle 2-core machine two processes cannot beat one process that uses both cores well: against the "
        "1-thread and PASSIVE single processes the ratio shows DDP's cost (gloo all-reduce, a second Python "
        "process) and the gain from running the two cores independently. A single 2-thread process with OpenMP's "
        "default waiting stalls whenever other jobs deschedule one of its threads (on a shared machine).",
        C.EAGER_NOTE,
        "Checkpoint: resnet50 (25.6 M params) training state = model + AdamW state after one step + scheduler + "
        "counters, via fa_compress.run.save_train_state (torch.save to memory, temporary file, fsync, rename); "
        f"model file via fa_compress.run.save_model (safetensors + JSON metadata); median of {ckpt_repeats} writes "
        "each to local disk (benchmarks/work/), the two kinds alternating in the library's interleaved rounds "
        "after one untimed round.",
    ]
    md = C.md_header("Distributed overhead (1 vs 2 gloo processes) and checkpoint cost", envrec, loads, notes)
    md += "\n" + C.md_table(
        ["configuration", "images/s per run", "median images/s", "command wall s per run",
         "2-process / this (per round)"],
        [[label, ", ".join(f"{v:.0f}" for v in ips[label]), f"{med(ips[label]):.0f}",
          ", ".join(f"{v:.1f}" for v in walls[label]),
          "**" + ", ".join(f"{v:.2f}" for v in ratios[label]) + "**" if label != two else "-"]
         for label, _, _ in CONFIGS]) + "\n\n"
    md += C.md_table(
        ["checkpoint (resnet50)", "median s", "runs s", "size MiB", "MiB/s"],
        [[label, f"{c['median_s']:.3f}", ", ".join(f"{t:.2f}" for t in c["runs_s"]), f"{c['mib']:.1f}",
          f"{c['mib_per_s']:.0f}"] for label, c in ckpt.items()]) + "\n"
    data = {"what": "fine-tuning images/s, 1 vs 2 gloo processes (CLI); resnet50 checkpoint write cost",
            "command": C.command_line(), "quick": args.quick, "environment": envrec, "load_average": loads,
            "finetune_argv": FINETUNE, "configs": [{"label": l, "nproc": n, "env": e} for l, n, e in CONFIGS],
            "runs": runs,
            "summary": {"median_images_per_s": {label: med(v) for label, v in ips.items()},
                        "ratio_2p_over_1p_default": round(med(ips[two]) / med(ips[one_default]), 3),
                        "ratio_2p_over_1p_1thread": round(med(ips[two]) / med(ips[one_t1]), 3),
                        "per_round_ratios_2p_over": ratios},
            "checkpoint": ckpt, "wall_s": round(time.perf_counter() - start, 1)}
    C.write_results("distributed_overhead", data, md)


if __name__ == "__main__":
    main()
