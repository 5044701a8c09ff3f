"""INT8 ONNX files of a run against the FP32 ONNX file they were made from, with `facompress bench`'s timing.

    .venv/bin/python benchmarks/int8_vs_fp32.py --run runs/<run>          # pruned.onnx vs pruned.int8-*.onnx

Only the run's pruned FP32 file and its INT8 forms are benched (ort-cpu, batch 1 and 8, the bench's
default rounds and loads), so the FP32 file is the reference of every ratio: INT8 latency / FP32
latency per round, median and 95% interval. Accuracy is the bench's own (the run's test split).
Results: benchmarks/results/int8_vs_fp32.{json,md}.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ._common import RESULTS, command_line  # noqa: E402

from fa_compress.bench.suite import DEFAULT_ROUNDS, DEFAULT_SESSIONS, Artifact, bench_artifacts  # noqa: E402
from fa_compress.run import Run# noqa: E402
from fa_compress.models.saved import load_run_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", type=Path, required=True, help="a run with pruned.onnx and its INT8 file(s)")
    p.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    p.add_argument("--sessions", type=int, default=DEFAULT_SESSIONS)
    p.add_argument("--out", type=Path, default=RESULTS / "int8_vs_fp32.json")
    args = p.parse_args()
    run = Run.open(args.run)
    fp32 = run.path / "pruned.onnx"
    int8 = sorted(run.path.glob("pruned.int8*.onnx"))
    if not fp32.is_file() or not int8:
        raise SystemExit(f"{run.path} needs pruned.onnx and pruned.int8*.onnx (`facompress export --int8`)")
    img = load_run_model(run, "pruned")[1]["img_size"]
    artifacts = [Artifact(fp32.name, "onnx", fp32)] + [Artifact(f.name, "onnx", f) for f in int8]
    report = bench_artifacts(artifacts, backends=["ort-cpu"], batch_sizes=(1, 8), img_size=img,
                             rounds=args.rounds, sessions=args.sessions)
    rows = []
    for a in report.artifacts[1:]:
        for r in a.latencies:
            q = r.ratio
            rows.append({"artifact": a.name, "batch": r.batch_size, "median_ms": r.median_ms,
                         "fp32_ms": report.artifacts[0].latency("ort-cpu", r.batch_size).median_ms,
                         "ratio": q.median, "low": q.low, "high": q.high, "noisy": q.noisy,
                         "size_ratio": round(a.size_mb / report.artifacts[0].size_mb, 4)})
    doc = {"command": command_line(), "run": str(args.run), "env": report.env.__dict__, "rows": rows}
    args.out.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    lines = ["# INT8 ONNX against the FP32 file it came from (onnxruntime CPU, interleaved)", "",
             f"Command: `{doc['command']}`; {args.rounds} rounds over {args.sessions} loads of each file; "
             f"load average {report.env.load_avg_before} before, {report.env.load_avg_after} after.", "",
             "| INT8 file | batch | INT8 ms | FP32 ms | latency × FP32 [95% interval] | file × FP32 |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        flag = " (noisy)" if r["noisy"] else ""
        lines.append(f"| {r['artifact']} | {r['batch']} | {r['median_ms']:.3f} | {r['fp32_ms']:.3f} | "
                     f"{r['ratio']:.3f} [{r['low']:.3f}, {r['high']:.3f}]{flag} | {r['size_ratio']:.2f} |")
    text = "\n".join(lines) + "\n"
    args.out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
