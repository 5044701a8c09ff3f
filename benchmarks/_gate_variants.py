"""What the gate-ranking variant benchmarks share (step_budget.py, distill_gradual.py): fine-tune one gated model
per seed, prune copies of it with the gate ranking under each variant's chain options, score every result on the
validation split (which chooses) and the test split (reported), and keep the rows as JSON while they come in."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import DataLoader

from fa_compress.accuracy import Accuracy
from fa_compress.models import get_head, get_spec
from fa_compress.pruning.budget import Budget
from fa_compress.pruning.chain import ChainOptions, ChainResult, prune_chain
from fa_compress.pruning.pruner import PruneSettings
from fa_compress.train.config import TrainConfig
from fa_compress.train.distributed import init_context

from ._common import RESULTS, command_line, load_average
from ._pareto_methods import ARCH, STARTS, fine_tune
from ._tasks import Task, load_task


@torch.inference_mode()
def accuracy(model: torch.nn.Module, dataset) -> Accuracy:
    """Top-1 of `model` on `dataset`."""
    model.eval()
    right = [model(x).argmax(1) == y for x, y in DataLoader(dataset, batch_size=256)]  # (B, classes) -> (B,)
    c = torch.cat(right)
    return Accuracy.of(int(c.sum()), c.numel())


def gate_row(options: dict[str, Any], target: float, tuned, data, seed: int,
             img_size: int, arch: str = ARCH) -> tuple[dict, ChainResult]:
    """Prune a copy of `tuned` (an `arch`) to `target` of its MACs with the gate ranking and `options`
    (ChainOptions fields): the row's common fields, and the chain's result for the variant's own."""
    work = copy.deepcopy(tuned)
    t0 = time.perf_counter()
    chain = prune_chain(work, get_head(work, arch), PruneSettings(seed=seed), torch.zeros(1, 3, img_size, img_size),
                        Budget(target_macs=target), data.train, TrainConfig(seed=seed), init_context("cpu"),
                        options=ChainOptions(**options).resolved("gate"), seed=seed)
    row = {"target_macs": target, "seed": seed, "macs_fraction": chain.budget.macs_fraction,
           "val": accuracy(chain.model, data.val).to_dict(), "test": accuracy(chain.model, data.test).to_dict(),
           "prune_wall_s": time.perf_counter() - t0}
    return row, chain


def run_variants(task: Task, variants: list[str], args, row: Callable[[str, float, Any, Any, int], dict],
                 line: Callable[[dict], str], render: Callable[[list[dict], dict], str]) -> None:
    """For each of `args.seeds`: fine-tune on `task`, then `row(variant, target, tuned, data, seed)` for every
    target and variant; results/<args.name>.json grows row by row, and .md holds `render(rows, dense)`."""
    torch.set_num_threads(args.threads)
    rows, dense, out = [], {}, RESULTS / f"{args.name}.json"
    record = {"command": command_line(), "task": task.__dict__, "load_before": load_average()}
    for seed in (int(s) for s in args.seeds.split(",")):
        data = load_task(task, get_spec(task.model).normalization, seed=seed, test_per_class=args.test_per_class)
        tuned, info = fine_tune(STARTS["gated"], data, seed, task.img_size, task.model)
        dense[seed] = {"val": accuracy(tuned, data.val).value, "test": accuracy(tuned, data.test).value,
                       "finetune_s": info["seconds"], "train_images": len(data.train), "val_images": len(data.val),
                       "test_images": len(data.test)}
        print(f"seed {seed}: dense {dense[seed]}", flush=True)
        for target in (float(t) for t in args.targets.split(",")):
            for variant in variants:
                rows.append(row(variant, target, tuned, data, seed))
                print(f"  {target} {line(rows[-1])}", flush=True)
                out.write_text(json.dumps({**record, "dense": dense, "rows": rows}, indent=1))
    record["load_after"] = load_average()
    out.write_text(json.dumps({**record, "dense": dense, "rows": rows}, indent=1))
    table = render(rows, dense)
    (RESULTS / f"{args.name}.md").write_text(table)
    print(table)
