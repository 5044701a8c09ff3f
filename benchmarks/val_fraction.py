"""How large a validation split does choosing the best fine-tuning phase need? (`--val-fraction`)

One fine-tuning of the default task (Lite0, Fashion-MNIST, 6,000 training images, 64 px, the default
schedule) with the largest fraction measured (0.2: 1,500 validation images carved from the training
pool; with `--limit-train` the training split is 6,000 images whatever the fraction). After every
phase each validation and each of the 10,000 test images is scored. Smaller validation splits
(0.05 -> 316 images, 0.1 -> 667) are then drawn from the 1,500 by bootstrap, many times, and for
each fraction we report how often the phase chosen on validation is the phase that is best on the
full test split, the test accuracy lost by the choice (regret), and how far the validation estimate
of the chosen phase lies from its test accuracy.

    nice -n 10 .venv/bin/python benchmarks/val_fraction.py            # ~15-30 min on 2 busy cores
    .venv/bin/python benchmarks/val_fraction.py --quick               # 1,000 images, 32 px: a smoke run

Results: benchmarks/results/val_fraction.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from fa_compress.data import load_dataset, make_loader
from fa_compress.gates import insert_gates
from fa_compress.models import build_model, get_head, get_spec
from fa_compress.train import TrainConfig
from fa_compress.train.distributed import Context
from fa_compress.train.evaluate import evaluate_detailed
from fa_compress.train.loop import finetune
from fa_compress.train.progress import phase_bar

from ._common import RESULTS  # noqa: E402  (the suite runner points it elsewhere)
FRACTIONS = (0.05, 0.1, 0.2)
POOL_FRACTION = max(FRACTIONS)


def score_every_phase(args: argparse.Namespace) -> dict:
    """Fine-tune once; per phase, which validation and test images the model got right."""
    spec = get_spec(args.arch)
    bundle = load_dataset("fashion-mnist", img_size=args.img_size, normalization=spec.normalization,
                          limit_train=args.limit_train, limit_test=args.limit_test, seed=args.seed,
                          val_fraction=POOL_FRACTION)
    torch.manual_seed(args.seed)
    model = build_model(args.arch, num_classes=bundle.num_classes, weights="imagenet")
    insert_gates(model)
    ctx = Context(torch.device("cpu"))
    cfg = TrainConfig(seed=args.seed)
    loaders = {name: make_loader(getattr(bundle, name), 128, shuffle=False) for name in ("val", "test")}
    phases: list[dict] = []

    def after_phase(m, result) -> None:  # without a validation loader every phase counts as "best"
        t0 = time.perf_counter()
        val = evaluate_detailed(m, loaders["val"], ctx, cfg)
        val_s = time.perf_counter() - t0
        test = evaluate_detailed(m, loaders["test"], ctx, cfg)
        phases.append({"phase": result.phase, "val_correct": val.correct.tolist(), "test_correct": test.correct.tolist(),
                       "val_acc": val.accuracy.value, "test_acc": test.accuracy.value, "val_eval_s": val_s})
        print(f"phase {result.index + 1} {result.phase}: val {val.accuracy.format()}  test {test.accuracy.format()}",
              flush=True)

    t0 = time.perf_counter()
    with phase_bar(False) as bar:
        finetune(model, get_head(model, args.arch), bundle.train, None, cfg, ctx, bar, on_best=after_phase)
    return {"train_images": len(bundle.train), "val_images": len(bundle.val), "test_images": len(bundle.test),
            "val_labels": bundle.val.labels.tolist(), "phases": phases, "finetune_s": time.perf_counter() - t0}


def simulate(scored: dict, draws: int, seed: int) -> list[dict]:
    """Per fraction: choose the best phase on bootstrap validation splits of that fraction's size."""
    val = torch.tensor([p["val_correct"] for p in scored["phases"]], dtype=torch.float64)  # (P, V)
    test_acc = torch.tensor([p["test_acc"] for p in scored["phases"]])  # (P,)
    labels = torch.tensor(scored["val_labels"])  # (V,)
    best_test = int(test_acc.argmax())
    g = torch.Generator().manual_seed(seed)
    rows = []
    for fraction in FRACTIONS:
        per_class = {int(c): round(fraction / (1 - fraction) * scored["train_images"] / len(labels.unique()))
                     for c in labels.unique()}
        chosen, gaps = [], []
        for _ in range(draws):
            idx = torch.cat([torch.nonzero(labels == c).flatten()[torch.randint(int((labels == c).sum()), (n,), generator=g)]
                             for c, n in per_class.items()])  # stratified bootstrap of the validation split
            accs = val[:, idx].mean(1)  # (P,)
            pick = int(accs.argmax())  # ties: the earlier phase, as finetune() does
            chosen.append(pick)
            gaps.append(float(accs[pick] - test_acc[pick]))
        chosen_t = torch.tensor(chosen)
        gaps_t = torch.tensor(gaps)
        rows.append({
            "fraction": fraction, "val_images": sum(per_class.values()),
            "p_chosen_is_test_best": float((chosen_t == best_test).double().mean()),
            "chosen_phase_counts": {str(i + 1): int((chosen_t == i).sum()) for i in range(val.shape[0])},
            "mean_test_acc_of_choice": float(test_acc[chosen_t].mean()),
            "mean_regret_points": float(100 * (test_acc[best_test] - test_acc[chosen_t]).mean()),
            "val_minus_test_points_mean": float(100 * gaps_t.mean()), "val_minus_test_points_sd": float(100 * gaps_t.std()),
            "val_eval_s_per_phase": scored["phases"][0]["val_eval_s"] * sum(per_class.values()) / scored["val_images"],
        })
    return rows


def markdown(data: dict) -> str:
    test = f"{'full ' if data.get('limit_test') is None else ''}{data['test_images']}-image test split"
    lines = [f"# Validation fraction on the default task ({data['arch']}, Fashion-MNIST, {data['train_images']} "
             f"training images, {data['img_size']} px, {test})", "",
             f"Command: `{data['command']}`; load average {data['load_avg']}; {data['draws']} bootstrap draws "
             f"per fraction from the {data['val_images']} validation images (fraction {POOL_FRACTION}).", "",
             "| phase | validation % | test % |", "|---|---:|---:|"]
    lines += [f"| {i + 1} {p['phase']} | {100 * p['val_acc']:.2f} | {100 * p['test_acc']:.2f} |"
              for i, p in enumerate(data["phases"])]
    lines += ["", "| --val-fraction | validation images | chosen = test-best phase | test acc of choice % | "
              "regret (points) | validation - test (points, mean ± sd) | validation time / phase (s) |",
              "|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['fraction']} | {r['val_images']} | {100 * r['p_chosen_is_test_best']:.0f}% | "
              f"{100 * r['mean_test_acc_of_choice']:.2f} | {r['mean_regret_points']:.2f} | "
              f"{r['val_minus_test_points_mean']:+.2f} ± {r['val_minus_test_points_sd']:.2f} | "
              f"{r['val_eval_s_per_phase']:.1f} |" for r in data["fractions"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", default="efficientnet_lite0")
    parser.add_argument("--img-size", type=int, default=64)
    parser.add_argument("--limit-train", type=int, default=6000)
    parser.add_argument("--limit-test", type=int, default=None, help="default: the full 10,000")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="1,000 training images, 32 px, 2,000 test")
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    if args.quick:
        args.img_size, args.limit_train, args.limit_test, args.tag = 32, 1000, 2000, args.tag or "quick"
    scored = score_every_phase(args)
    data = {"arch": args.arch, "img_size": args.img_size, "limit_test": args.limit_test, "command": " ".join(["benchmarks/val_fraction.py", *sys.argv[1:]]),
            "load_avg": [round(x, 2) for x in os.getloadavg()], "draws": args.draws,
            **{k: v for k, v in scored.items() if k not in ("phases", "val_labels")},
            "phases": [{k: v for k, v in p.items() if not k.endswith("_correct")} for p in scored["phases"]],
            "fractions": simulate(scored, args.draws, args.seed)}
    RESULTS.mkdir(exist_ok=True)
    stem = "val_fraction" + (f"_{args.tag}" if args.tag else "")
    (RESULTS / f"{stem}.json").write_text(json.dumps(data, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(markdown(data))
    print(markdown(data))


if __name__ == "__main__":
    main()
