"""Deep cuts (0.35 and 0.25 of the dense MACs) three ways: the default chain (one planned cut, faded out),
the same with distillation from the dense model during the fade (`--distill-weight`), and the cut made
in three faded steps (`--prune-steps 3`). Validation accuracy chooses; test is reported.

    .venv/bin/python -m benchmarks.distill_gradual --seeds 0 --targets 0.35,0.25 --threads 1
    .venv/bin/python -m benchmarks.distill_gradual --merge distill_gradual,distill_gradual_seed1   # one table

EfficientNet-Lite0 (ImageNet weights) fine-tuned with gates on three Fashion-MNIST shoe classes at 64 px
(about 100 training images a class), then pruned by `fa_compress.pruning.chain.prune_chain` exactly as
`facompress prune` does. Writes benchmarks/results/distill_gradual.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics

from ._common import RESULTS
from ._gate_variants import gate_row, run_variants
from ._pareto_methods import ARCH
from ._tasks import CHOOSE, SHOES, Task

TASK = Task("shoes3-64", SHOES, 100, 64, role=CHOOSE, varies="the shoe classes at 64 px, ~300 training images")
METHODS = {
    "default": {},
    "distill": {"distill_weight": 0.5, "distill_temperature": 4.0},
    "steps3": {"prune_steps": 3},
}


def _row(method: str, target: float, tuned, data, seed: int) -> dict:
    row, chain = gate_row(METHODS[method], target, tuned, data, seed, TASK.img_size)
    return {"method": method, **row, "fade_s": chain.fade["seconds"] if chain.fade else 0.0,
            "teacher_s": chain.teacher_s, "cut_steps": [s.macs_fraction for s in chain.budget.steps]
            if method == "steps3" else None, "options": METHODS[method]}


def _line(r: dict) -> str:
    return (f"{r['method']:8s} macs {r['macs_fraction']:.3f} val {r['val']['value']:.2%} test {r['test']['value']:.2%} "
            f"({r['prune_wall_s']:.0f} s, teacher {r['teacher_s']:.1f} s)")


def render(rows: list[dict], dense: dict) -> str:
    """Mean over seeds per (target, method): validation, test, MACs reached, wall seconds."""
    seeds = ", ".join(f"seed {s}: val {d['val'] * 100:.2f}%, test {d['test'] * 100:.2f}%"
                      for s, d in sorted(dense.items()))
    lines = [f"# Deep cuts: default vs distillation vs 3 steps ({TASK.name}, {ARCH})", "",
             f"dense (gated, fine-tuned): {seeds}", "",
             "| MACs target | method | seeds | MACs reached | val % | test % | prune wall s | teacher s |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for target in sorted({r["target_macs"] for r in rows}, reverse=True):
        for method in METHODS:
            group = [r for r in rows if r["target_macs"] == target and r["method"] == method]
            if not group:
                continue

            def mean(key, sub=None):
                return statistics.mean(r[key][sub] if sub else r[key] for r in group)

            def pct(key):
                values = [100 * r[key]["value"] for r in group]
                sd = f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else ""
                return f"{statistics.mean(values):.2f}{sd}"

            lines.append(f"| {target} | {method} | {len(group)} | {mean('macs_fraction'):.3f} | {pct('val')} | "
                         f"{pct('test')} | {mean('prune_wall_s'):.0f} | {mean('teacher_s'):.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", default="0")
    p.add_argument("--targets", default="0.35,0.25")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--test-per-class", type=int, default=500, help="test images per class (1,000 is all)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--name", default="distill_gradual")
    p.add_argument("--merge", help="NAME,NAME,...: one table from these stored results (written as --name)")
    args = p.parse_args()
    if args.merge:
        stored = [json.loads((RESULTS / f"{n}.json").read_text()) for n in args.merge.split(",")]
        rows = [r for s in stored for r in s["rows"]]
        dense = {int(k): v for s in stored for k, v in s["dense"].items()}
        table = render(rows, dense)
        (RESULTS / f"{args.name}.md").write_text(table + f"\nFrom: {args.merge}\n")
        print(table)
        return
    run_variants(TASK, args.methods.split(","), args, _row, _line, render)

if __name__ == "__main__":
    main()
