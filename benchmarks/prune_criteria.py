"""Each importance criterion at several keep ratios, accuracy right after
pruning and after the same recovery budget, with params and MACs.

    .venv/bin/python benchmarks/prune_criteria.py --run runs/<lite0 default run>
    .venv/bin/python benchmarks/prune_criteria.py --make-run resnet18 --tag resnet18
    .venv/bin/python benchmarks/prune_criteria.py --run RUN --criteria gate,l1 --reductions mean,max,sum,prod \
        --keeps 0.6 --no-recover --tag lite0-combinations      # right after pruning only: quick
    .venv/bin/python benchmarks/prune_criteria.py --run RUN --seeds 0,1,2   # mean ± sd over three seeds

`--make-run ARCH` first fine-tunes ARCH on Fashion-MNIST (no pretrained weights exist offline for
torchvision models, so they start from `--weights none` and train `all` phases before the gates).
`--seeds`: every criterion and keep ratio is pruned and recovered once per seed, from the same
fine-tuned model; the seed draws what samples (the `random` criterion, the images gradient scores
come from, the recovery's batch order), and the table shows mean ± standard deviation over seeds.
Results: benchmarks/results/prune_criteria_<tag>.json and .md.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

from . import _common as C

import torch
from torch.utils.data import DataLoader, Subset

from fa_compress.gates import fold_gates
from fa_compress.models import get_head
from fa_compress.models.complexity import count_macs, count_params
from fa_compress.pruning.pruner import PruneSettings, prune_model, scorers
from fa_compress.pruning.recover import DEFAULT_RECOVER_LR, recover
from fa_compress.run import Run
from fa_compress.data import dataset_of_run
from fa_compress.train.config import train_config_of_run
from fa_compress.train import TrainConfig
from fa_compress.train.distributed import Context
from fa_compress.train.loop import evaluate
from fa_compress.train.progress import phase_bar
from fa_compress.models.saved import load_run_model

from ._common import RESULTS  # noqa: E402  (the suite runner points it elsewhere)
CRITERIA = ("gate", "l1", "bn", "taylor", "random")


def make_run(arch: str, limit_train: int, img_size: int, root: Path) -> Run:
    from fa_compress.train.stage import FinetuneOptions, finetune_run

    opts = FinetuneOptions(model=arch, weights="none", img_size=img_size, limit_train=limit_train,
                           limit_test=2000, run=root / f"{arch}-{int(time.time())}", show_progress=False,
                           train=TrainConfig(schedule=("all", "all", "all", "gates"), lr_all=2e-3))
    run, result = finetune_run(opts)
    print(f"fine-tuned {arch}: best test acc {result.best_test_acc:.4f} in {result.total_s:.0f} s")
    return run


def prune_and_recover(dense, arch: str, img: int, criterion: str, reduction: str, keep: float, seed: int,
                      args, bundle, recover_ds, test, ctx, cfg) -> dict:
    """One setting on one seed: accuracy right after pruning a copy of `dense`, and after the recovery."""
    model = copy.deepcopy(dense)
    settings = PruneSettings(keep=keep, importance=criterion, scope=args.scope, seed=seed, round_to=8,
                             gate_reduction=reduction if reduction != "-" else "mean")
    torch.manual_seed(seed)  # torch-pruning's `random` criterion draws from the global generator
    t0 = time.perf_counter()
    prune_model(model, get_head(model, arch), settings, example_input(img), *scorers(settings, bundle.train))
    prune_s = time.perf_counter() - t0
    acc_pruned = evaluate(model, test, ctx)
    t0 = time.perf_counter()
    with phase_bar(False) as bar:
        recover(model, get_head(model, arch), recover_ds, None, 0 if args.no_recover else 1,
                replace(cfg, seed=seed), ctx, bar)
    acc_rec = None if args.no_recover else evaluate(model, test, ctx)
    return {"acc_pruned": acc_pruned, "acc_recovered": acc_rec, "params": count_params(model),
            "macs": count_macs(model, img), "prune_s": prune_s, "recover_s": time.perf_counter() - t0}


def example_input(img: int) -> torch.Tensor:
    return torch.zeros(1, 3, img, img)  # (1, 3, H, W)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path)
    ap.add_argument("--make-run", metavar="ARCH")
    ap.add_argument("--img-size", type=int, default=32)
    ap.add_argument("--limit-train", type=int, default=6000)
    ap.add_argument("--keeps", default="0.9,0.75,0.6,0.5")
    ap.add_argument("--criteria", default=",".join(CRITERIA))
    ap.add_argument("--recover-images", type=int, default=None,
                    help="recovery budget: one epoch over N training images (default: the whole training split, "
                         "as `facompress prune` does)")
    ap.add_argument("--reductions", default="mean", help="gate group combinations to compare, e.g. mean,max,sum,prod")
    ap.add_argument("--tag", default="lite0")
    ap.add_argument("--scope", default="global", choices=("global", "layer"))
    ap.add_argument("--no-recover", action="store_true", help="accuracy right after pruning only (quick)")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds; each setting runs once per seed (default 0)")
    args = ap.parse_args()
    args.seeds = C.seeds_option(args.seeds)

    run = make_run(args.make_run, args.limit_train, args.img_size, Path("/tmp/facompress-bench-runs")) \
        if args.make_run else Run.resolve(args.run)
    dense, meta = load_run_model(run, "finetuned")
    arch, img = meta["arch"], meta["img_size"]
    bundle = dataset_of_run(run)
    test = DataLoader(bundle.test, batch_size=256)
    ctx = Context(device=torch.device("cpu"))
    cfg = train_config_of_run(run)
    n_recover = min(args.recover_images or len(bundle.train), len(bundle.train))
    recover_ds = Subset(bundle.train, list(range(n_recover)))
    acc_dense = evaluate(dense, test, ctx)
    rows = []
    variants = [(c, r) for c in args.criteria.split(",") for r in (args.reductions.split(",") if c == "gate" else ["-"])]
    for seed in args.seeds:
        for keep in (float(k) for k in args.keeps.split(",")):
            for criterion, reduction in variants:
                row = {"keep": keep, "criterion": criterion, "reduction": reduction, "seed": seed,
                       **prune_and_recover(dense, arch, img, criterion, reduction, keep, seed, args, bundle,
                                           recover_ds, test, ctx, cfg)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    out = {"run": str(run.path), "arch": arch, "img_size": img, "dense_acc": acc_dense,
           "dense_params": count_params(fold_gates(copy.deepcopy(dense))), "dense_macs": count_macs(dense, img),
           "recover_budget": "none (accuracy right after pruning only)" if args.no_recover else
                             f"1 epoch of `all` over {len(recover_ds)} training images, backbone lr "
                             f"{DEFAULT_RECOVER_LR}, BatchNorm re-estimated first",
           "command": " ".join([".venv/bin/python", "benchmarks/prune_criteria.py", *map(shlex.quote, sys.argv[1:])]),
           "scope": args.scope, "seeds": args.seeds,
           "test_images": len(bundle.test), "load_avg": os.getloadavg(), "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"prune_criteria_{args.tag}.json").write_text(json.dumps(out, indent=1))
    (RESULTS / f"prune_criteria_{args.tag}.md").write_text(to_markdown(out, args))
    print(to_markdown(out, args))


def to_markdown(out: dict, args) -> str:
    seeds = out.get("seeds", [0])  # results written before --seeds ran seed 0
    lines = [f"# Pruning criteria: {out['arch']} on Fashion-MNIST ({out['img_size']} px)", "",
             f"`{out['command']}`",
             "", f"Dense fine-tuned: {100 * out['dense_acc']:.2f}% on {out['test_images']} test images, "
             f"{out['dense_params'] / 1e6:.2f} M params, {out['dense_macs'] / 1e6:.1f} M MACs. Scope {out['scope']}, "
             "round_to 8. "
             f"Recovery budget: {out['recover_budget']}. Load average {out['load_avg'][0]:.1f}. "
             f"{C.seeds_note(seeds)}", "",
             "| keep | criterion | after prune % | after recovery % | params M | MACs M | MACs % of dense | seeds |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for (keep, criterion, reduction), runs in C.group_rows(out["rows"], ("keep", "criterion", "reduction")).items():
        name = criterion + (f" ({reduction})" if reduction != "-" else "")
        acc = {k: C.OverSeeds.of(r[k] for r in runs) for k in ("acc_pruned", "acc_recovered")}
        params, macs = (C.OverSeeds.of(r[k] for r in runs).mean for k in ("params", "macs"))
        lines.append(f"| {keep} | {name} | {C.cell(acc['acc_pruned'])} | {C.cell(acc['acc_recovered'])} | "
                     f"{params / 1e6:.2f} | {macs / 1e6:.1f} | {100 * macs / out['dense_macs']:.0f} | {len(runs)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
