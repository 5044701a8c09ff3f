"""onnxruntime with its worker threads spinning between calls (its default) or not, dense vs pruned ONNX.

    .venv/bin/python benchmarks/ort_spinning.py --run runs/<run>       # finetuned.onnx vs pruned.onnx

Each setting runs in its own process (a spinning pool would otherwise slow the other setting's
sessions down), alternated `--pairs` times: off, on, off, on. Inside a process both files are timed
with the library's interleaved rounds (`fa_compress.bench.compare.compare_steps`), 2 intra-op threads.
Results: benchmarks/results/ort_spinning.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from ._common import RESULTS, command_line, load_average  # noqa: E402


def _measure(run: Path, spinning: bool, rounds: int) -> dict:
    import numpy as np
    import onnxruntime as ort

    from fa_compress.bench.compare import compare_steps

    sessions = {}
    for name in ("finetuned", "pruned"):
        options = ort.SessionOptions()
        options.intra_op_num_threads = 2
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        sessions[name] = ort.InferenceSession(str(run / f"{name}.onnx"), options, providers=["CPUExecutionProvider"])
    img = sessions["finetuned"].get_inputs()[0].shape[-1]
    out = {}
    for batch in (1, 8):
        x = np.random.default_rng(0).random((batch, 3, img, img), dtype=np.float32)
        steps = {n: (lambda s=s: s.run(None, {s.get_inputs()[0].name: x})) for n, s in sessions.items()}
        t = compare_steps(steps, warmup=5, rounds=rounds)
        q = t["pruned"].ratio_to(t["finetuned"])
        out[f"b{batch}"] = {"dense_ms": t["finetuned"].latency.median_ms, "pruned_ms": t["pruned"].latency.median_ms,
                            "ratio": q.median, "low": q.low, "high": q.high}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", type=Path, required=True, help="a run with finetuned.onnx and pruned.onnx")
    p.add_argument("--pairs", type=int, default=2)
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--child", choices=("on", "off"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(_measure(args.run, args.child == "on", args.rounds)))
        return
    doc = {"command": command_line(), "load_before": load_average(), "runs": []}
    for _ in range(args.pairs):
        for mode in ("off", "on"):
            res = subprocess.run([sys.executable, "-m", "benchmarks.ort_spinning", "--run", str(args.run), "--rounds", str(args.rounds),
                                  "--child", mode], capture_output=True, text=True, check=True,
                                 cwd=Path(__file__).resolve().parents[1])
            doc["runs"].append({"spinning": mode, **json.loads(res.stdout.strip().splitlines()[-1])})
    doc["load_after"] = load_average()
    (RESULTS / "ort_spinning.json").write_text(json.dumps(doc, indent=1) + "\n")
    lines = ["# onnxruntime spinning on vs off (2 intra-op threads, a process per setting)", "",
             f"Command: `{doc['command']}`; load {doc['load_before']} -> {doc['load_after']}", "",
             "| spinning | batch | dense ms | pruned ms | pruned × dense [95% interval] |", "|---|---:|---:|---:|---:|"]
    for r in doc["runs"]:
        for b in ("b1", "b8"):
            m = r[b]
            lines.append(f"| {r['spinning']} | {b[1:]} | {m['dense_ms']:.3f} | {m['pruned_ms']:.3f} | "
                         f"{m['ratio']:.3f} [{m['low']:.3f}, {m['high']:.3f}] |")
    for b in ("b1", "b8"):
        med = {mode: statistics.median(r[b]["dense_ms"] for r in doc["runs"] if r["spinning"] == mode)
               for mode in ("off", "on")}
        medp = {mode: statistics.median(r[b]["pruned_ms"] for r in doc["runs"] if r["spinning"] == mode)
                for mode in ("off", "on")}
        lines.append("")
        lines.append(f"Batch {b[1:]}: spinning off / on, dense {med['off'] / med['on']:.2f}x slower, "
                     f"pruned {medp['off'] / medp['on']:.2f}x slower (medians over the pairs).")
    text = "\n".join(lines) + "\n"
    (RESULTS / "ort_spinning.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
