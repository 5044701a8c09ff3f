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
from ._tasks import CHOOSE, SHOES, Task, load_task

TASK = Task("shoes3-64", SHOES, 100, 64, role=CHOOSE, varies="the shoe classes at 64 px, ~300 training images")
METHODS = {
    "default": {},
    "distill": {"distill_weight": 0.5, "distill_temperature": 4.0},
    "steps3": {"prune_steps": 3},
}


@torch.inference_mode()
def _accuracy(model: torch.nn.Module, dataset) -> Accuracy:
    model.eval()
    right = [model(x).argmax(1) == y for x, y in DataLoader(dataset, batch_size=256)]  # (B, classes) -> (B,)
    c = torch.cat(right)
    return Accuracy.of(int(c.sum()), c.numel())


def _row(method: str, target: float, tuned, data, seed: int) -> dict:
    options = ChainOptions(**METHODS[method]).resolved("gate")
    work = copy.deepcopy(tuned)
    t0 = time.perf_counter()
    chain = prune_chain(work, get_head(work, ARCH), PruneSettings(seed=seed), torch.zeros(1, 3, 64, 64),
                        Budget(target_macs=target), data.train, TrainConfig(seed=seed), init_context("cpu"),
                        options=options, seed=seed)
    wall_s = time.perf_counter() - t0
    return {"method": method, "target_macs": target, "seed": seed, "macs_fraction": chain.budget.macs_fraction,
            "val": _accuracy(chain.model, data.val).to_dict(), "test": _accuracy(chain.model, data.test).to_dict(),
            "prune_wall_s": wall_s, "fade_s": chain.fade["seconds"] if chain.fade else 0.0,
            "teacher_s": chain.teacher_s, "cut_steps": [s.macs_fraction for s in chain.budget.steps]
            if method == "steps3" else None, "options": METHODS[method]}


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
            for method in args.methods.split(","):
                rows.append(_row(method, target, tuned, data, seed))
                r = rows[-1]
                print(f"  {target} {method:8s} macs {r['macs_fraction']:.3f} val {r['val']['value']:.2%} "
                      f"test {r['test']['value']:.2%} ({r['prune_wall_s']:.0f} s, teacher {r['teacher_s']:.1f} s)",
                      flush=True)
                out.write_text(json.dumps({**record, "dense": dense, "rows": rows}, indent=1))
    record["load_after"] = load_average()
    out.write_text(json.dumps({**record, "dense": dense, "rows": rows}, indent=1))
    table = render(rows, dense)
    (RESULTS / f"{args.name}.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
