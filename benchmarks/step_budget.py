"""How many steps a fade needs before a deep cut. Budgets are one epoch (`epoch`), a number of optimizer steps
(`400`), or a multiple of the library's default budget on the task before any deep-cut growth (`x2`: twice one
epoch but at least the floor). The floor `fa_compress.pruning.steps.FLOOR_STEPS` was chosen here. Validation
chooses; test is reported.

    .venv/bin/python -m benchmarks.step_budget --seeds 0,1 --targets 0.35 --threads 1
    .venv/bin/python -m benchmarks.step_budget --task tops4 --budgets x1,x2,x3 --targets 0.35,0.25

The gated model (ImageNet weights) is fine-tuned once per seed on the task (`--task`, a zoo task from
`python -m benchmarks tasks`, or the built-in tops3-64: Lite0 on three look-alike Fashion-MNIST tops at 64 px,
100 training images a class, one epoch at batch 8 is 38 steps), then pruned by
`fa_compress.pruning.chain.prune_chain` exactly as `facompress prune` does, once per budget.
Writes benchmarks/results/<--name>.{json,md}.
"""

from __future__ import annotations

import argparse
import statistics
from functools import partial

from fa_compress.pruning.chain import ChainOptions
from fa_compress.train.distributed import init_context

from ._gate_variants import gate_row, run_variants
from ._tasks import CHOOSE, TASKS, Task

TASK = Task("tops3-64", (2, 4, 6), 100, 64, role=CHOOSE, varies="pullover, coat, shirt at 64 px, 300 training images")


def budget_options(name: str, train_images: int) -> dict:
    """ChainOptions fields for a budget name: `epoch`, a step count, or `x<F>` times the default budget."""
    if name == "epoch":
        return {"fade_epochs": 1}
    if name.startswith("x"):
        default = ChainOptions().fade_budget(train_images, init_context("cpu")).steps
        return {"fade_steps": max(1, round(float(name[1:]) * default))}
    return {"fade_steps": int(name)}


def _check_budget(name: str) -> str:
    try:
        ok = name == "epoch" or (float(name[1:]) > 0 if name.startswith("x") else int(name) > 0)
    except ValueError:
        ok = False
    if not ok:
        raise argparse.ArgumentTypeError(f"a budget is `epoch`, a step count > 0 or x<factor> (got {name!r})")
    return name


def _row(task: Task, name: str, target: float, tuned, data, seed: int) -> dict:
    row, chain = gate_row(budget_options(name, len(data.train)), target, tuned, data, seed, task.img_size,
                          task.model)
    return {"budget": name, "task": task.name, **row, "fade": {k: v for k, v in chain.fade.items() if k != "cuts"}}


def _line(r: dict) -> str:
    return (f"{r['budget']:6s} {r['fade']['steps']} steps ({r['fade']['rule']}) macs {r['macs_fraction']:.3f} "
            f"val {r['val']['value']:.2%} test {r['test']['value']:.2%} ({r['prune_wall_s']:.0f} s)")


def render(task: Task, rows: list[dict], dense: dict) -> str:
    """Mean over seeds per (target, budget): steps, validation, test, wall seconds; then each seed."""
    lines = [f"# Fade budget before a deep cut ({task.name}, {task.model}, {task.img_size} px)", "",
             "dense (gated, fine-tuned): " + ", ".join(
                 f"seed {s}: val {d['val'] * 100:.2f}%, test {d['test'] * 100:.2f}%" for s, d in sorted(dense.items())),
             "",
             "| MACs target | fade budget | seeds | steps | MACs reached | val % | test % | val drop (points) "
             "| wall s |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for target in sorted({r["target_macs"] for r in rows}, reverse=True):
        for name in dict.fromkeys(r["budget"] for r in rows):
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
    p.add_argument("--task", default=TASK.name, choices=[TASK.name, *TASKS],
                   help="a zoo task (`python -m benchmarks tasks`) or the built-in tops3-64")
    p.add_argument("--seeds", default="0")
    p.add_argument("--targets", default="0.35")
    p.add_argument("--budgets", default="epoch,200,400", type=lambda text: [_check_budget(b) for b in text.split(",")],
                   help="comma-separated: epoch, a step count, or x<factor> of the default budget")
    p.add_argument("--test-per-class", type=int, default=500, help="test images per class (1,000 is all)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--name", default="step_budget")
    args = p.parse_args()
    task = TASKS.get(args.task, TASK)
    run_variants(task, args.budgets, args, partial(_row, task), _line, partial(render, task))

if __name__ == "__main__":
    main()
