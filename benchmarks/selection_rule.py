"""Which fine-tuning phase a small validation split keeps: the old rule against the new one.

Old rule: the phase with the highest validation accuracy, ties to the earliest, on `val_fraction` of the
images alone (`val_min_per_class 0`). New rule (`fa_compress.selection`, as `facompress finetune` applies
it through `train/phase_choice.py`): the newest phase unless the kept one is better on the same validation
images beyond noise (exact McNemar p < 0.05), on the split with its floor of 20 images per class
(`val_min_per_class 20`, at most a quarter of train + validation). Both rules are also applied to the
other split, to tell the split's size from the rule.

Per seed the model is fine-tuned once (the training images are the same with either split: checked), and
after each phase both validation splits and the test split are scored image by image.

    nice -n 10 .venv/bin/python -m benchmarks.selection_rule --seeds 0,1     # ~8 min a seed on 2 busy cores

Results: benchmarks/results/selection_rule.json and .md.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch

from fa_compress.accuracy import Accuracy
from fa_compress.data import load_dataset, make_loader
from fa_compress.gates import insert_gates
from fa_compress.models import build_model, get_head, get_spec
from fa_compress.train import TrainConfig, parse_schedule
from fa_compress.train.distributed import Context
from fa_compress.train.evaluate import Evaluation, evaluate_detailed
from fa_compress.train.loop import finetune
from fa_compress.train.phase_choice import first_kept, next_kept
from fa_compress.train.progress import phase_bar

from ._common import env_record, load_average, md_header, md_table, seeds_option, write_results

SPLITS = {"fraction alone": 0, "with the floor": 20}  # val_min_per_class


def old_rule(correct: list[torch.Tensor]) -> int:
    """The highest validation accuracy, ties to the earliest phase (the rule before `selection`)."""
    accs = [float(c.float().mean()) for c in correct]
    return max(range(len(accs)), key=lambda i: (accs[i], -i))


def new_rule(correct: list[torch.Tensor]) -> int:
    """`phase_choice.next_kept` over the phases, as the fine-tuning loop applies it."""
    kept = first_kept()
    for index, c in enumerate(correct):
        kept = next_kept(kept, index, Evaluation(Accuracy.of(int(c.sum()), c.numel()), c))
    return kept["index"]


def score_every_phase(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """Fine-tune once; after each phase, which images of each validation split and of test were right."""
    spec = get_spec(args.arch)
    bundles = {name: load_dataset("fashion-mnist", img_size=args.img_size, normalization=spec.normalization,
                                  limit_train=args.limit_train, limit_test=args.limit_test, seed=seed,
                                  val_min_per_class=floor) for name, floor in SPLITS.items()}
    first, other = bundles.values()
    same_train = torch.equal(first.train.labels, other.train.labels) and torch.equal(first.train.images,
                                                                                     other.train.images)
    torch.manual_seed(seed)
    model = build_model(args.arch, num_classes=first.num_classes, weights="imagenet")
    insert_gates(model)
    ctx = Context(torch.device("cpu"))
    cfg = TrainConfig(schedule=parse_schedule(args.schedule), seed=seed)
    loaders = {name: make_loader(b.val, 128, shuffle=False) for name, b in bundles.items()}
    loaders["test"] = make_loader(first.test, 128, shuffle=False)
    scored: dict[str, list[torch.Tensor]] = {name: [] for name in loaders}

    def after_phase(m, result) -> None:  # without a validation loader every phase reaches here
        for name, loader in loaders.items():
            scored[name].append(evaluate_detailed(m, loader, ctx, cfg).correct)
        print(f"seed {seed} phase {result.index + 1} {result.phase}: "
              + ", ".join(f"{n} {100 * float(c[-1].float().mean()):.2f}%" for n, c in scored.items()), flush=True)

    t0 = time.perf_counter()
    with phase_bar(False) as bar:
        finetune(model, get_head(model, args.arch), first.train, None, cfg, ctx, bar, on_best=after_phase)
    test_acc = [float(c.float().mean()) for c in scored["test"]]
    row: dict[str, Any] = {"seed": seed, "phases": list(cfg.schedule), "same_training_images": same_train,
                           "train_images": len(first.train), "test_images": len(first.test), "test_acc": test_acc,
                           "seconds": time.perf_counter() - t0, "splits": {}}
    for name in SPLITS:
        old, new = old_rule(scored[name]), new_rule(scored[name])
        row["splits"][name] = {"val_images": len(bundles[name].val),
                               "val_acc": [float(c.float().mean()) for c in scored[name]],
                               "old_rule_phase": old, "new_rule_phase": new,
                               "old_rule_test_acc": test_acc[old], "new_rule_test_acc": test_acc[new]}
    return row


def markdown(rows: list[dict[str, Any]], args: argparse.Namespace, env: dict, loads: dict) -> str:
    def pct(v: float) -> str:
        return f"{100 * v:.2f}"

    def kept(r: dict, i: int) -> str:
        return f"{i + 1} {r['phases'][i]}"

    table = md_table(
        ["seed", "validation split", "val images", "val % per phase", "test % per phase", "old rule keeps",
         "test %", "new rule keeps", "test %"],
        [[r["seed"], name, s["val_images"], " / ".join(pct(v) for v in s["val_acc"]),
          " / ".join(pct(v) for v in r["test_acc"]), kept(r, s["old_rule_phase"]), pct(s["old_rule_test_acc"]),
          kept(r, s["new_rule_phase"]), pct(s["new_rule_test_acc"])]
         for r in rows for name, s in r["splits"].items()])
    notes = [f"{args.arch} (ImageNet weights), Fashion-MNIST, {rows[0]['train_images']} training images, "
             f"{args.img_size} px, schedule {args.schedule}, test split {rows[0]['test_images']} images.",
             "Same training images under both splits: " + ", ".join(str(r["same_training_images"]) for r in rows)]
    return md_header("Which phase a small validation split keeps: old rule vs new", env, loads, notes) + "\n" + table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=seeds_option, default=[0])
    parser.add_argument("--arch", default="efficientnet_lite0")
    parser.add_argument("--img-size", type=int, default=64)
    parser.add_argument("--limit-train", type=int, default=300)
    parser.add_argument("--limit-test", type=int, default=1000)
    parser.add_argument("--schedule", default="head,gates,gates")
    parser.add_argument("--name", default="selection_rule", help="results/<name>.json and .md")
    args = parser.parse_args(argv)
    loads = {"before": load_average()}
    rows = [score_every_phase(args, seed) for seed in args.seeds]
    loads["after"] = load_average()
    env = env_record()
    write_results(args.name, {"args": vars(args), "rows": rows, "env": env, "loads": loads},
                  markdown(rows, args, env, loads))


if __name__ == "__main__":
    main()
