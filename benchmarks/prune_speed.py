"""How long pruning resnet50 takes, and how much faster the pruned model runs in PyTorch eager.

    .venv/bin/python benchmarks/prune_speed.py           # full: ~2-4 min on 2 busy cores
    .venv/bin/python benchmarks/prune_speed.py --quick   # calibration

Prune time: `fa_compress.pruning.pruner.prune_model` on a gated resnet50 (random weights, gates drawn
uniformly in [0, 1)), gate importance, keep 0.6, global scope, round_to 8, with a 224 px example
input; median of several runs, each on a fresh copy of the model (the copy is not timed). One run
is also split into torch-pruning's dependency-graph build (`MetaPruner.__init__`), its
`pruner.step()`, and the rest (gate folding and the check that the pruned model runs).

Latency: the dense and the pruned (folded) model in PyTorch eager on the CPU, float32,
inference_mode, timed by the library's interleaved rounds (`fa_compress.bench.compare.compare_steps`,
as `facompress bench` does), batch 1 and 8; the ratio pruned / dense is taken per round, median with a
95% bootstrap interval. No onnxruntime here (see resnet50_ratio.py for that).

Writes benchmarks/results/prune_speed.json and .md.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from . import _common as C

C.set_threads()

import torch_pruning as tp  # noqa: E402

from fa_compress.bench.compare import compare_steps  # noqa: E402
from fa_compress.gates import insert_gates, iter_gates  # noqa: E402
from fa_compress.models import build_model, get_head  # noqa: E402
from fa_compress.models.complexity import count_macs, count_params  # noqa: E402
from fa_compress.pruning.pruner import PruneSettings, prune_model  # noqa: E402

ARCH, IMG, KEEP, ROUND_TO = "resnet50", 224, 0.6, 8
# The gates are drawn at random (a stand-in for learned ones), so they are ranked by value, without
# training images; per-MAC weighting off, as when the committed results were measured.
SETTINGS = PruneSettings(keep=KEEP, importance="gate", gate_score="value", gate_per_mac=0.0, round_to=ROUND_TO)


def gated_resnet50(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = insert_gates(build_model(ARCH, 1000, weights="none")).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, bn in iter_gates(model):
            bn.gate.uniform_(0.0, 1.0, generator=gen)
    return model


def prune_once(template: torch.nn.Module, example: torch.Tensor) -> tuple[float, torch.nn.Module]:
    model = copy.deepcopy(template)
    t0 = time.perf_counter()
    pruned = prune_model(model, get_head(model, ARCH), SETTINGS, example)
    return time.perf_counter() - t0, pruned


def prune_breakdown(template: torch.nn.Module, example: torch.Tensor) -> dict[str, float]:
    """One prune with MetaPruner.__init__ and MetaPruner.step timed separately (wrapped, not changed)."""
    parts: dict[str, float] = {}
    cls = tp.pruner.MetaPruner
    orig_init, orig_step = cls.__init__, cls.step

    def timed(fn, key):
        def wrapper(self, *a, **k):
            t0 = time.perf_counter()
            try:
                return fn(self, *a, **k)
            finally:
                parts[key] = parts.get(key, 0.0) + time.perf_counter() - t0
        return wrapper

    cls.__init__, cls.step = timed(orig_init, "dependency_graph_s"), timed(orig_step, "step_s")
    try:
        total, _ = prune_once(template, example)
    finally:
        cls.__init__, cls.step = orig_init, orig_step
    parts["total_s"] = total
    parts["fold_and_check_s"] = total - parts.get("dependency_graph_s", 0.0) - parts.get("step_s", 0.0)
    return {k: round(v, 3) for k, v in parts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    C.add_options(parser)
    args = parser.parse_args()
    C.set_threads(args.threads)
    repeats = 2 if args.quick else 5
    plan = {1: (2, 5), 8: (1, 3)} if args.quick else {1: (5, 30), 8: (3, 12)}  # batch: (warmup, runs)

    loads = {"at start": C.load_average()}
    print(C.uptime_line())
    start = time.perf_counter()
    template = gated_resnet50()
    example = torch.randn(1, 3, IMG, IMG)  # (1, 3, H, W)

    times = []
    pruned = None
    for i in range(repeats):
        t, pruned = prune_once(template, example)
        times.append(t)
        print(f"prune run {i + 1}/{repeats}: {t:.2f} s  [{C.uptime_line()}]")
    ordered = sorted(times)
    prune_median = ordered[len(ordered) // 2] if len(ordered) % 2 else sum(ordered[len(ordered) // 2 - 1:][:2]) / 2
    breakdown = prune_breakdown(template, example)
    print(f"breakdown: {breakdown}")

    dense = copy.deepcopy(template)
    from fa_compress.gates import fold_gates

    fold_gates(dense)  # a plain dense resnet50; folding does not change its speed class
    info = {name: {"params": count_params(m), "macs": count_macs(m, IMG)} for name, m in
            (("dense", dense), ("pruned", pruned))}

    latency = {}
    rows = []
    for batch, (warmup, runs) in plan.items():
        steps = {"dense": C.torch_step(dense, batch, IMG), "pruned": C.torch_step(pruned, batch, IMG)}
        timings = compare_steps(steps, warmup=warmup, rounds=runs)
        stats = {k: t.latency for k, t in timings.items()}
        latency[str(batch)] = {k: C.to_record(v) for k, v in stats.items()}
        ratio = timings["pruned"].ratio_to(timings["dense"])
        rows.append({"batch_size": batch, "dense_median_ms": stats["dense"].median_ms,
                     "dense_p90_ms": stats["dense"].p90_ms, "pruned_median_ms": stats["pruned"].median_ms,
                     "pruned_p90_ms": stats["pruned"].p90_ms, "ratio": round(ratio.median, 3),
                     "ratio_interval": [round(ratio.low, 3), round(ratio.high, 3)], "noisy": ratio.noisy,
                     "warmup": warmup, "runs": runs, "calls_per_round": timings["dense"].calls_per_round})
        print(f"batch {batch}: dense {stats['dense'].median_ms:.1f} ms, pruned {stats['pruned'].median_ms:.1f} ms, "
              f"ratio {ratio.median:.3f} [{ratio.low:.3f}, {ratio.high:.3f}]  [{C.uptime_line()}]")
    loads["at end"] = C.load_average()
    mac_ratio = info["pruned"]["macs"] / info["dense"]["macs"]

    env = C.env_record()
    notes = [
        "resnet50, random weights (`weights none`; no ResNet weights offline), gates uniform in [0, 1) (seed 0); "
        f"prune: gate importance, keep {KEEP}, global scope, round_to {ROUND_TO}, 224 px example input.",
        f"Prune time: `prune_model` wall time (dependency graph + step + fold + one forward check), median of "
        f"{repeats} runs, each on a fresh deep copy (copy not timed).",
        f"Latency: PyTorch eager CPU float32, inference_mode, torch threads {C.THREADS}, dense and pruned "
        "timed in the same interleaved rounds (order shuffled per round; short calls repeated to ~10 ms a visit, "
        "each visit counted by its fastest call); ratio pruned / dense per round, median [95% bootstrap interval].",
        C.EAGER_NOTE,
    ]
    md = C.md_header("ResNet50: prune time and PyTorch eager latency, keep 0.6 vs dense", env, loads, notes)
    md += "\n" + C.md_table(
        ["prune time median (s)", "runs (s)", "dependency graph (s)", "step (s)", "fold + check (s)"],
        [[f"{prune_median:.2f}", ", ".join(f"{t:.2f}" for t in times), breakdown.get("dependency_graph_s"),
          breakdown.get("step_s"), breakdown.get("fold_and_check_s")]]) + "\n\n"
    md += C.md_table(
        ["batch", "dense median / p90 ms", "pruned median / p90 ms", "eager ratio pruned/dense [95% CI]",
         "MAC ratio", "warm-up / rounds"],
        [[r["batch_size"], f"{C.ms(r['dense_median_ms'])} / {C.ms(r['dense_p90_ms'])}",
          f"{C.ms(r['pruned_median_ms'])} / {C.ms(r['pruned_p90_ms'])}",
          f"**{r['ratio']:.3f}** [{r['ratio_interval'][0]:.3f}, {r['ratio_interval'][1]:.3f}]"
          + (" noisy" if r["noisy"] else ""), f"{mac_ratio:.3f}", f"{r['warmup']} / {r['runs']}"]
         for r in rows]) + "\n"
    md += (f"\nParams {info['dense']['params'] / 1e6:.2f} M -> {info['pruned']['params'] / 1e6:.2f} M; "
           f"MACs {info['dense']['macs'] / 1e9:.2f} G -> {info['pruned']['macs'] / 1e9:.2f} G.\n")
    data = {"what": "resnet50 prune time (gate importance, keep 0.6) and torch eager CPU latency ratio",
            "command": C.command_line(), "quick": args.quick, "environment": env, "load_average": loads,
            "prune": {"median_s": round(prune_median, 3), "runs_s": [round(t, 3) for t in times],
                      "breakdown": breakdown, "settings": C.to_record(SETTINGS)},
            "models": info, "mac_ratio": round(mac_ratio, 3), "latency": latency, "rows": rows,
            "wall_s": round(time.perf_counter() - start, 1)}
    C.write_results(C.result_name("prune_speed", args.name), data, md)


if __name__ == "__main__":
    main()
