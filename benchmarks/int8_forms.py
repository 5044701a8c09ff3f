"""Which INT8 form does onnxruntime run fastest on this CPU? Latency of each form against FP32.

    python benchmarks/int8_forms.py                       # resnet18, 64/128/224 px, batch 1 and 8
    python benchmarks/int8_forms.py --sizes 64 --runs 10  # quick look

For each image size the FP32 resnet18 (torchvision, random weights: latency does not depend on the
weights) is exported once and quantised into every form below, calibrated on the same images. Then,
for each batch size, all sessions are timed round-robin (one call of each per round, after warm-up),
so that load from other processes on a shared machine hits every form alike; each form's latency is
reported as median and p90, and as the ratio of its median to FP32's median measured in the same
rounds (ratio < 1: faster than FP32). Results go to benchmarks/results/int8_forms.json.

The forms vary one factor at a time around the TensorRT-facing form "qdq" (QDQ, int8 activations,
symmetric, per-channel weights, float biases, pre-processed), plus onnxruntime's QOperator forms.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from fa_compress.bench.environment import environment
from fa_compress.bench.stats import summarize
from fa_compress.export import INT8_FORMS, Int8Form, export_onnx, onnx_metadata, quantize_int8, to_record

TENSORRT_FORM = INT8_FORMS["qdq"]  # s8 symmetric activations and weights, per-channel, float biases


def _variant(name: str, **changes: object) -> Int8Form:
    return replace(TENSORRT_FORM, name=name, **changes)


FORMS = [
    TENSORRT_FORM,
    _variant("qdq-int32-bias", quantize_bias=True),
    _variant("qdq-per-tensor", per_channel=False),
    _variant("qdq-asym", symmetric_activations=False),
    _variant("qdq-reduce-range", reduce_range=True),
    _variant("qdq-no-preprocess", preprocess=False),
    _variant("qdq-u8", activations="u8", symmetric_activations=False),
    _variant("qdq-u8-int32-bias", activations="u8", symmetric_activations=False, quantize_bias=True),
    INT8_FORMS["qoperator-u8"],
    _variant("qoperator-s8", quant_format="qoperator", quantize_bias=True),
    _variant("qoperator-u8-per-tensor", quant_format="qoperator", activations="u8", symmetric_activations=False,
             per_channel=False, quantize_bias=True),
    _variant("qoperator-u8-reduce-range", quant_format="qoperator", activations="u8", symmetric_activations=False,
             reduce_range=True, quantize_bias=True),
]


def cpu_flags() -> list[str]:
    """The SIMD flags that decide which int8 kernels onnxruntime's MLAS can use."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = set(re.search(r"^flags\s*:(.*)$", text, re.M).group(1).split())  # type: ignore[union-attr]
    return sorted(f for f in flags if f in {"avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8"})


def time_round_robin(sessions: dict[str, object], batch: np.ndarray, warmup: int, runs: int) -> dict[str, list[float]]:
    """Per-session call latencies (s), one call of each session per round, after `warmup` rounds."""
    feeds = {name: {s.get_inputs()[0].name: batch} for name, s in sessions.items()}  # type: ignore[attr-defined]
    samples: dict[str, list[float]] = {name: [] for name in sessions}
    for r in range(warmup + runs):
        for name, s in sessions.items():
            t0 = time.perf_counter()
            s.run(None, feeds[name])  # type: ignore[attr-defined]
            if r >= warmup:
                samples[name].append(time.perf_counter() - t0)
    return samples


def _session(path: Path, threads: int) -> object:
    """A CPU session; worker threads do not spin after a call, so idle sessions leave the cores alone."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads  # 0 = onnxruntime's default (one per physical core)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def bench_size(img_size: int, batch_sizes: list[int], forms: list[Int8Form], warmup: int, runs: int,
               calib: int, threads: int, work: Path) -> list[dict]:
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=1000).eval()
    fp32 = work / f"resnet18_{img_size}.onnx"
    meta = onnx_metadata(classes=[str(i) for i in range(1000)], img_size=img_size, mean=(0.5,) * 3, std=(0.5,) * 3)
    export_onnx(model, fp32, img_size=img_size, metadata=meta)
    calib_images = torch.randn(calib, 3, img_size, img_size)  # (N, 3, H, W); latency does not depend on them
    paths = {"fp32": fp32}
    sizes = {"fp32": fp32.stat().st_size}
    for form in forms:
        q = quantize_int8(fp32, work / f"resnet18_{img_size}_{form.name}.onnx", calib_images, form=form)
        paths[form.name], sizes[form.name] = q.path, q.path.stat().st_size
    sessions = {name: _session(p, threads) for name, p in paths.items()}
    rows = []
    for b in batch_sizes:
        batch = np.random.default_rng(0).standard_normal((b, 3, img_size, img_size), dtype=np.float32)  # (B, 3, H, W)
        samples = time_round_robin(sessions, batch, warmup, runs)
        base = summarize(samples["fp32"])
        for name, s in samples.items():
            stats = summarize(s)
            rows.append({"img_size": img_size, "batch_size": b, "form": name, "median_ms": stats.median_ms,
                         "p90_ms": stats.p90_ms, "ratio_vs_fp32": round(stats.median_ms / base.median_ms, 3),
                         "size_ratio_vs_fp32": round(sizes[name] / sizes["fp32"], 3)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 224])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--calib", type=int, default=32, help="calibration images per form")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0 = default)")
    parser.add_argument("--forms", nargs="+", default=[f.name for f in FORMS])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "int8_forms.json")
    args = parser.parse_args()
    forms = [f for f in FORMS if f.name in args.forms]

    start, load_before = time.perf_counter(), os.getloadavg()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="int8-forms-") as tmp:
        for img_size in args.sizes:
            rows += bench_size(img_size, args.batches, forms, args.warmup, args.runs, args.calib, args.threads,
                               Path(tmp))

    print(f"{'form':28s} {'px':>4s} {'batch':>5s} {'median ms':>10s} {'p90 ms':>8s} {'vs FP32':>8s} {'size':>6s}")
    for r in rows:
        print(f"{r['form']:28s} {r['img_size']:4d} {r['batch_size']:5d} {r['median_ms']:10.2f} {r['p90_ms']:8.2f} "
              f"{r['ratio_vs_fp32']:7.2f}x {r['size_ratio_vs_fp32']:5.2f}x")
    import onnxruntime

    result = {
        "what": "onnxruntime CPU latency of INT8 forms of resnet18 (random weights) vs FP32, round-robin timing",
        "environment": to_record(environment()),
        "cpu_flags": cpu_flags(),
        "onnxruntime_threads": args.threads or "default (intra-op = physical cores)",
        "onnxruntime_spinning": "off (session.intra_op.allow_spinning=0)",
        "os_cpu_count": os.cpu_count(),
        "onnxruntime": onnxruntime.__version__,
        "settings": {"sizes": args.sizes, "batches": args.batches, "warmup": args.warmup, "runs": args.runs,
                     "calib_images": args.calib},
        "forms": [to_record(f) for f in forms],
        "rows": rows,
        "wall_s": round(time.perf_counter() - start, 1),
        # other processes on a shared machine: the round-robin timing spreads their load over all forms
        "load_average_1_5_15": {"before": [round(v, 2) for v in load_before],
                                "after": [round(v, 2) for v in os.getloadavg()]},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out} ({result['wall_s']} s)")


if __name__ == "__main__":
    main()
