"""CPU speed of every training and inference path, contiguous (NCHW) against channels_last.

    .venv/bin/python benchmarks/cpu_speed.py --quick                  # calibration, ~2 min
    .venv/bin/python benchmarks/cpu_speed.py                          # phases: ~15-25 min on 2 busy cores
    .venv/bin/python benchmarks/cpu_speed.py --sections finetune      # default `facompress finetune`, A/B
    .venv/bin/python benchmarks/cpu_speed.py --sections threads       # 2 vs 1 intra-op threads

`phases`: images/s of each path facompress runs on the CPU, through the library's own functions on an
in-memory image set (random uint8 pixels, the Fashion-MNIST dataset class, random weights: speed does
not depend on values): `head` (feature caching + 2 passes of the classifier), `gates`, `bn`, `all`
(one epoch each, gated model), `recovery` (BatchNorm re-estimation + one `all` epoch of the ungated
model), `taylor` (forward + backward gradient scoring), `eval` (evaluation, batch 128) and the
`torch-cpu` bench backend (inference at batch 1 and 32). Every path is measured in the library's
interleaved rounds (`fa_compress.bench.interleave.run_rounds`; the bench backend through
`fa_compress.bench.compare.compare_steps`, as `facompress bench` times it): contiguous and
channels_last once each per round, in a shuffled order, after one untimed warm-up round, so load
from other processes hits both alike. The figure is the per-round speed-up (channels_last images/s
/ contiguous images/s), median over rounds with a 95% bootstrap interval (`ratio_stats`, the same
interval `facompress bench` reports), and its range.

`finetune`: `facompress finetune` with its defaults (Lite0, Fashion-MNIST, 64 px, head,gates,gates,
gates), `--limit-train` as given, run as a subprocess with `--memory-format contiguous` and `auto`,
interleaved A,B,B,A; wall time, the stage's own total_s and every phase's accuracies.

`threads`: the `gates` phase on Lite0 at 64 px at 2 and 1 intra-op threads, in the same interleaved rounds.

Results go to benchmarks/results/cpu_speed.json and .md; a run of some sections keeps the others'
results from earlier runs. CPU flags (/proc/cpuinfo) and load averages are recorded with each section.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import _common as C

C.set_threads()

import torch  # noqa: E402
from torch import nn  # noqa: E402

from fa_compress.bench.compare import compare_steps  # noqa: E402
from fa_compress.bench.interleave import run_rounds  # noqa: E402
from fa_compress.bench.stats import ratio_stats  # noqa: E402
from fa_compress.data import make_loader  # noqa: E402
from fa_compress.data.memory import InMemoryImageDataset  # noqa: E402
from fa_compress.gates import insert_gates  # noqa: E402
from fa_compress.models import build_model, get_head, get_spec  # noqa: E402
from fa_compress.train import TrainConfig  # noqa: E402
from fa_compress.train.distributed import Context  # noqa: E402
from fa_compress.train.memory_format import cpu_flags, describe_auto_cpu  # noqa: E402
from fa_compress.train.progress import phase_bar  # noqa: E402

# ONEDNN_MAX_CPU_ISA=AVX2 holds oneDNN to AVX2 kernels (standing in for an AVX2-only CPU): its own results file
ISA = os.environ.get("ONEDNN_MAX_CPU_ISA")
NAME = "cpu_speed" + (f".onednn_{ISA.lower()}" if ISA else "")
CTX = Context(device=torch.device("cpu"))
A, B = "contiguous", "channels_last"
KINDS = ("head", "gates", "bn", "all", "recovery", "taylor", "eval", "torch-cpu b1", "torch-cpu b32")
EAGER_ROUNDS = {1: 10, 32: 3}  # bench-backend rounds per phase round (batch: rounds), as many calls as before
FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")
# (arch, image size, images per measured pass): fewer images where a step is slow
CONFIGS = (("efficientnet_lite0", 64, 256), ("resnet18", 64, 256), ("resnet18", 128, 128),
           ("resnet50", 64, 128), ("resnet50", 128, 64))


def _dataset(arch: str, img: int, n: int) -> InMemoryImageDataset:
    g = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (n, 3, img, img), dtype=torch.uint8, generator=g)  # (N, 3, H, W)
    return InMemoryImageDataset(pixels, torch.randint(0, 10, (n,), generator=g), get_spec(arch).normalization,
                                flip=True)


def _paths(arch: str, ds: InMemoryImageDataset) -> dict[str, Callable[[nn.Module, str], float]]:
    """kind -> fn(fresh gated model, format) -> images/s, each through the library's own code (the
    bench backend's kinds are timed by `_eager`)."""
    from fa_compress.gates import fold_gates
    from fa_compress.pruning.pruner import taylor_gradients
    from fa_compress.pruning.recover import recover
    from fa_compress.train.features import train_head_on_features
    from fa_compress.train.loop import evaluate, run_image_phase

    n = len(ds)

    def cfg(fmt: str) -> TrainConfig:
        return TrainConfig(batch_size=32, memory_format=fmt)

    def head(model, fmt):
        with phase_bar(False) as bar:
            return train_head_on_features(model, get_head(model, arch), ds, cfg(fmt), CTX, bar, 0, None)[2]

    def phase(kind):
        def run(model, fmt):
            with phase_bar(False) as bar:
                return run_image_phase(model, get_head(model, arch), kind, 1, ds, cfg(fmt), CTX, bar)[2]
        return run

    def recovery(model, fmt):
        fold_gates(model)
        with phase_bar(False) as bar:
            t0 = time.perf_counter()
            recover(model, get_head(model, arch), ds, None, 1, cfg(fmt), CTX, bar, phase="all")
            return n / (time.perf_counter() - t0)

    def taylor(model, fmt):
        t0 = time.perf_counter()
        taylor_gradients(ds, "cpu", images=n, batch_size=32, memory_format=fmt)(model)
        return n / (time.perf_counter() - t0)

    def evaluation(model, fmt):
        loader = make_loader(ds, 128, shuffle=False)
        t0 = time.perf_counter()
        evaluate(model, loader, CTX, cfg(fmt))
        return n / (time.perf_counter() - t0)

    return {"head": head, "gates": phase("gates"), "bn": phase("bn"), "all": phase("all"),
            "recovery": recovery, "taylor": taylor, "eval": evaluation}


def _speedup(ips_a: Sequence[float], ips_b: Sequence[float]) -> dict[str, Any]:
    """Images/s of A and B from the same rounds, and B's speed-up over A per round (A's seconds per image
    / B's: a latency ratio, so the interval is the one `facompress bench` reports)."""
    speedup = ratio_stats([1 / v for v in ips_a], [1 / v for v in ips_b])
    ratios = [b / a for a, b in zip(ips_a, ips_b)]
    return {"ips_contiguous": list(ips_a), "ips_channels_last": list(ips_b), "speedup_median": speedup.median,
            "speedup_low": speedup.low, "speedup_high": speedup.high, "speedup_noisy": speedup.noisy,
            "speedup_min": min(ratios), "speedup_max": max(ratios),
            "median_ips_contiguous": statistics.median(ips_a), "median_ips_channels_last": statistics.median(ips_b)}


def _ab(fn: Callable[[str], float], rounds: int) -> dict[str, Any]:
    """`fn(format)` -> images/s, A and B once each per interleaved round, after one warm-up round."""
    ips = run_rounds({fmt: (lambda fmt=fmt: fn(fmt)) for fmt in (A, B)}, warmup=1, rounds=rounds)
    return _speedup(ips[A], ips[B])


def _eager(template: nn.Module, img: int, batch: int, rounds: int) -> dict[str, Any]:
    """The torch-cpu bench backend, A against B, timed as `facompress bench` times artifacts."""
    from fa_compress.bench.backends.torch_eager import TorchCpuBackend
    from fa_compress.gates import fold_gates

    model = copy.deepcopy(template)
    fold_gates(model)
    steps = {fmt: TorchCpuBackend(memory_format=fmt).load(model.eval()).step_fn(batch, img) for fmt in (A, B)}
    timings = compare_steps(steps, warmup=1, rounds=rounds)
    return _speedup(*([batch / s for s in timings[fmt].samples_s] for fmt in (A, B)))


def _template(arch: str) -> nn.Module:
    torch.manual_seed(0)
    return insert_gates(build_model(arch, num_classes=10, weights="none"))


def run_phases(configs: list[tuple[str, int, int]], kinds: list[str], rounds: int) -> list[dict[str, Any]]:
    rows = []
    for arch, img, n in configs:
        template, ds = _template(arch), _dataset(arch, img, n)
        paths = _paths(arch, ds)
        for kind in kinds:
            load = C.load_average()
            if kind.startswith("torch-cpu b"):
                batch = int(kind.removeprefix("torch-cpu b"))
                res = _eager(template, img, batch, rounds * EAGER_ROUNDS[batch])
            else:
                res = _ab(lambda fmt: paths[kind](copy.deepcopy(template), fmt), rounds)  # noqa: B023 - called now
            rows.append({"arch": arch, "img_size": img, "images": n, "kind": kind, "rounds": rounds,
                         "load_before": load, **res})
            print(f"  {arch} {img}px {kind:14s} contiguous {res['median_ips_contiguous']:7.1f} img/s  "
                  f"channels_last {res['median_ips_channels_last']:7.1f} img/s  x{res['speedup_median']:.2f} "
                  f"[{res['speedup_low']:.2f}, {res['speedup_high']:.2f}]  load {load[0]:.1f}", file=sys.stderr)
    return rows


def run_threads(rounds: int) -> dict[str, Any]:
    """The `gates` phase on Lite0 at 64 px, channels_last, at 2 and 1 intra-op threads, interleaved."""
    from fa_compress.train.loop import run_image_phase

    arch, template, ds = "efficientnet_lite0", _template("efficientnet_lite0"), _dataset("efficientnet_lite0", 64, 256)

    def seconds_per_image(threads: int) -> float:
        torch.set_num_threads(threads)
        model = copy.deepcopy(template)
        with phase_bar(False) as bar:
            return 1 / run_image_phase(model, get_head(model, arch), "gates", 1, ds, TrainConfig(), CTX, bar)[2]

    spi = run_rounds({"2": lambda: seconds_per_image(2), "1": lambda: seconds_per_image(1)}, warmup=1, rounds=rounds)
    torch.set_num_threads(C.THREADS)
    speedup = ratio_stats(spi["1"], spi["2"])  # 1-thread seconds / 2-thread seconds, per round
    ratios = [one / two for one, two in zip(spi["1"], spi["2"])]
    return {"ips_2_threads": [1 / v for v in spi["2"]], "ips_1_thread": [1 / v for v in spi["1"]],
            "speedup_2_over_1_median": speedup.median, "speedup_low": speedup.low, "speedup_high": speedup.high,
            "speedup_min": min(ratios), "speedup_max": max(ratios)}


def _finetune_once(fmt: str, limit_train: int, limit_test: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        cmd = [str(Path(sys.executable).parent / "facompress"), "finetune", "--memory-format", fmt, "--quiet",
               "--limit-train", str(limit_train), "--limit-test", str(limit_test), "--run", str(run)]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, env={**os.environ, "FACOMPRESS_RUNS": tmp})
        wall = time.perf_counter() - t0
        stage = json.loads((run / "run.json").read_text())["stages"]["finetune"]
    metrics = stage["metrics"]
    return {"format": fmt, "wall_s": wall, "total_s": metrics["total_s"], "memory_format": stage.get("memory_format"),
            "phases": [{k: v for k, v in p.items() if k.endswith("acc") or k in ("phase", "seconds", "images_per_s")}
                       for p in metrics["phases"]],
            "best": {k: v for k, v in metrics.items() if k.startswith("best")}}


def run_finetune(limit_train: int, limit_test: int, pairs: int) -> dict[str, Any]:
    """Default `facompress finetune`, contiguous (A) vs auto (B), interleaved A,B,B,A,..."""
    order = [(A, "auto") if i % 2 == 0 else ("auto", A) for i in range(pairs)]
    runs = []
    for pair in order:
        for fmt in pair:
            load = C.load_average()
            runs.append({**_finetune_once(fmt, limit_train, limit_test), "load_before": load})
            print(f"  finetune --memory-format {fmt}: {runs[-1]['wall_s']:.0f} s wall, load {load[0]:.1f}",
                  file=sys.stderr)
    a = [r["total_s"] for r in runs if r["format"] == A]
    b = [r["total_s"] for r in runs if r["format"] == "auto"]
    ratios = [x / y for x, y in zip(a, b)]
    return {"limit_train": limit_train, "limit_test": limit_test, "runs": runs,
            "speedup_median": statistics.median(ratios), "speedup_min": min(ratios), "speedup_max": max(ratios)}


def _markdown(data: dict[str, Any]) -> str:
    env = data["env"]
    chosen = describe_auto_cpu()
    commands = "\n".join(data.get("commands", []))
    lines = [C.md_header("CPU speed: contiguous vs channels_last", env, data.get("loads", {}),
                         command=commands, notes=[
        f"ONEDNN_MAX_CPU_ISA={ISA}: oneDNN held to these kernels." if ISA else "oneDNN at the CPU's own ISA.",
        f"CPU flags: {', '.join(data['cpu_flags']) or 'none of ' + ', '.join(FLAGS)}.",
        f"`--memory-format {chosen}`.",
        "Speed-up: (channels_last images/s) / (contiguous images/s), measured in the same interleaved round "
        "(order shuffled per round); median over rounds with its 95% bootstrap interval (rows measured before "
        "the intervals show their min-max range). Images/s are medians over rounds; other jobs shared the 2 "
        "cores, so absolute figures are noisy and the ratios are what count."])]
    if data.get("phases"):
        rows = [[f"{r['arch']} {r['img_size']} px", r["kind"], f"{r['median_ips_contiguous']:.1f}",
                 f"{r['median_ips_channels_last']:.1f}", f"**{r['speedup_median']:.2f}x**", _interval(r),
                 f"{r['load_before'][0]:.1f}"]
                for r in data["phases"]]
        lines += ["## Images/s per path", "", C.md_table(
            ["model", "path", "contiguous img/s", "channels_last img/s", "speed-up", "95% interval", "load"], rows),
            ""]
    if data.get("finetune"):
        f = data["finetune"]
        rows = [[r["format"], f"{r['wall_s']:.0f}", f"{r['total_s']:.0f}",
                 ", ".join(f"{p['phase']} {_pct(p.get('val_acc'))} / {_pct(p.get('test_acc'))}" for p in r["phases"]),
                 f"{r['load_before'][0]:.1f}"] for r in f["runs"]]
        lines += [f"## Default `facompress finetune` (--limit-train {f['limit_train']} --limit-test "
                  f"{f['limit_test']}), interleaved", "",
                  C.md_table(["--memory-format", "wall s", "stage total_s",
                              "validation / test accuracy after each phase", "load"], rows), "",
                  f"Speed-up (contiguous total_s / auto total_s, per pair): **{f['speedup_median']:.2f}x** "
                  f"[{f['speedup_min']:.2f}-{f['speedup_max']:.2f}].", ""]
    if data.get("threads"):
        t = data["threads"]
        lines += ["## Intra-op threads (Lite0 64 px, `gates` phase, channels_last)", "",
                  f"2 threads / 1 thread images/s: **{t['speedup_2_over_1_median']:.2f}x** {_interval(t)} "
                  f"(2 threads {statistics.median(t['ips_2_threads']):.1f} img/s, "
                  f"1 thread {statistics.median(t['ips_1_thread']):.1f} img/s).", ""]
    lines += [f"- {n}" for n in data.get("notes", [])]
    return "\n".join(lines)


def _interval(row: dict[str, Any]) -> str:
    """"[low, high]" of a speed-up; "min-max (range)" for rows measured before the intervals."""
    if "speedup_low" in row:
        return f"[{row['speedup_low']:.2f}, {row['speedup_high']:.2f}]" + (" noisy" if row.get("speedup_noisy") else "")
    return f"{row['speedup_min']:.2f}-{row['speedup_max']:.2f} (range)"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


NOTES = [
    "torch.compile was not adopted: compiling Lite0's `all` training step took 107 s here (first step, "
    "2 busy cores), longer than a whole default `gates` phase (6,000 images), so it cannot pay back within "
    "one phase (measured once with a throwaway script, not by this benchmark).",
    "oneDNN graph fusion (`torch.jit.enable_onednn_fusion`) applies to TorchScript graphs only; facompress "
    "trains and measures eager modules, so it does not apply. Inter-op threads do not run eager convolutions "
    "(they only parallelise independent TorchScript ops), so they were left at torch's default.",
    "bf16 autocast on this CPU gave no speed-up (measured when the memory format was chosen) and would change "
    "results, so it stays CUDA-only.",
    "The same paths with oneDNN held to AVX2 kernels (`ONEDNN_MAX_CPU_ISA=AVX2`, standing in for an AVX2-only "
    "CPU): results/cpu_speed.onednn_avx2.md.",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    C.add_options(parser)
    parser.add_argument("--sections", default="phases", help="comma-separated: phases, finetune, threads")
    parser.add_argument("--rounds", type=int, default=4, help="timed rounds per path (after one warm-up round)")
    parser.add_argument("--configs", default=None,
                        help="arch:size:images,... (default: " + ",".join(f"{a}:{s}:{n}" for a, s, n in CONFIGS) + ")")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--limit-train", type=int, default=6000, help="finetune section: training images")
    parser.add_argument("--limit-test", type=int, default=2000, help="finetune section: test images")
    parser.add_argument("--pairs", type=int, default=2, help="finetune section: A/B pairs")
    args = parser.parse_args()
    C.set_threads(args.threads)
    configs = ([(c.split(":")[0], int(c.split(":")[1]), int(c.split(":")[2])) for c in args.configs.split(",")]
               if args.configs else list(CONFIGS))
    rounds = 2 if args.quick else args.rounds
    if args.quick and not args.configs:
        configs = [("efficientnet_lite0", 64, 96), ("resnet18", 64, 64)]
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    name = C.result_name(NAME, args.name)
    path = C.RESULTS / f"{name}.json"
    data = json.loads(path.read_text()) if path.is_file() and not args.quick else {}
    loads = data.setdefault("loads", {})
    loads.pop("before", None), loads.pop("after", None)
    for section in sections:
        loads[f"before {section}"] = C.load_average()
        if section == "phases":
            new = run_phases(configs, args.kinds.split(","), rounds)
            redone = {(r["arch"], r["img_size"], r["kind"]) for r in new}  # rows of other configs are kept
            data["phases"] = [r for r in data.get("phases", []) if (r["arch"], r["img_size"], r["kind"]) not in redone]
            data["phases"] += new
        elif section == "finetune":
            data["finetune"] = run_finetune(args.limit_train, args.limit_test, 1 if args.quick else args.pairs)
        elif section == "threads":
            data["threads"] = run_threads(rounds)
        else:
            raise SystemExit(f"unknown section {section!r}; sections: phases, finetune, threads")
        loads[f"after {section}"] = C.load_average()
    commands = data.setdefault("commands", [])  # every command whose rows the file holds
    command = (f"ONEDNN_MAX_CPU_ISA={ISA} " if ISA else "") + C.command_line()
    if command not in commands:
        commands.append(command)
    data.update({"env": C.env_record(ONEDNN_MAX_CPU_ISA=ISA), "cpu_flags": sorted(f for f in FLAGS if f in cpu_flags()),
                 "auto": describe_auto_cpu(), "notes": NOTES})
    C.write_results(name + ("_quick" if args.quick and not args.name else ""), data, _markdown(data))


if __name__ == "__main__":
    main()
