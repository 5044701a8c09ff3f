"""Does `facompress bench` give the same ratios twice in a row on a busy machine? Sequential vs interleaved.

    python benchmarks/bench_stability.py --run runs/<run>            # ort-cpu, batch 1 and 8, the bench's rounds
    python benchmarks/bench_stability.py --run runs/<run> --quick    # 8 rounds, to calibrate

The same run is benched four times with the library call (`bench_run(..., write=False)`): twice in
the old sequential order (all runs of one artifact, then the next), then twice interleaved (every
round times each artifact once, in a shuffled order). Throughout, a CPU-heavy process started and
stopped by this script loads one core in bursts (busy 0.2-2 s, idle 0.2-2 s, seeded), on top of
whatever else the machine runs. For each artifact's latency ratio against the dense ONNX file
(latency / dense latency, < 1 is faster) the script reports median, 95% bootstrap interval and its
half-width, and per order whether the two benches agree: within 10% of each other and each inside
the other's interval. Results: benchmarks/results/bench_stability.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from fa_compress.machine import cpu_flags, load_average
from fa_compress.report.bench_stage import bench_run
from fa_compress.bench.results import BenchReport
from fa_compress.bench.suite import DEFAULT_ROUNDS, DEFAULT_SESSIONS
from fa_compress.run import Run

from ._common import RESULTS  # noqa: E402  (the suite runner points it elsewhere)
AGREE_WITHIN = 0.10  # the goal: two benches' ratios within 10% of each other
# A burst load on one core: busy for 0.2-2 s, idle for 0.2-2 s, from a seeded generator.
HOG = """
import random, time
rng = random.Random({seed})
while True:
    end = time.perf_counter() + rng.uniform(0.2, 2.0)
    while time.perf_counter() < end:
        pass
    time.sleep(rng.uniform(0.2, 2.0))
"""


@contextmanager
def cpu_hog(seed: int = 0) -> Iterator[int]:
    """A child process that loads one core in bursts while the block runs; stopped (and reaped) after."""
    proc = subprocess.Popen([sys.executable, "-c", HOG.format(seed=seed)])
    try:
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def ratios(report: BenchReport) -> dict[str, dict[str, Any]]:
    """`artifact · backend · batch` -> the ratio against the dense artifact, for every non-reference latency."""
    out = {}
    for a in report.artifacts:
        for r in a.latencies:
            if r.ratio is not None:
                q = r.ratio
                out[f"{a.name} · {r.backend} · b{r.batch_size}"] = {
                    "reference": r.reference, "median": q.median, "low": q.low, "high": q.high,
                    "half_width_pct": round(q.half_width_pct, 2), "noisy": q.noisy, "block": q.block,
                    "median_ms": r.median_ms}
    return out


def agreement(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """How two benches of one ratio compare: relative difference, and each inside the other's interval."""
    rel = abs(first["median"] - second["median"]) / ((first["median"] + second["median"]) / 2)
    inside = first["low"] <= second["median"] <= first["high"] and second["low"] <= first["median"] <= second["high"]
    return {"rel_diff_pct": round(100 * rel, 2), "each_inside_other": inside,
            "agree": rel <= AGREE_WITHIN and inside}


def bench_twice(run: Run, order: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Two benches of `run` in a row in `order`; their ratios and load averages."""
    out = []
    for i in range(2):
        before = load_average()
        t0 = time.perf_counter()
        report = bench_run(run, backends=args.backends, batch_sizes=args.batches, warmup=args.warmup,
                           rounds=args.rounds, eval_limit=args.eval_limit, order=order, seed=i, write=False,
                           sessions=args.sessions)
        out.append({"order": order, "bench": i + 1, "wall_s": round(time.perf_counter() - t0, 1),
                    "load_before": before, "load_after": load_average(), "ratios": ratios(report)})
        print(f"{order} bench {i + 1}: {out[-1]['wall_s']} s, load {before} -> {out[-1]['load_after']}", flush=True)
    return out


def markdown(data: dict[str, Any]) -> str:
    lines = ["# bench stability: the same run benched twice, sequential vs interleaved", "",
             f"Command: `{data['command']}`", "",
             f"CPU: {data['cpu']} ({os.cpu_count()} logical), vector extensions: {', '.join(data['cpu_flags'])}. "
             f"Load: one core loaded in bursts by this script, plus the machine's other work "
             f"(load average {data['load_before']} before, {data['load_after']} after).", "",
             f"{data['settings']['rounds']} rounds per bench after {data['settings']['warmup']} warm-up rounds, spread "
             f"over {data['settings'].get('sessions', 1)} loads (sessions) of each artifact. Ratio = "
             "latency / dense ONNX latency (< 1 is faster), median [95% bootstrap interval over the sessions and blocks "
             "of rounds] (half-width, rounds per block: chosen from the rounds' autocorrelation).", "",
             "| order | ratio | bench 1 | bench 2 | difference | each in other's interval | agree |",
             "|---|---|---|---|---|---|---|"]
    for order, rows in data["agreement"].items():
        for key, ag in rows.items():
            r1, r2 = (b["ratios"][key] for b in data["benches"] if b["order"] == order)
            cell = lambda r: (f"{r['median']:.3f} [{r['low']:.3f}, {r['high']:.3f}] (±{r['half_width_pct']:.1f}%, "  # noqa: E731
                              f"block {r.get('block', '?')})")
            lines.append(f"| {order} | {key} | {cell(r1)} | {cell(r2)} | {ag['rel_diff_pct']:.1f}% | "
                         f"{'yes' if ag['each_inside_other'] else 'no'} | {'yes' if ag['agree'] else 'no'} |")
    summary = {o: f"{sum(a['agree'] for a in rows.values())}/{len(rows)}" for o, rows in data["agreement"].items()}
    lines += ["", "Pairs that agree (within 10% and each inside the other's interval): "
              + ", ".join(f"{o} {s}" for o, s in summary.items()) + ".", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="a run with dense and pruned ONNX files")
    parser.add_argument("--backends", nargs="+", default=["ort-cpu"])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="timed rounds per bench (the bench's default)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=DEFAULT_SESSIONS,
                        help="independent loads of each artifact per bench (1: one load, as before)")
    parser.add_argument("--eval-limit", type=int, default=50, help="test images for accuracy (not the point here)")
    parser.add_argument("--quick", action="store_true", help="8 rounds, 2 warm-up: to calibrate")
    parser.add_argument("--out", type=Path, default=RESULTS / "bench_stability.json")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.warmup = 8, 2
    run = Run.open(args.run)
    start, load_before = time.perf_counter(), load_average()
    with cpu_hog(seed=0) as pid:
        print(f"load process {pid} started (one core, bursts)", flush=True)
        benches = bench_twice(run, "sequential", args) + bench_twice(run, "interleaved", args)
    data: dict[str, Any] = {
        "what": "the same run benched twice in a row per order, one core loaded in bursts by a child process",
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "run": str(args.run),
        "settings": {"backends": args.backends, "batches": args.batches, "rounds": args.rounds, "warmup": args.warmup,
                     "sessions": args.sessions},
        "cpu": next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                     if ln.startswith("model name")), "unknown"),
        "cpu_flags": list(cpu_flags()), "load_before": load_before, "load_after": load_average(),
        "wall_s": round(time.perf_counter() - start, 1), "benches": benches, "agreement": {}}
    for order in ("sequential", "interleaved"):
        first, second = (b["ratios"] for b in benches if b["order"] == order)
        data["agreement"][order] = {k: agreement(first[k], second[k]) for k in first if k in second}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=2) + "\n")
    text = markdown(data)
    args.out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
