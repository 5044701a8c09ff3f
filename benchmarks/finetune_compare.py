"""Linear probe vs full fine-tuning vs gate schedules on Lite0 + Fashion-MNIST, at
equal epochs and at equal wall time, plus the training-step overhead of the gates.

    .venv/bin/python benchmarks/finetune_compare.py            # 6000 train / 2000 test, 64 px (the default run)
    .venv/bin/python benchmarks/finetune_compare.py --quick    # 1000 / 500 and fewer timed steps, to calibrate
    .venv/bin/python benchmarks/finetune_compare.py --limit-train 2000 --limit-test 1000 --methods gates,probe
    .venv/bin/python benchmarks/finetune_compare.py --seeds 0,1,2          # mean ± sd over three seeds

Every method starts from the same ImageNet Lite0 and the same classifier initialisation, and runs
the library's own loop (`fa_compress.train.loop.finetune`) with the default `TrainConfig` except
for its schedule (one epoch per phase; `head` phases train on cached features). After each phase
the test accuracy and the cumulative *training* wall time (evaluation excluded, the same for all)
are recorded. Equal epochs compares phase k with phase k; equal wall time takes, for each budget,
the best test accuracy each method had reached within it.

With `--seeds`, every method runs once per seed (the seed draws the training and test images, the
classifier initialisation and the batch order), and the tables show the mean ± standard deviation
over seeds, phase by phase; the equal-wall-time view is taken on the mean curves.

The step overhead times full training steps (forward, backward, AdamW step) of a gated and an
ungated Lite0 with the same frozen parts, in the library's interleaved rounds
(`fa_compress.bench.compare.compare_steps`, outside inference mode) so that load from other
processes hits both alike; the overhead is the ratio gated / ungated per round, median with a 95%
interval. Results go to benchmarks/results/finetune_compare{,_quick}.{json,md,png} (`--name`: another
name). Wall times depend on machine load, recorded at the start, after each phase and at the end.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
from dataclasses import asdict, dataclass, replace
from typing import Any

from . import _common as C
import torch
import torch.nn.functional as F

from fa_compress.bench.compare import compare_steps
from fa_compress.data import load_dataset, make_loader
from fa_compress.gates import insert_gates, iter_gates
from fa_compress.models import build_model, get_head, get_spec
from fa_compress.train import TrainConfig, configure_phase
from fa_compress.train.distributed import Context
from fa_compress.train.loop import finetune
from fa_compress.train.progress import PhaseBar

ARCH = "efficientnet_lite0"
IMG_SIZE = 64
METHODS = {  # name -> schedule (one epoch per phase)
    "probe": ("head", "head", "head"),                 # linear probe; later head phases reuse the features
    "full": ("all", "all", "all"),                     # conventional full fine-tuning, fresh classifier
    "probe+full": ("head", "all", "all"),              # full fine-tuning after a probe (LP-FT)
    # Phases are independent one-cycles from a fixed seed: this is exactly the default `facompress finetune`.
    "gates": ("head", "gates", "gates", "gates"),
    "bn": ("head", "bn", "bn"),                        # BatchNorm affine instead of gates, same frozen convs
    "gates-only": ("gates", "gates", "gates"),         # no probe first (not run by default)
}
DEFAULT_METHODS = ("probe", "full", "probe+full", "gates", "bn")
OVERHEAD_PAIRS = {  # label -> ((gated model phase), (ungated model phase))
    "all (everything trains)": ("all", "all"),
    "bn (gates frozen)": ("bn", "bn"),
    "gates vs bn (method vs nearest ungated phase)": ("gates", "bn"),
}


@dataclass(frozen=True)
class PhasePoint:
    phase: str
    train_acc: float
    test_acc: float
    seconds: float
    cumulative_s: float
    images_per_s: float
    load_1min: float


@dataclass(frozen=True)
class MethodResult:
    name: str
    schedule: tuple[str, ...]
    points: tuple[PhasePoint, ...]
    gates_total: int | None
    gates_below_0_1: int | None
    gates_below_0_5: int | None
    seed: int = 0  # draws the images, the classifier initialisation and the batch order


@dataclass(frozen=True)
class MethodSummary:
    """One method over seeds: its mean curve (phase by phase) and its test accuracy after each phase."""

    mean: MethodResult
    test_acc: tuple[C.OverSeeds, ...]
    seeds: tuple[int, ...]


@dataclass(frozen=True)
class StepOverhead:
    label: str
    gated_median_ms: float
    gated_p90_ms: float
    ungated_median_ms: float
    ungated_p90_ms: float
    ratio: float  # gated / ungated, per round (median over rounds)
    steps: int
    ratio_low: float | None = None  # 95% bootstrap interval of `ratio`
    ratio_high: float | None = None


def run_method(name: str, schedule: tuple[str, ...], base: torch.nn.Module, bundle: Any, cfg: TrainConfig,
               ctx: Context) -> MethodResult:
    """`schedule` from a copy of `base` (gated when it has a gates phase), as `facompress finetune` runs it."""
    model = copy.deepcopy(base)
    if "gates" in schedule:
        insert_gates(model)
    torch.manual_seed(cfg.seed)
    test_loader = make_loader(bundle.test, 128, shuffle=False)
    points: list[PhasePoint] = []
    # every phase's test accuracy is reported; nothing is chosen here, so no validation loader
    result = finetune(model, get_head(model, ARCH), bundle.train, None, replace(cfg, schedule=schedule),
                      ctx, PhaseBar(None), test_loader=test_loader)
    elapsed = 0.0
    for p in result.phases:
        elapsed += p.seconds
        points.append(PhasePoint(p.phase, p.train_acc, p.test_acc, p.seconds, elapsed, p.images_per_s,
                                 C.load_average()[0]))
        print(f"  {name:10s} seed {cfg.seed} {p.phase:5s} test {100 * p.test_acc:6.2f}%  "
              f"train {100 * p.train_acc:6.2f}%  "
              f"{p.seconds:6.1f} s (cum {elapsed:6.1f} s)  {p.images_per_s:6.0f} img/s", flush=True)
    gates = torch.cat([m.gate.detach().abs().view(-1) for _, m in iter_gates(model)]) if "gates" in schedule else None
    return MethodResult(name, schedule, tuple(points), None if gates is None else gates.numel(),
                        None if gates is None else int((gates < 0.1).sum()),
                        None if gates is None else int((gates < 0.5).sum()), seed=cfg.seed)


def over_seeds(results: list[MethodResult]) -> list[MethodSummary]:
    """Per method (in first-seen order): the mean over its seeds of every figure, phase by phase."""
    groups: dict[str, list[MethodResult]] = {}
    for r in results:
        groups.setdefault(r.name, []).append(r)
    fields = ("train_acc", "test_acc", "seconds", "cumulative_s", "images_per_s", "load_1min")
    out = []
    for name, runs in groups.items():
        phases = list(zip(*(r.points for r in runs)))  # phases[k]: the k-th phase of every seed
        points = tuple(PhasePoint(same[0].phase, *(statistics.fmean(getattr(p, f) for p in same) for f in fields))
                       for same in phases)
        gates = [None if runs[0].gates_total is None else round(statistics.fmean(getattr(r, f) for r in runs))
                 for f in ("gates_total", "gates_below_0_1", "gates_below_0_5")]
        accs = tuple(C.OverSeeds.of(p.test_acc for p in same) for same in phases)
        out.append(MethodSummary(MethodResult(name, runs[0].schedule, points, *gates, seed=runs[0].seed), accs,
                                 tuple(r.seed for r in runs)))
    return out


def _train_step(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def step_overhead(base: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, warmup: int = 3,
                  ) -> list[StepOverhead]:
    """Training-step time of a gated vs an ungated copy of `base`, same frozen parts, in the same rounds."""
    out = []
    for label, (gated_phase, plain_phase) in OVERHEAD_PAIRS.items():
        runs = {}
        for key, phase, gated in (("gated", gated_phase, True), ("ungated", plain_phase, False)):
            model = insert_gates(copy.deepcopy(base)) if gated else copy.deepcopy(base)
            params = configure_phase(model, get_head(model, ARCH), phase)
            runs[key] = (model, torch.optim.AdamW(params, lr=1e-6))
        t = compare_steps({key: (lambda key=key: _train_step(*runs[key], x, y)) for key in runs},
                          warmup=warmup, rounds=steps, calls=1, inference=False)
        g, u = t["gated"].latency, t["ungated"].latency
        ratio = t["gated"].ratio_to(t["ungated"])
        out.append(StepOverhead(label, g.median_ms, g.p90_ms, u.median_ms, u.p90_ms, ratio.median, steps,
                                ratio.low, ratio.high))
        print(f"  overhead {label}: {ratio.median:.3f} [{ratio.low:.3f}, {ratio.high:.3f}]", flush=True)
    return out


def _best_within(points: tuple[PhasePoint, ...], budget: float) -> int | None:
    """Index of the most accurate point reached within `budget` seconds (None: none reached yet)."""
    within = [i for i, p in enumerate(points) if round(p.cumulative_s, 1) <= budget]
    return max(within, key=lambda i: points[i].test_acc, default=None)


def equal_time(results: list[MethodResult]) -> tuple[list[float], dict[str, list[float | None]]]:
    """Budgets (every method's cumulative phase ends, s) and each method's best test accuracy within them."""
    budgets = sorted({round(p.cumulative_s, 1) for r in results for p in r.points})
    best = {r.name: [None if (i := _best_within(r.points, b)) is None else r.points[i].test_acc for b in budgets]
            for r in results}
    return budgets, best


def verdict(budgets: list[float], best: dict[str, list[float | None]], method: str = "gates") -> str:
    """One sentence: at how many budgets, from the method's first gate phase on, it is highest."""
    if method not in best:
        return ""
    ours = best[method]
    start = next((i for i, a in enumerate(ours) if a is not None), None)
    if start is None:
        return ""
    wins = [i for i in range(start, len(budgets))
            if all(a is None or ours[i] >= a for a in (best[m][i] for m in best))]
    losses = [(budgets[i], m, best[m][i]) for i in range(start, len(budgets)) for m in best
              if best[m][i] is not None and best[m][i] > ours[i]]
    text = (f"`{method}` is highest (ties included) at {len(wins)} of {len(budgets) - start} budgets from "
            f"{budgets[start]:.1f} s on.")
    if losses:
        text += " Beaten at: " + "; ".join(f"{b:.1f} s by {m} ({100 * a:.2f}% vs {100 * ours[budgets.index(b)]:.2f}%)"
                                          for b, m, a in losses) + "."
    return text


def to_markdown(args: argparse.Namespace, env: dict, loads: dict, results: list[MethodResult],
                overhead: list[StepOverhead], command: str | None = None) -> str:
    """The three tables: equal epochs, equal wall time (mean ± sd over seeds), step overhead."""
    summaries = over_seeds(results)
    seeds = list(dict.fromkeys(r.seed for r in results))
    notes = [f"{args.limit_train} training / {args.limit_test} test images at {IMG_SIZE} px, {ARCH} ImageNet "
             f"weights, default TrainConfig except the schedule; seconds are training time only (evaluation "
             f"excluded), so they move with the machine's load.", C.seeds_note(seeds)]
    text = C.md_header("Fine-tuning comparison: Lite0 + Fashion-MNIST", env, loads, notes, command)
    text += _equal_epochs(summaries)
    budgets, best = equal_time([s.mean for s in summaries])
    rows = []
    for i, b in enumerate(budgets):
        accs = {name: best[name][i] for name in best}
        top = max((a for a in accs.values() if a is not None), default=None)
        leaders = [name for name, a in accs.items() if a is not None and a == top]
        cells = [C.cell(None if (k := _best_within(s.mean.points, b)) is None else s.test_acc[k]) for s in summaries]
        rows.append([f"{b:.1f}", *cells, ", ".join(leaders)])
    text += "\n\n## Equal wall time\n\nBest test accuracy (%) reached within each budget (s)"
    text += (", on the mean curves over seeds.\n\n" if len(seeds) > 1 else ".\n\n")
    text += C.md_table(["budget s", *best, "highest"], rows)
    text += "\n\n" + verdict(budgets, best)
    ci = lambda o: "" if o.ratio_low is None else f" [{o.ratio_low:.3f}, {o.ratio_high:.3f}]"  # noqa: E731
    rows = [[o.label, f"{o.gated_median_ms:.1f}", f"{o.gated_p90_ms:.1f}", f"{o.ungated_median_ms:.1f}",
             f"{o.ungated_p90_ms:.1f}", f"{o.ratio:.3f}{ci(o)}", str(o.steps)] for o in overhead]
    how = ("in the same interleaved rounds; ratio gated / ungated per round, median [95% interval]"
           if any(o.ratio_low is not None for o in overhead) else "interleaved; ratio of medians")  # older results
    text += (f"\n\n## Training-step overhead of the gates\n\nForward + backward + AdamW step, batch "
             f"{args.batch_size}, {IMG_SIZE} px, gated and ungated steps {how} (target <= 1.05).\n\n")
    text += C.md_table(["frozen parts", "gated median ms", "gated p90 ms", "ungated median ms", "ungated p90 ms",
                        "ratio", "steps"], rows)
    return text


def _equal_epochs(summaries: list[MethodSummary]) -> str:
    n = max(len(s.mean.points) for s in summaries)
    rows = []
    for s in summaries:
        r = s.mean
        cells = [f"{p.phase} {acc.cell()}% @ {p.cumulative_s:.0f} s ({p.images_per_s:.0f} img/s)"
                 for p, acc in zip(r.points, s.test_acc)] + [""] * (n - len(r.points))
        gates = "" if r.gates_total is None else f"{r.gates_below_0_1} / {r.gates_below_0_5} of {r.gates_total}"
        rows.append([r.name, ",".join(r.schedule), *cells, gates])
    text = ("\n## Equal epochs\n\nTest accuracy after each phase, cumulative training seconds, images/s of the "
            "phase.\n\n")
    return text + C.md_table(["method", "schedule", *(f"phase {i + 1}" for i in range(n)), "gates < 0.1 / < 0.5"],
                             rows)


def plot(summaries: list[MethodSummary], path: Any) -> None:
    """Left: test accuracy after each phase against cumulative training time (mean over seeds, ± sd as
    error bars). Right: the best accuracy reached within each budget (the equal-wall-time view)."""
    from fa_compress._deps import require

    require("matplotlib", "the accuracy-vs-time plot")
    import matplotlib.pyplot as plt

    fig, (raw, best) = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    end = max(p.cumulative_s for s in summaries for p in s.mean.points) * 1.05
    for s in summaries:
        r = s.mean
        t, acc = [p.cumulative_s for p in r.points], [100 * p.test_acc for p in r.points]
        sd = [100 * (a.sd or 0.0) for a in s.test_acc]
        line = raw.errorbar(t, acc, yerr=sd if any(sd) else None, marker="o", capsize=3,
                            label=f"{r.name} ({','.join(r.schedule)})").lines[0]
        running = [max(acc[: i + 1]) for i in range(len(acc))]
        best.step(t + [end], running + running[-1:], where="post", color=line.get_color(), label=r.name)
    raw.set_title("after each phase")
    best.set_title("best within budget (equal wall time)")
    for ax in (raw, best):
        ax.set_xlabel("cumulative training wall time (s)")
        ax.grid(alpha=0.3)
    raw.set_ylabel("test accuracy (%)")
    raw.legend(fontsize=8)
    fig.suptitle("EfficientNet-Lite0 + Fashion-MNIST (64 px)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    C.add_options(ap)
    ap.add_argument("--limit-train", type=int, default=None, help="training images (default 6000; --quick 1000)")
    ap.add_argument("--limit-test", type=int, default=None, help="test images (default 2000; --quick 500)")
    ap.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                    help=f"comma-separated, from {', '.join(METHODS)} (default {','.join(DEFAULT_METHODS)})")
    ap.add_argument("--overhead-steps", type=int, default=None, help="timed steps per pair (default 40; --quick 8)")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds; every method runs once per seed (default 0)")
    ap.add_argument("--render", metavar="JSON", help="rewrite the Markdown and plot from a stored result, measuring nothing")
    args = ap.parse_args(argv)
    args.limit_train = args.limit_train or (1000 if args.quick else 6000)
    args.limit_test = args.limit_test or (500 if args.quick else 2000)
    args.overhead_steps = args.overhead_steps or (8 if args.quick else 40)
    args.batch_size = TrainConfig().batch_size
    unknown = [m for m in args.methods.split(",") if m not in METHODS]
    if unknown:
        ap.error(f"unknown method {unknown[0]!r}; methods are {', '.join(METHODS)}")
    args.seeds = C.seeds_option(args.seeds)
    return args


def render(path: str, args: argparse.Namespace) -> None:
    """Rebuild `<name>.md` and `<name>.png` from `<name>.json` (e.g. after a change of layout)."""
    import json
    from pathlib import Path

    data = json.loads(Path(path).read_text())
    command = data.get("command", ".venv/bin/python benchmarks/finetune_compare.py")  # older results lack it
    results = [MethodResult(**{**m, "schedule": tuple(m["schedule"]),
                               "points": tuple(PhasePoint(**p) for p in m["points"])}) for m in data["methods"]]
    overhead = [StepOverhead(**o) for o in data["step_overhead"]]
    args.limit_train, args.limit_test = data["settings"]["limit_train"], data["settings"]["limit_test"]
    stem = Path(path).with_suffix("")
    stem.with_suffix(".md").write_text(to_markdown(args, data["environment"], data["load_average"], results, overhead,
                                                           command))
    plot(over_seeds(results), stem.with_suffix(".png"))
    print(f"rewrote {stem}.md and .png")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.render:
        return render(args.render, args)
    C.set_threads(args.threads)
    loads = {"at start": C.load_average()}
    print(C.uptime_line(), flush=True)
    ctx = Context(device=torch.device("cpu"))
    results, first = [], None
    for seed in args.seeds:
        cfg = TrainConfig(seed=seed)
        bundle = load_dataset("fashion-mnist", img_size=IMG_SIZE, normalization=get_spec(ARCH).normalization,
                              limit_train=args.limit_train, limit_test=args.limit_test, seed=seed)
        torch.manual_seed(seed)
        base = build_model(ARCH, num_classes=len(bundle.classes), weights="imagenet")
        results += [run_method(name, METHODS[name], base, bundle, cfg, ctx) for name in args.methods.split(",")]
        first = first or (base, bundle, cfg)
    loads["after training"] = C.load_average()
    base, bundle, cfg = first  # the step overhead does not depend on the seed: measured once
    x, y = next(iter(make_loader(bundle.train, args.batch_size, shuffle=True, seed=cfg.seed)))
    overhead = step_overhead(base, x, y, args.overhead_steps)
    loads["at end"] = C.load_average()
    env = C.env_record()
    name = C.result_name("finetune_compare" + ("_quick" if args.quick else ""), args.name)
    summaries = over_seeds(results)
    budgets, best = equal_time([s.mean for s in summaries])
    data = {"command": C.command_line(), "settings": {"limit_train": args.limit_train, "limit_test": args.limit_test, "img_size": IMG_SIZE,
                         "arch": ARCH, "seeds": args.seeds, "train_config": cfg.to_dict()},
            "environment": env, "load_average": loads, "methods": [asdict(r) for r in results],
            "equal_time": {"budgets_s": budgets, "best_test_acc": best, "of": "mean curves over seeds"},
            "step_overhead": [asdict(o) for o in overhead]}
    C.write_results(name, data, to_markdown(args, env, loads, results, overhead))
    plot(summaries, C.RESULTS / f"{name}.png")
    print(f"wrote benchmarks/results/{name}.png")


if __name__ == "__main__":
    sys.exit(main())
