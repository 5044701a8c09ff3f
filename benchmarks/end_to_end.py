"""The deployed file against the dense one, as a user makes them: dense FP32 ONNX vs pruned INT8 ONNX per MAC target.

One fine-tuning (`facompress finetune`, or an existing run with `--run`), then for every target a copy of that run
goes through the commands exactly as the README gives them:

    facompress prune --target-macs T      # the default ranking, fade and budget
    facompress export --model finetuned   # the dense FP32 ONNX, the baseline
    facompress export --int8              # the pruned FP32 ONNX and its INT8 file (the form this CPU runs)
    facompress bench                      # interleaved rounds over several loads, batch 1 and 8, 95% intervals

(at 0.5 with the default options that is `make demo`'s chain), and the table gives, per target: MACs, top-1 of
the dense model and of the pruned INT8 file on the run's test images (with McNemar's test against dense), and the
INT8 file's latency as a fraction of the dense FP32 ONNX's at each batch on onnxruntime CPU (median [95% interval]
of the per-round ratios, as `facompress bench` computes them).

    python -m benchmarks end-to-end --config benchmarks/configs/end-to-end.toml
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ._common import RESULTS, ROOT, command_line, load_average, revision

from fa_compress.bench.environment import environment
from fa_compress.export import to_record
from fa_compress.export.pipeline import INT8_SUFFIX
from fa_compress.report import load_report

DENSE_ONNX, INT8 = "finetuned.onnx", f"pruned.{INT8_SUFFIX['ort-cpu']}.onnx"  # the names `facompress export` writes


def facompress(*args: str, log: Path) -> None:
    """One CLI command, as a user runs it (the package's module entry point; output appended to `log`)."""
    with open(log, "a") as f:
        f.write(f"\n$ facompress {' '.join(args)}\n")
        f.flush()
        done = subprocess.run([sys.executable, "-m", "fa_compress.cli.app", *args], stdout=f, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = "\n  ".join(log.read_text().splitlines()[-15:])
        raise SystemExit(f"`facompress {' '.join(args)}` exited {done.returncode}; the end of {log}:\n  {tail}")


def _ratio(artifact: Any, batch: int) -> dict[str, Any] | None:
    lat = artifact.latency("ort-cpu", batch)
    if lat is None or lat.ratio is None:
        return None
    r = lat.ratio
    return {"median": r.median, "low": r.low, "high": r.high, "noisy": r.noisy, "rounds": r.n_rounds,
            "sessions": r.sessions, "ms": lat.median_ms}


def row(run: Path, target: float, seconds: float) -> dict[str, Any]:
    """What the bench measured in one target's run: the dense FP32 ONNX against the pruned INT8 file."""
    report = load_report(run)
    dense, int8 = report.artifact(DENSE_ONNX), report.artifact(INT8)
    if dense is None or int8 is None:
        raise SystemExit(f"{run}: the bench report has no {DENSE_ONNX} or no {INT8}")
    vs = next((d for d in int8.accuracy_vs if d.reference in (DENSE_ONNX, "finetuned")), None)
    return {
        "target_macs": target, "macs_dense": dense.macs, "macs_pruned": int8.macs,
        "macs_fraction": int8.macs / dense.macs if dense.macs and int8.macs else None,
        "size_mb": {"dense": dense.size_mb, "int8": int8.size_mb},
        "top1": {"dense": dense.top1_pct, "int8": int8.top1_pct, "n": int8.eval_images,
                 "int8_low": int8.top1_low_pct, "int8_high": int8.top1_high_pct},
        "vs_dense": None if vs is None else {"reference": vs.reference, "points": vs.diff_points,
                                             "p_value": vs.p_value, "within_noise": vs.within_noise},
        "ratio": {str(b): _ratio(int8, b) for b in report.settings.batch_sizes} if report.settings else {},
        "chain_s": round(seconds, 1), "run": str(run),
    }


def _cell(r: dict[str, Any] | None) -> str:
    if r is None:
        return "-"
    speedup = f"{1 / r['median']:.2f}× faster" if r["median"] > 0 else ""
    return f"{r['median']:.3f} [{r['low']:.3f}, {r['high']:.3f}] ({speedup}{', noisy' if r['noisy'] else ''})"


def render(doc: dict[str, Any]) -> str:
    rows = doc["rows"]
    batches = sorted({b for r in rows for b in r["ratio"]}, key=int)
    lines = ["# Deployed: the pruned INT8 ONNX against the dense FP32 ONNX, per MAC target", "",
             f"Command: `{doc['command']}`", "",
             f"Fine-tuning: `{doc['finetune']}`. Each target: `facompress prune --target-macs T`, `export --model "
             "finetuned`, `export --int8`, `bench` on a copy of that run. Latency: the INT8 file / "
             "the dense FP32 ONNX, per interleaved round, median [95% interval] over "
             f"`facompress bench {doc['bench_args']}`'s rounds; top-1 on the run's test images, Δ against dense with McNemar's p.", "",
             "| target MACs | MACs reached | INT8 file MB (dense FP32 MB) | dense top-1 % | INT8 top-1 % [95%] | "
             "Δ points (p) | " + " | ".join(f"latency × dense, batch {b}" for b in batches) + " | chain s |",
             "|---:|---:|---:|---:|---:|---:|" + "---:|" * len(batches) + "---:|"]
    for r in sorted(rows, key=lambda r: -r["target_macs"]):  # shallowest cut first, whatever order they ran in
        t, vs = r["top1"], r["vs_dense"]
        delta = "-" if vs is None else f"{vs['points']:+.2f} (p={vs['p_value']:.2g})"
        lines.append(f"| {r['target_macs']} | {r['macs_fraction']:.3f} | {r['size_mb']['int8']:.2f} "
                     f"({r['size_mb']['dense']:.2f}) | {t['dense']:.2f} | {t['int8']:.2f} [{t['int8_low']:.2f}, "
                     f"{t['int8_high']:.2f}] | {delta} | " + " | ".join(_cell(r["ratio"].get(b)) for b in batches)
                     + f" | {r['chain_s']:.0f} |")
    lines += ["", f"Load average before / after: {doc['load_before']} / {doc.get('load_after')}.", ""]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--targets", default="0.75,0.5,0.35,0.25", help="fractions of the dense MACs, comma-separated")
    p.add_argument("--run", type=Path, default=None,
                   help="a run `facompress finetune` made (default: fine-tune one with --finetune-args)")
    p.add_argument("--finetune-args", default="--img-size 64 --limit-train 6000 --limit-test 2000",
                   help="options of the fine-tuning this suite runs without --run (default: make demo's)")
    p.add_argument("--prune-args", default="", help="extra options of every `facompress prune`")
    p.add_argument("--bench-args", default="", help="options of every `facompress bench` (default: its own)")
    p.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work" / "end-to-end",
                   help="folder for the runs (emptied first)")
    p.add_argument("--name", default="end_to_end", help="results/<name>.{json,md}")
    args = p.parse_args()
    try:
        targets = [float(t) for t in args.targets.split(",") if t.strip()]
    except ValueError:
        p.error(f"--targets must be numbers in (0, 1) (got {args.targets!r})")
    if not targets or not all(0 < t < 1 for t in targets):
        p.error(f"--targets must be numbers in (0, 1) (got {args.targets!r})")
    if args.run is not None and not (args.run / "run.json").is_file():
        p.error(f"--run {args.run}: not a facompress run folder (no run.json)")

    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    log = args.work / "commands.log"
    doc: dict[str, Any] = {"command": command_line(), **revision(), "environment": to_record(environment()),
                           "load_before": load_average(), "rows": [], "bench_args": args.bench_args}
    base = args.run
    if base is None:
        base = args.work / "finetuned"
        t0 = time.perf_counter()
        facompress("finetune", *args.finetune_args.split(), "--run", str(base), "--quiet", log=log)
        doc["finetune"] = f"facompress finetune {args.finetune_args} ({time.perf_counter() - t0:.0f} s)"
    else:
        doc["finetune"] = f"the run {base}"
    out = RESULTS / f"{args.name}.json"
    for target in targets:
        run = args.work / f"macs-{target}"
        shutil.copytree(base, run)
        t0 = time.perf_counter()
        facompress("prune", "--target-macs", str(target), *args.prune_args.split(), "--run", str(run), "--quiet", log=log)
        facompress("export", "--model", "finetuned", "--run", str(run), log=log)
        facompress("export", "--int8", "--run", str(run), log=log)
        facompress("bench", *args.bench_args.split(), "--run", str(run), "--quiet", log=log)
        doc["rows"].append(row(run, target, time.perf_counter() - t0))
        doc["load_after"] = load_average()
        out.write_text(json.dumps(doc, indent=1, default=str))
        print(f"target {target}: {json.dumps(doc['rows'][-1]['ratio'])}", flush=True)
    markdown = render(doc)
    out.with_suffix(".md").write_text(markdown + "\n")
    print(markdown)


if __name__ == "__main__":
    main()
