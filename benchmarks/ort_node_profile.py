"""Where a pruned model's onnxruntime time goes: per-node profile of dense against pruned.

The pareto models (`prune_pareto.py --keep-models`) are exported to ONNX and run with onnxruntime's
own profiler (`SessionOptions.enable_profiling`) for `--rounds` calls at each batch and thread
count. Per node (after graph optimisation: a Conv with its fused activation is one node) the median
time over calls is kept; nodes are grouped by kind (1x1 conv, depthwise conv, the stem, the rest),
and what the session spends outside nodes is its own row. The table says, per group, the dense and
pruned time and their ratio, so a ratio that stays near 1 (a cost that does not shrink with the
channels) shows where the pruned model's latency misses its MAC ratio.

    .venv/bin/python benchmarks/ort_node_profile.py --task default --model gate-0.5 --threads 1,2

Results: benchmarks/results/ort_node_profile.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from collections import defaultdict
from pathlib import Path


import numpy as np  # noqa: E402

from ._common import RESULTS, command_line, load_average, ort_session  # noqa: E402
from .pareto_latency import _export  # noqa: E402
from .prune_pareto import WORK  # noqa: E402


def _kind(event: dict) -> str:
    """A profiled node's kind, from its op and its weight's shape (Conv: [out, in / groups, k, k])."""
    op = event["args"].get("op_name", "other")
    if op not in ("Conv", "FusedConv"):
        return op
    shapes = event["args"].get("input_type_shape", [])
    weight = next(iter(shapes[1].values())) if len(shapes) > 1 else []
    if len(weight) != 4:
        return "conv"
    if weight[1] == 1 and weight[0] > 1:
        return "conv depthwise"
    return "conv 1x1" if weight[2:] == [1, 1] else "conv kxk (stem)"


def profile(onnx_path: Path, batch: int, img: int, threads: int, rounds: int, warmup: int) -> dict:
    """Median per-node time (µs) over the last `rounds` of `warmup + rounds` profiled calls, the
    median whole call, and each node's kind. The settings are `_common.ort_session`'s plus profiling."""
    with tempfile.TemporaryDirectory() as tmp:
        session = ort_session(onnx_path, threads, profile_prefix=str(Path(tmp) / "prof"))
        name = session.get_inputs()[0].name
        x = np.random.default_rng(0).standard_normal((batch, 3, img, img), dtype=np.float32)
        for _ in range(warmup + rounds):
            session.run(None, {name: x})
        trace = json.loads(Path(session.end_profiling()).read_text())
    calls, nodes = [], defaultdict(list)
    runs = [e for e in trace if e.get("cat") == "Session" and e.get("name") == "model_run"]
    for run in runs[-rounds:]:  # the profile covers the warm-up calls too
        t0, t1 = run["ts"], run["ts"] + run["dur"]
        calls.append(run["dur"])
        for e in trace:
            if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and t0 <= e["ts"] <= t1:
                nodes[e["name"].removesuffix("_kernel_time")].append(e["dur"])
    events = {e["name"].removesuffix("_kernel_time"): e
              for e in trace if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")}
    return {"call_us": statistics.median(calls), "nodes": {n: statistics.median(v) for n, v in nodes.items()},
            "kinds": {n: _kind(e) for n, e in events.items()}, "macs": {n: _macs(e) for n, e in events.items()}}


def _macs(event: dict) -> int:
    """A Conv node's multiply-accumulates (output elements x weight fan-in); 0 for other ops."""
    shapes = event["args"].get("input_type_shape", [])
    out = event["args"].get("output_type_shape", [])
    if event["args"].get("op_name") not in ("Conv", "FusedConv") or len(shapes) < 2 or not out:
        return 0
    weight, output = next(iter(shapes[1].values())), next(iter(out[0].values()))
    return int(np.prod(output)) * int(np.prod(weight[1:]))


def grouped(prof: dict) -> dict[str, float]:
    """Per kind: summed median node time (µs) and, as `macs <kind>`, MACs; `outside nodes`: the call
    less its nodes."""
    out: dict[str, float] = defaultdict(float)
    for node, us in prof["nodes"].items():
        out[prof["kinds"][node]] += us
        out[f"macs {prof['kinds'][node]}"] += prof["macs"][node]
    out["outside nodes"] = prof["call_us"] - sum(prof["nodes"].values())
    out["whole call"] = prof["call_us"]
    out["nodes (count)"] = len(prof["nodes"])
    return dict(out)


def render(doc: dict) -> str:
    lines = ["# onnxruntime per-node profile: dense against pruned", "",
             f"Command: `{doc['command']}`; {doc['settings']}; load {doc['load_before']} -> {doc['load_after']}", "",
             f"Models: `{doc['task']}-dense-gated` and `{doc['task']}-{doc['model']}` "
             f"({doc['macs_fraction']:.3f} of dense MACs). Median over {doc['rounds']} profiled calls per node; "
             "the profiler adds its own cost to every node, so the whole call runs slower than in `facompress "
             "bench` and the ratios, not the times, are the result. A node's MACs come from the shapes the "
             "profiler records, which are onnxruntime's blocked (NCHWc) shapes: channels padded to the kernels' "
             "block (16 with AVX-512), so a MAC ratio above the model's shows padding the kernels compute.", "",
             "| threads | batch | part | dense µs | pruned µs | time pruned / dense | MACs pruned / dense "
             "| share of dense call |",
             "|---:|---:|---|---:|---:|---:|---:|---:|"]
    for r in doc["rows"]:
        d, p = r["dense"], r["pruned"]
        parts = [k for k in d if not k.startswith("macs ")]
        for kind in sorted(parts, key=lambda k: (k in ("whole call", "nodes (count)"), -d[k])):
            if kind == "nodes (count)":
                lines.append(f"| {r['threads']} | {r['batch']} | nodes (count) | {d[kind]:.0f} | {p.get(kind, 0):.0f} "
                             "| | | |")
                continue
            ratio = p.get(kind, 0.0) / d[kind] if d[kind] else float("nan")
            dm = d.get(f"macs {kind}", 0) if kind != "whole call" else sum(v for k, v in d.items() if k.startswith("macs "))
            pm = p.get(f"macs {kind}", 0) if kind != "whole call" else sum(v for k, v in p.items() if k.startswith("macs "))
            macs = f"{pm / dm:.3f}" if dm else ""
            lines.append(f"| {r['threads']} | {r['batch']} | {kind} | {d[kind]:.0f} | {p.get(kind, 0.0):.0f} | "
                         f"{ratio:.3f} | {macs} | {d[kind] / d['whole call']:.1%} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--task", default="default")
    p.add_argument("--model", default="gate-0.5", help="METHOD-TARGET of a kept pareto model")
    p.add_argument("--batches", default="1,8")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--rounds", type=int, default=50)
    p.add_argument("--warmup", type=int, default=20, help="calls before the --rounds that are kept")
    p.add_argument("--name", default="ort_node_profile")
    p.add_argument("--render", action="store_true", help="only rebuild results/<name>.md from its JSON")
    args = p.parse_args()
    if args.render:
        doc = json.loads((RESULTS / f"{args.name}.json").read_text())
        (RESULTS / f"{args.name}.md").write_text(render(doc))
        print(render(doc))
        return
    dense_file, pruned_file = WORK / f"{args.task}-dense-gated.safetensors", WORK / f"{args.task}-{args.model}.safetensors"
    for f in (dense_file, pruned_file):
        if not f.exists():
            raise SystemExit(f"no {f}; run prune_pareto.py --keep-models first")
    import onnxruntime as ort

    settings = (f"onnxruntime {ort.__version__} CPUExecutionProvider, inter_op_threads=1, ORT_ENABLE_ALL, "
                "allow_spinning=1, intra-op threads per row")
    doc = {"command": command_line(), "settings": settings, "load_before": load_average(),
           "task": args.task, "model": args.model, "rounds": args.rounds, "rows": []}
    from fa_compress.models.saved import load_model

    img = load_model(dense_file)[1]["img_size"]
    with tempfile.TemporaryDirectory() as tmp:
        (dense_onnx, dense_macs), (pruned_onnx, pruned_macs) = (_export(f, Path(tmp)) for f in (dense_file, pruned_file))
        doc["macs_fraction"] = pruned_macs / dense_macs
        for threads in (int(t) for t in args.threads.split(",")):
            for batch in (int(b) for b in args.batches.split(",")):
                d = grouped(profile(dense_onnx, batch, img, threads, args.rounds, args.warmup))
                q = grouped(profile(pruned_onnx, batch, img, threads, args.rounds, args.warmup))
                doc["rows"].append({"threads": threads, "batch": batch, "dense": d, "pruned": q})
                print(f"threads {threads} batch {batch}: whole call {q['whole call'] / d['whole call']:.3f}x "
                      f"dense", flush=True)
    doc["load_after"] = load_average()
    (RESULTS / f"{args.name}.json").write_text(json.dumps(doc, indent=1))  # a name may hold dots (gate-0.5)
    (RESULTS / f"{args.name}.md").write_text(render(doc))
    print(render(doc))


if __name__ == "__main__":
    main()
