"""Does fine-tuning on small data take too few optimizer steps? One epoch per phase against a floor of 50, 100
and 200 steps per phase (`TrainConfig.min_phase_steps`), on small variants of the `choose` tasks (where the
default is chosen) and on the few-image held-out tasks (reported only).

    python -m benchmarks finetune-steps --config benchmarks/configs/finetune-steps.toml

Every run is the library's own fine-tuning (`fa_compress.finetune`, `head,gates,gates,gates`, batch 32, an
EfficientNet-Lite with its ImageNet weights): the validation split keeps the phase, as in `facompress finetune`.
Nothing is chosen on the test split. A validation split of a few-image task is 10-33 images, too few to choose
a default on, so each calibration task also scores a larger `dev` split: images of its classes from the
Fashion-MNIST training set that neither its training nor its validation split holds (never a test image).
Writes benchmarks/results/<name>.{json,md}; rows are added to the JSON as they finish.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict, replace

import torch
from torch.utils.data import DataLoader

import fa_compress as fc
from fa_compress.accuracy import Accuracy
from fa_compress.data.fashion_mnist import _FILES, _find_file, _locate, read_idx, resize_uint8
from fa_compress.data.memory import InMemoryImageDataset
from fa_compress.models import build_model, get_head, get_spec

from . import _common
from ._common import OverSeeds, cell, command_line, env_record, group_rows, load_average, seeds_note, seeds_option
from ._tasks import CHOOSE, TASKS, Task, TaskData, _labels, _relabel, load_task

# small variants of the `choose` tasks, built here (the zoo's tops4 and shoes3 have 270 and 135 a class)
VARIANTS = {
    "tops4-30": replace(TASKS["tops4"], name="tops4-30", train_per_class=30, pick="library",
                        varies="tops4 with 30 training images a class"),
    "shoes3-100": replace(TASKS["shoes3"], name="shoes3-100", train_per_class=100, pick="library",
                          varies="shoes3 with 100 training images a class"),
}
FLOORS = {"epoch": 0, "50": 50, "100": 100, "200": 200}  # name -> min_phase_steps (0: one epoch per phase)


def task(name: str) -> Task:
    if name in VARIANTS:
        return VARIANTS[name]
    if name not in TASKS:
        raise SystemExit(f"unknown task {name!r}; known: {', '.join([*VARIANTS, *TASKS])}")
    return TASKS[name]


def dev_split(t: Task, data: TaskData, per_class: int, seed: int) -> InMemoryImageDataset:
    """`per_class` seeded training-set images of each of `t`'s classes that are in neither `data.train` nor
    `data.val`: a larger split to choose on than the task's own validation split, and never the test split."""
    labels, _ = _labels()  # (60000,)
    used = torch.zeros_like(labels, dtype=torch.bool)
    used[torch.cat([data.indices.train, data.indices.val])] = True
    g = torch.Generator().manual_seed(seed + 7_777)
    picked = []
    for c in t.classes:
        free = ((labels == c) & ~used).nonzero().flatten()  # (n_free,)
        picked.append(free[torch.randperm(free.numel(), generator=g)[:per_class]])
    idx = torch.cat(picked).sort().values  # (k * per_class,)
    folder, _ = _locate(None)
    images = torch.from_numpy(read_idx(_find_file(folder, _FILES["train_images"])))[idx]  # (n, 28, 28)
    resized = resize_uint8(images.unsqueeze(1), t.img_size)  # (n, 28, 28) -> (n, 1, S, S)
    normalization = get_spec(t.model).normalization
    return InMemoryImageDataset(resized, _relabel(labels[idx], t.classes), normalization, flip=False)


def score(model: torch.nn.Module, dataset) -> Accuracy:
    """Top-1 of `model` on `dataset` (the library's evaluation), with its image count."""
    value = fc.evaluate(model, DataLoader(dataset, batch_size=128))
    return Accuracy.of(round(value * len(dataset)), len(dataset))


def run_one(t: Task, data: TaskData, dev, floor: str, seed: int) -> dict:
    """Fine-tune `t`'s model on `data` with the floor `floor`; the row of what it kept and scored."""
    torch.manual_seed(seed)
    model = build_model(t.model, num_classes=len(data.classes), weights="imagenet")
    result = fc.finetune(model, data.train, DataLoader(data.val, batch_size=128), head=get_head(model, t.model),
                         seed=seed, min_phase_steps=FLOORS[floor])  # gates are inserted for the `gates` phases
    t0 = time.perf_counter()
    row = {"task": t.name, "role": t.role, "floor": floor, "min_phase_steps": FLOORS[floor], "seed": seed,
           "train_images": len(data.train), "val_images": len(data.val),
           "phase_steps": [p.steps.to_dict() for p in result.phases],
           "phase_val": [p.val_acc for p in result.phases], "kept_phase": result.best_index,
           "val": result.best_val.to_dict(), "test": score(model, data.test).to_dict(),
           "dev": score(model, dev).to_dict() if dev is not None else None, "finetune_s": result.total_s}
    row["score_s"] = time.perf_counter() - t0
    return row


def _delta(group: list[dict], epoch: dict[tuple, dict], split: str) -> OverSeeds | None:
    """The paired difference against one epoch per phase on the same seed (same splits), over seeds."""
    return OverSeeds.of(r[split]["value"] - epoch[(r["task"], r["seed"])][split]["value"]
                        for r in group if r[split] is not None and (r["task"], r["seed"]) in epoch)


def render(rows: list[dict], seeds: list[int]) -> str:
    """Per task and floor: steps, kept phases, validation, dev and test accuracy (mean ± sd over seeds), the
    paired change against one epoch, seconds."""
    epoch = {(r["task"], r["seed"]): r for r in rows if r["floor"] == "epoch"}
    lines = ["# A step floor per fine-tuning phase on small data", "", "```", command_line(), "```", "",
             seeds_note(seeds) + " Validation keeps the phase; `dev` (calibration tasks only) is where a default "
             "may be chosen; test is reported only. Δ: paired against one epoch per phase, same seed, in points.",
             "", "| task | role | train / val / dev / test images | floor | steps per phase | kept phase | val % "
             "| dev % | Δ dev | test % | Δ test | fine-tune s |", "|---|---|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for (name, floor), group in group_rows(rows, ("task", "floor")).items():
        first = group[0]
        images = (f"{first['train_images']} / {first['val_images']} / "
                  f"{first['dev']['n'] if first['dev'] else '-'} / {first['test']['n']}")
        steps = ", ".join(str(s["steps"]) for s in first["phase_steps"])
        kept = ",".join(str(r["kept_phase"] + 1) for r in group)
        dev = OverSeeds.of(r["dev"]["value"] if r["dev"] else None for r in group)
        lines.append(f"| {name} | {first['role']} | {images} | {floor} | {steps} | {kept} | "
                     f"{cell(OverSeeds.of(r['val']['value'] for r in group))} | {cell(dev)} | "
                     f"{'' if floor == 'epoch' else cell(_delta(group, epoch, 'dev'))} | "
                     f"{cell(OverSeeds.of(r['test']['value'] for r in group))} | "
                     f"{'' if floor == 'epoch' else cell(_delta(group, epoch, 'test'))} | "
                     f"{statistics.fmean(r['finetune_s'] for r in group):.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", default="tops4-30,shoes3-100,shirt2,mixed3-few,shoes3-few",
                   help=f"zoo tasks or variants built here ({', '.join(VARIANTS)})")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--floors", default=",".join(FLOORS), help=f"from {', '.join(FLOORS)}")
    p.add_argument("--test-per-class", type=int, default=500, help="test images per class (1,000 is all)")
    p.add_argument("--dev-per-class", type=int, default=250, help="dev images per class (calibration tasks only)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--name", default="finetune_steps")
    args = p.parse_args()
    seeds, floors = seeds_option(args.seeds), [f.strip() for f in args.floors.split(",")]
    if unknown := [f for f in floors if f not in FLOORS]:
        raise SystemExit(f"unknown floor {unknown[0]!r}; known: {', '.join(FLOORS)}")
    tasks = [task(n.strip()) for n in args.tasks.split(",")]
    torch.set_num_threads(args.threads)
    out = _common.RESULTS / f"{args.name}.json"
    record = {"command": command_line(), "environment": env_record(), "load_before": load_average(),
              "tasks": {t.name: asdict(t) for t in tasks}, "floors": {f: FLOORS[f] for f in floors}}
    rows: list[dict] = []
    for t in tasks:
        for seed in seeds:
            data = load_task(t, get_spec(t.model).normalization, seed=seed, test_per_class=args.test_per_class)
            dev = dev_split(t, data, args.dev_per_class, seed) if t.role == CHOOSE else None
            for floor in floors:
                rows.append(run_one(t, data, dev, floor, seed))
                r = rows[-1]
                print(f"{t.name} seed {seed} floor {floor}: steps {[s['steps'] for s in r['phase_steps']]} "
                      f"kept {r['kept_phase'] + 1} val {r['val']['value']:.2%} "
                      f"dev {r['dev']['value'] if r['dev'] else float('nan'):.2%} test {r['test']['value']:.2%} "
                      f"({r['finetune_s']:.0f} s)", flush=True)
                out.write_text(json.dumps({**record, "rows": rows}, indent=1))
    record["load_after"] = load_average()
    out.write_text(json.dumps({**record, "rows": rows}, indent=1))
    table = render(rows, seeds)
    (_common.RESULTS / f"{args.name}.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
