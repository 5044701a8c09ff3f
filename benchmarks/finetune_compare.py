"""Issue 2 benchmark: linear probe vs full fine-tuning vs gate schedules on Lite0 + Fashion-MNIST,
at equal epochs and at equal wall time, plus the training-step overhead of gates.

    .venv/bin/python benchmarks/finetune_compare.py            # 6000 train / 2000 test, 64 px
    .venv/bin/python benchmarks/finetune_compare.py --quick    # 1000 / 500, for calibration

Writes benchmarks/results/finetune_compare{,_quick}.json/.md/.png. Wall times depend on machine load,
which is recorded; the step-overhead ratio interleaves gated and ungated steps in one process.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from fa_compress.gates import insert_gates
from fa_compress.models import build_model, get_head
from fa_compress.train import TrainConfig, configure_phase
from fa_compress.train.stage import FinetuneOptions, finetune_run

RESULTS = Path(__file__).parent / "results"
METHODS = {  # name -> schedule (one epoch per phase; `head` trains on cached features)
    "linear probe": ("head", "head", "head"),
    "full fine-tuning": ("head", "all", "all"),
    "gates (default)": ("head", "gates", "gates"),
    "BN affine": ("head", "bn", "bn"),
}


def run_method(schedule, limit_train: int, limit_test: int, root: Path) -> list[dict]:
    opts = FinetuneOptions(limit_train=limit_train, limit_test=limit_test, show_progress=False,
                           run=root / "-".join(schedule) / str(time.time_ns()),
                           train=TrainConfig(schedule=schedule))
    _, result = finetune_run(opts)
    elapsed, rows = 0.0, []
    for p in result.phases:
        elapsed += p.seconds
        rows.append({"phase": p.phase, "test_acc": p.test_acc, "seconds": p.seconds, "cumulative_s": elapsed,
                     "images_per_s": p.images_per_s, "mean_gate": p.mean_gate})
    return rows


def step_overhead(steps: int = 30, img: int = 64, batch: int = 32) -> dict:
    """Median training-step time, gated vs ungated Lite0, same frozen parts, interleaved."""
    base = build_model("efficientnet_lite0", 10, weights="imagenet")
    pairs = {"all: gated / ungated": ("all", "all"), "gates / bn (same frozen convs)": ("gates", "bn")}
    x, y = torch.randn(batch, 3, img, img), torch.randint(0, 10, (batch,))
    out = {}
    for label, (gated_phase, plain_phase) in pairs.items():
        gated, plain = insert_gates(copy.deepcopy(base)), copy.deepcopy(base)
        if plain_phase == "bn":
            plain = insert_gates(plain)  # bn phase on the same gated module types, gates frozen
        models = {"gated": (gated, gated_phase), "plain": (plain, plain_phase)}
        times = {k: [] for k in models}
        for i in range(steps + 3):
            for k, (m, phase) in models.items():
                params = configure_phase(m, get_head(m, "efficientnet_lite0"), phase)
                t0 = time.perf_counter()
                loss = torch.nn.functional.cross_entropy(m(x), y)
                torch.autograd.grad(loss, params)
                if i >= 3:
                    times[k].append(time.perf_counter() - t0)
        g, p = statistics.median(times["gated"]), statistics.median(times["plain"])
        out[label] = {"gated_ms": 1000 * g, "plain_ms": 1000 * p, "ratio": g / p}
    return out


def equal_time(methods: dict[str, list[dict]]) -> dict[str, dict[str, float | None]]:
    budgets = sorted({round(r["cumulative_s"]) for rows in methods.values() for r in rows})
    return {name: {str(b): max((r["test_acc"] for r in rows if r["cumulative_s"] <= b + 0.5), default=None)
                   for b in budgets} for name, rows in methods.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    limit_train, limit_test = (1000, 500) if args.quick else (6000, 2000)
    tag = "_quick" if args.quick else ""
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        methods = {name: run_method(s, limit_train, limit_test, Path(tmp)) for name, s in METHODS.items()}
    overhead = step_overhead()
    out = {"limit_train": limit_train, "limit_test": limit_test, "img_size": 64, "methods": methods,
           "equal_time_best_acc": equal_time(methods), "step_overhead": overhead,
           "load_avg_start": load_start, "load_avg_end": os.getloadavg(), "torch_threads": torch.get_num_threads()}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"finetune_compare{tag}.json").write_text(json.dumps(out, indent=1))
    md = to_markdown(out, tag)
    (RESULTS / f"finetune_compare{tag}.md").write_text(md)
    plot(methods, RESULTS / f"finetune_compare{tag}.png")
    print(md)


def to_markdown(out: dict, tag: str) -> str:
    lines = [f"# Fine-tuning comparison: Lite0 + Fashion-MNIST ({out['limit_train']} train, "
             f"{out['limit_test']} test, 64 px)", "",
             f"`.venv/bin/python benchmarks/finetune_compare.py{' --quick' if tag else ''}` — load average "
             f"{out['load_avg_start'][0]:.1f} at start, {out['load_avg_end'][0]:.1f} at end; torch threads "
             f"{out['torch_threads']}.", "", "Equal epochs (test accuracy after each phase, cumulative seconds):", "",
             "| method | phase 1 | phase 2 | phase 3 | images/s (last phase) |", "|---|---|---|---|---:|"]
    for name, rows in out["methods"].items():
        cells = [f"{r['phase']} {100 * r['test_acc']:.2f}% @ {r['cumulative_s']:.0f}s" for r in rows]
        lines.append(f"| {name} | {' | '.join(cells)} | {rows[-1]['images_per_s']:.0f} |")
    lines += ["", "Equal wall time (best test accuracy reached within each budget, seconds):", ""]
    budgets = list(next(iter(out["equal_time_best_acc"].values())).keys())
    lines += ["| method | " + " | ".join(f"≤{b}s" for b in budgets) + " |", "|---|" + "---:|" * len(budgets)]
    for name, accs in out["equal_time_best_acc"].items():
        lines.append(f"| {name} | " + " | ".join("-" if a is None else f"{100 * a:.2f}" for a in accs.values()) + " |")
    lines += ["", "Training-step overhead of gates (median of interleaved steps, batch 32, 64 px):", "",
              "| comparison | gated ms | plain ms | ratio |", "|---|---:|---:|---:|"]
    for label, o in out["step_overhead"].items():
        lines.append(f"| {label} | {o['gated_ms']:.1f} | {o['plain_ms']:.1f} | {o['ratio']:.3f} |")
    return "\n".join(lines) + "\n"


def plot(methods: dict[str, list[dict]], path: Path) -> None:
    from fa_compress._deps import require

    require("matplotlib", "the comparison plot")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, rows in methods.items():
        ax.plot([r["cumulative_s"] for r in rows], [100 * r["test_acc"] for r in rows], marker="o", label=name)
    ax.set_xlabel("cumulative wall time (s)")
    ax.set_ylabel("test accuracy (%)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
