"""GPU check: ResNet50 dense against a keep-0.6 prune on PyTorch CUDA FP32 and FP16 (channels_last).

What it measures, in one process so that A and B share the machine state:
- resnet50 (weights none, 1000 classes) and a copy pruned by torch-pruning with random channel
  scores at keep 0.6 (pruning ratio 0.4), `round_to` 8, the classifier kept whole;
- latency median/p90 and throughput on facompress's `torch-cuda-fp32` and `torch-cuda-fp16`
  backends (channels_last; FP16 = `.half()` weights and inputs) at batch 1 and 64, after warm-up,
  each run ending in `torch.cuda.synchronize()`, under `torch.inference_mode()`;
- one AMP training step (autocast FP16 + GradScaler, SGD, channels_last) timed for each model;
- the batch-64 FP16 throughput ratio pruned / dense (target >= 1.8).
Results go to `benchmarks/results/gpu_check-<GPU name>.json`.

Run it with `bash benchmarks/gpu_check.sh` on a CUDA machine (a few minutes on an H100), or here,
tiny and on the CPU, with `python benchmarks/gpu_check.py --dry-run` (used by the tests).
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

TARGET_RATIO = 1.8  # batch-64 FP16 throughput, pruned / dense


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU: checks the script, not the GPU")
    p.add_argument("--arch", default="resnet50")
    p.add_argument("--keep", type=float, default=0.6)
    p.add_argument("--round-to", type=int, default=8)
    p.add_argument("--img-size", type=int, default=None, help="default 224 (32 with --dry-run)")
    p.add_argument("--batch-sizes", default=None, help="default 1,64 (1,2 with --dry-run)")
    p.add_argument("--warmup", type=int, default=None, help="default 10 (1 with --dry-run)")
    p.add_argument("--runs", type=int, default=None, help="default 50 (3 with --dry-run)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: torch's; 1 with --dry-run)")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = p.parse_args(argv)
    if args.dry_run:
        args.device = "cpu"
    dry = args.dry_run
    args.img_size = args.img_size or (32 if dry else 224)
    args.batch_sizes = tuple(int(v) for v in (args.batch_sizes or ("1,2" if dry else "1,64")).split(","))
    args.warmup = args.warmup if args.warmup is not None else (1 if dry else 10)
    args.runs = args.runs or (3 if dry else 50)
    args.threads = args.threads or (1 if dry else None)  # one thread is steadiest on a shared CPU
    return args


def build_models(arch: str, keep: float, round_to: int, img_size: int) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(dense, pruned): torchvision `arch` without weights, and a random-score torch-pruning prune of a copy."""
    import torch_pruning as tp
    import torchvision

    torch.manual_seed(0)
    dense = getattr(torchvision.models, arch)(weights=None).eval()
    pruned = copy.deepcopy(dense)
    example = torch.zeros(1, 3, img_size, img_size)  # (1, 3, H, W)
    pruner = tp.pruner.MetaPruner(pruned, example, importance=tp.importance.RandomImportance(),
                                  pruning_ratio=1.0 - keep, ignored_layers=[pruned.fc], round_to=round_to)
    pruner.step()
    return dense, pruned.eval()


def measure_latencies(models: dict[str, torch.nn.Module], backends: list[str], args) -> list[dict]:
    """Every (backend, batch, model), dense and pruned interleaved so both see the same machine state."""
    from fa_compress.bench.backends import get_backend
    from fa_compress.bench.stats import throughput_ips

    rows = []
    for name in backends:
        backend = get_backend(name)
        runners = {m: backend.load(model) for m, model in models.items()}
        for bs in args.batch_sizes:
            for m, runner in runners.items():
                s = backend.measure(runner, bs, args.img_size, args.warmup, args.runs)
                rows.append({"model": m, "backend": name, "batch_size": bs, **asdict(s),
                             "throughput_ips": round(throughput_ips(bs, s.median_ms), 2), "settings": runner.settings})
                print(f"{name:16s} batch {bs:3d} {m:7s} median {s.median_ms:9.3f} ms  p90 {s.p90_ms:9.3f} ms  "
                      f"{rows[-1]['throughput_ips']:10.1f} img/s", flush=True)
        del runners
    return rows


def amp_train_step(model: torch.nn.Module, device: str, batch_size: int, img_size: int, steps: int) -> dict:
    """Median time of an AMP training step (FP16 + GradScaler on CUDA, bfloat16 on the CPU)."""
    model = copy.deepcopy(model).train().to(device, memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    dtype = torch.float16 if device == "cuda" else torch.bfloat16
    scaler = torch.amp.GradScaler(device, enabled=device == "cuda")
    x = torch.randn(batch_size, 3, img_size, img_size, device=device).to(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch_size,), device=device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    times, loss = [], torch.tensor(float("nan"))
    for i in range(steps + 2):  # two warm-up steps
        sync()
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device, dtype=dtype):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        sync()
        if i >= 2:
            times.append(time.perf_counter() - start)
    return {"batch_size": batch_size, "autocast_dtype": str(dtype).removeprefix("torch."),
            "median_ms": round(1e3 * statistics.median(times), 3), "steps": steps,
            "loss": float(loss.detach()), "loss_finite": bool(torch.isfinite(loss.detach()))}


def ratios(rows: list[dict]) -> dict[str, float]:
    """Throughput pruned / dense for every (backend, batch)."""
    by = {(r["backend"], r["batch_size"], r["model"]): r["throughput_ips"] for r in rows}
    return {f"{b}@{bs}": round(by[(b, bs, "pruned")] / by[(b, bs, "dense")], 3)
            for (b, bs, m) in by if m == "dense" and (b, bs, "pruned") in by}


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    from fa_compress.bench.environment import environment
    from fa_compress.models.complexity import count_macs, count_params

    backends = ["torch-cuda-fp32", "torch-cuda-fp16"] if args.device == "cuda" else ["torch-cpu"]
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA GPU visible to torch; run with --device cpu --dry-run to check the script",
              file=sys.stderr)
        raise SystemExit(2)
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    dense, pruned = build_models(args.arch, args.keep, args.round_to, args.img_size)
    models = {"dense": dense, "pruned": pruned}
    sizes = {m: {"params": count_params(model), "macs": count_macs(model, args.img_size)}
             for m, model in models.items()}
    print(f"{args.arch}: params {sizes['dense']['params'] / 1e6:.2f} M -> {sizes['pruned']['params'] / 1e6:.2f} M, "
          f"MACs {sizes['dense']['macs'] / 1e9:.3f} G -> {sizes['pruned']['macs'] / 1e9:.3f} G", flush=True)
    rows = measure_latencies(models, backends, args)
    train = {m: amp_train_step(model, args.device, max(args.batch_sizes), args.img_size, 1 if args.dry_run else 10)
             for m, model in models.items()}
    env = environment()
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    result = {"script": "benchmarks/gpu_check.py", "dry_run": args.dry_run, "device": args.device,
              "env": asdict(env), "settings": settings, "models": sizes, "latencies": rows, "train_step": train,
              "throughput_ratio_pruned_over_dense": ratios(rows), "target_fp16_ratio": TARGET_RATIO,
              "wall_s": round(time.perf_counter() - t0, 1)}
    write_result(result, args.out, env.gpu_name if args.device == "cuda" else f"cpu-{env.cpu_name}", args.dry_run)
    print_headline(result, args)
    return result


def write_result(result: dict, out: Path, device_name: str, dry_run: bool) -> Path:
    slug = re.sub(r"[^A-Za-z0-9]+", "_", device_name or "unknown").strip("_")
    path = Path(out) / f"gpu_check-{slug}{'-dry-run' if dry_run else ''}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"results: {path}")
    result["path"] = str(path)
    return path


def print_headline(result: dict, args) -> None:
    r = result["throughput_ratio_pruned_over_dense"]
    bs = max(args.batch_sizes)
    key = f"torch-cuda-fp16@{bs}" if args.device == "cuda" else f"torch-cpu@{bs}"
    verdict = "meets" if r.get(key, 0) >= TARGET_RATIO else "misses"
    print(f"batch-{bs} {'FP16' if args.device == 'cuda' else 'CPU FP32 (dry run)'} throughput ratio pruned/dense: "
          f"{r.get(key, float('nan')):.2f} ({verdict} the {TARGET_RATIO} target)")


if __name__ == "__main__":
    main()
