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
import copy
import json
import statistics
import time

import torch
from torch.utils.data import DataLoader

from fa_compress.accuracy import Accuracy
from fa_compress.models import get_head, get_spec
from fa_compress.pruning.budget import Budget
from fa_compress.pruning.chain import ChainOptions, prune_chain
from fa_compress.pruning.pruner import PruneSettings
from fa_compress.train.config import TrainConfig
from fa_compress.train.distributed import init_context

from ._common import RESULTS, command_line, load_average
from ._pareto_methods import ARCH, STARTS, fine_tune
from ._tasks import CHOOSE, Task, load_task

TASK = Task("tops3-64", (2, 4, 6), 100, 64, role=CHOOSE, varies="pullover, coat, shirt at 64 px, 300 training images")
BUDGETS = {"epoch": {"fade_epochs": 1}, "200": {"fade_steps": 200}, "400": {"fade_steps": 400}}


@torch.inference_mode()
def _accuracy(model: torch.nn.Module, dataset) -> Accuracy:
    model.eval()
    right = [model(x).argmax(1) == y for x, y in DataLoader(dataset, batch_size=256)]  # (B, classes) -> (B,)
    c = torch.cat(right)
    return Accuracy.of(int(c.sum()), c.numel())


def _row(name: str, target: float, tuned, data, seed: int) -> dict:
    options = ChainOptions(**BUDGETS[name]).resolved("gate")
    work = copy.deepcopy(tuned)
    t0 = time.perf_counter()
    chain = prune_chain(work, get_head(work, ARCH), PruneSettings(seed=seed), torch.zeros(1, 3, 64, 64),
                        Budget(target_macs=target), data.train, TrainConfig(seed=seed), init_context("cpu"),
                        options=options, seed=seed)
    return {"budget": name, "target_macs": target, "seed": seed, "macs_fraction": chain.budget.macs_fraction,
            "fade": {k: v for k, v in chain.fade.items() if k != "cuts"},
            "val": _accuracy(chain.model, data.val).to_dict(), "test": _accuracy(chain.model, data.test).to_dict(),
            "prune_wall_s": time.perf_counter() - t0}


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
    torch.set_num_threads(args.threads)
    rows, dense, out = [], {}, RESULTS / f"{args.name}.json"
    record = {"command": command_line(), "task": TASK.__dict__, "load_before": load_average()}
    for seed in (int(s) for s in args.seeds.split(",")):
        data = load_task(TASK, get_spec(ARCH).normalization, seed=seed, test_per_class=args.test_per_class)
        tuned, info = fine_tune(STARTS["gated"], data, seed, TASK.img_size)
        dense[seed] = {"val": _accuracy(tuned, data.val).value, "test": _accuracy(tuned, data.test).value,
                       "finetune_s": info["seconds"], "train_images": len(data.train), "val_images": len(data.val),
                       "test_images": len(data.test)}
        print(f"seed {seed}: dense {dense[seed]}", flush=True)
        for target in (float(t) for t in args.targets.split(",")):
            for name in args.budgets.split(","):
                rows.append(_row(name, target, tuned, data, seed))
                r = rows[-1]
                print(f"  {target} {name:6s} {r['fade']['steps']} steps ({r['fade']['rule']}) macs "
                      f"{r['macs_fraction']:.3f} val {r['val']['value']:.2%} test {r['test']['value']:.2%} "
                      f"({r['prune_wall_s']:.0f} s)", flush=True)
                out.write_text(json.dumps({**record, "dense": dense, "rows": rows}, indent=1))
    record["load_after"] = load_average()
    out.write_text(json.dumps({**record, "dense": dense, "rows": rows}, indent=1))
    table = render(rows, dense)
    (RESULTS / f"{args.name}.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
