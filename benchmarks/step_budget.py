"""How many steps a fade needs before a deep cut: one epoch of a small task against 200 and 400 optimizer
steps (the floor `fa_compress.pruning.steps.FLOOR_STEPS` is chosen here). Validation chooses; test is reported.

    .venv/bin/python -m benchmarks.step_budget --seeds 0,1 --targets 0.35 --threads 1

EfficientNet-Lite0 (ImageNet weights) fine-tuned with gates on three look-alike Fashion-MNIST tops
(pullover, coat, shirt) at 64 px, 100 training images a class (one epoch at batch 8 is 38 steps), then
pruned by `fa_compress.pruning.chain.prune_chain` exactly as `facompress prune` does, the fade's budget
set three ways. Writes benchmarks/results/step_budget.{json,md}.
"""

from __future__ import annotations

import argparse
import statistics

from ._gate_variants import gate_row, run_variants
from ._pareto_methods import ARCH
from ._tasks import CHOOSE, Task

TASK = Task("tops3-64", (2, 4, 6), 100, 64, role=CHOOSE, varies="pullover, coat, shirt at 64 px, 300 training images")
BUDGETS = {"epoch": {"fade_epochs": 1}, "200": {"fade_steps": 200}, "400": {"fade_steps": 400}}


def _row(name: str, target: float, tuned, data, seed: int) -> dict:
    row, chain = gate_row(BUDGETS[name], target, tuned, data, seed, TASK.img_size)
    return {"budget": name, **row, "fade": {k: v for k, v in chain.fade.items() if k != "cuts"}}


def _line(r: dict) -> str:
    return (f"{r['budget']:6s} {r['fade']['steps']} steps ({r['fade']['rule']}) macs {r['macs_fraction']:.3f} "
            f"val {r['val']['value']:.2%} test {r['test']['value']:.2%} ({r['prune_wall_s']:.0f} s)")


def render(rows: list[dict], dense: dict) -> str:
    """Mean over seeds per (target, budget): steps, validation, test, wall seconds; then each seed."""
    lines = [f"# Fade budget before a deep cut ({TASK.name}, {ARCH})", "",
             "dense (gated, fine-tuned): " + ", ".join(
                 f"seed {s}: val {d['val'] * 100:.2f}%, test {d['test'] * 100:.2f}%" for s, d in sorted(dense.items())),
             "",
             "| MACs target | fade budget | seeds | steps | MACs reached | val % | test % | val drop (points) "
             "| wall s |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for target in sorted({r["target_macs"] for r in rows}, reverse=True):
        for name in BUDGETS:
            group = [r for r in rows if r["target_macs"] == target and r["budget"] == name]
            if not group:
                continue
            val = statistics.mean(r["val"]["value"] for r in group)
            drop = statistics.mean(dense[r["seed"]]["val"] - r["val"]["value"] for r in group)
            lines.append(f"| {target} | {name} | {len(group)} | {group[0]['fade']['steps']} | "
                         f"{statistics.mean(r['macs_fraction'] for r in group):.3f} | {100 * val:.2f} | "
                         f"{100 * statistics.mean(r['test']['value'] for r in group):.2f} | {100 * drop:.1f} | "
                         f"{statistics.mean(r['prune_wall_s'] for r in group):.0f} |")
    lines += ["", "| seed | MACs target | fade budget | val % | test % |", "|---:|---:|---|---:|---:|"]
    lines += [f"| {r['seed']} | {r['target_macs']} | {r['budget']} | {100 * r['val']['value']:.2f} | "
              f"{100 * r['test']['value']:.2f} |" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", default="0")
    p.add_argument("--targets", default="0.35")
    p.add_argument("--budgets", default=",".join(BUDGETS))
    p.add_argument("--test-per-class", type=int, default=500, help="test images per class (1,000 is all)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--name", default="step_budget")
    args = p.parse_args()
    run_variants(TASK, args.budgets.split(","), args, _row, _line, render)

if __name__ == "__main__":
    main()
