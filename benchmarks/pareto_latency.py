"""onnxruntime CPU latency of the models benchmarks/prune_pareto.py kept (`--keep-models`), against dense.

Every model of a task is exported to ONNX (the library's exporter, gates folded) and timed with the
library's interleaved rounds (`fa_compress.bench.interleave`), so each ratio pruned / dense is taken
per round. Every file is loaded `--loads` times (separate onnxruntime sessions, all timed in the
same rounds), because a loaded session keeps its own speed; the 95% interval is
`fa_compress.bench.stats.session_ratio_stats`' (over loads and rounds), as `facompress bench` gives.

    .venv/bin/python benchmarks/pareto_latency.py --tasks default --rounds 40
    .venv/bin/python benchmarks/pareto_latency.py --work DIR   # other files named TASK-METHOD-TARGET.safetensors
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path


import torch  # noqa: E402

from ._common import RESULTS, command_line, load_average  # noqa: E402
from .prune_pareto import WORK  # noqa: E402

from fa_compress.bench.backends import get_backend  # noqa: E402
from fa_compress.bench.environment import environment  # noqa: E402
from fa_compress.bench.interleave import calls_per_sample, time_visits  # noqa: E402
from fa_compress.bench.stats import session_ratio_stats  # noqa: E402
from fa_compress.bench.suite import DEFAULT_SESSIONS  # noqa: E402
from fa_compress.export.onnx import export_onnx, onnx_metadata  # noqa: E402
from fa_compress.gates.insert import fold_gates, has_gates  # noqa: E402
from fa_compress.models.complexity import count_macs  # noqa: E402
from fa_compress.models.saved import load_model# noqa: E402


def _export(path: Path, folder: Path) -> tuple[Path, int]:
    model, meta = load_model(path)
    if has_gates(model):  # a run's finetuned.safetensors keeps its gates; prune_pareto.py saves them folded
        model = fold_gates(model)
    img = meta["img_size"]
    onnx_path = folder / (path.stem + ".onnx")
    norm = meta["normalization"]
    export_onnx(model.eval(), onnx_path, img_size=img,
                metadata=onnx_metadata(classes=meta["classes"], img_size=img, mean=norm["mean"], std=norm["std"]))
    return onnx_path, count_macs(model, img)


def bench_task(task: str, rounds: int, warmup: int, batches: list[int], models: list[str] | None = None,
               loads: int = DEFAULT_SESSIONS, work: Path = WORK) -> list[dict]:
    files = sorted(work.glob(f"{task}-*.safetensors"))
    if models:  # only these (METHOD-TARGET, e.g. gate-0.5), and the dense model
        files = [f for f in files if f.stem.removeprefix(f"{task}-") in models or "dense" in f.stem]
    dense = [f for f in files if f.stem == f"{task}-dense-gated"]
    if not dense:
        raise SystemExit(f"no {task}-dense-gated model under {work}; run prune_pareto.py --keep-models first")
    backend = get_backend("ort-cpu")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        exported = {f.stem: _export(f, Path(tmp)) for f in files if "dense" not in f.stem or f in dense}
        img = load_model(dense[0])[1]["img_size"]
        runners = {(name, k): backend.load(p) for name, (p, _) in exported.items() for k in range(loads)}
        dense_name = dense[0].stem
        for batch in batches:
            steps = {f"{name}#{k}": r.step_fn(batch, img) for (name, k), r in runners.items()}
            calls = calls_per_sample(steps)
            visits = time_visits(steps, warmup=warmup, rounds=rounds, calls=calls)
            best = {key: [min(v) for v in vs] for key, vs in visits.items()}  # the fastest call of each visit

            def loaded(name: str) -> list[list[float]]:
                return [best[f"{name}#{k}"] for k in range(loads)]

            for name in exported:
                if name == dense_name:
                    continue
                r = session_ratio_stats(loaded(name), loaded(dense_name))
                rows.append({"task": task, "model": name.removeprefix(f"{task}-"), "batch": batch,
                             "macs_fraction": exported[name][1] / exported[dense_name][1],
                             "latency_ratio": r.median, "low": r.low, "high": r.high, "noisy": r.noisy,
                             "rounds": r.n_rounds, "loads": loads, "calls_per_visit": calls})
                print(f"{task} b{batch} {rows[-1]['model']:24s} MACs {rows[-1]['macs_fraction']:.3f} "
                      f"latency {r.median:.3f}x dense [{r.low:.3f}, {r.high:.3f}]{' NOISY' if r.noisy else ''}",
                      flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", default="default")
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--batches", default="1,8")
    p.add_argument("--name", default="pareto_latency", help="results/<name>.{json,md}")
    p.add_argument("--models", default="", help="comma-separated METHOD-TARGET names (e.g. gate-0.5); default: all kept")
    p.add_argument("--loads", type=int, default=DEFAULT_SESSIONS,
                   help="onnxruntime sessions per file, all timed in the same rounds (1: the earlier measurement)")
    p.add_argument("--work", type=Path, default=WORK, help="the folder of model files (default: prune_pareto.py's)")
    args = p.parse_args()
    torch.set_num_threads(2)
    doc = {"command": command_line(), "environment": environment(), "load_before": load_average(), "rows": []}
    for task in args.tasks.split(","):
        doc["rows"] += bench_task(task, args.rounds, args.warmup, [int(b) for b in args.batches.split(",")],
                                  [m for m in args.models.split(",") if m] or None, args.loads, args.work)
    doc["load_after"] = load_average()
    out = RESULTS / args.name
    out.with_suffix(".json").write_text(json.dumps(doc, indent=1, default=str))
    lines = ["# onnxruntime CPU latency of the pareto models, against dense (interleaved rounds)", "",
             f"Command: `{doc['command']}`; load {doc['load_before']} -> {doc['load_after']}", "",
             f"Each file loaded {args.loads} times; {args.rounds} rounds.", "",
             "| task | model | batch | MACs of dense | latency x dense [95% interval] |", "|---|---|---:|---:|---:|"]
    for r in doc["rows"]:
        flag = " (noisy)" if r["noisy"] else ""
        lines.append(f"| {r['task']} | {r['model']} | {r['batch']} | {r['macs_fraction']:.3f} | "
                     f"{r['latency_ratio']:.3f} [{r['low']:.3f}, {r['high']:.3f}]{flag} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
