"""Which INT8 form does onnxruntime run fastest on this CPU? Latency of each form against FP32.

    python benchmarks/int8_forms.py                       # resnet18, 64/128/224 px, batch 1 and 8
    python benchmarks/int8_forms.py --sizes 64 --runs 10  # quick look
    python benchmarks/int8_forms.py --run runs/<run>      # a run's pruned.onnx (e.g. Lite0 at 0.5 MACs, 64 px),
                                                          # calibrated on its training images, with accuracy

For each image size the FP32 resnet18 (torchvision, random weights: latency does not depend on the
weights) is exported once and quantised into every form below, calibrated on the same images. Then,
for each batch size, all sessions are timed round-robin (one call of each per round, after warm-up),
so that load from other processes on a shared machine hits every form alike; each form's latency is
reported as median and p90, and as its latency ratio to FP32 (per round: form / FP32, median with a 95%
bootstrap interval; < 1: faster than FP32), with the library's timing (`fa_compress.bench.interleave`)
and statistics. Results go to benchmarks/results/int8_forms.json (with --run: int8_forms_run.{json,md},
with each form's top-1 on the run's test split, n, Wilson interval and McNemar's test against FP32).

The forms vary one factor at a time around the TensorRT-facing form "qdq" (QDQ, int8 activations,
symmetric, per-channel weights, float biases, pre-processed), plus onnxruntime's QOperator forms; with
--run, around "qdq-u8" (what `export --int8` writes for onnxruntime CPU), with and without its channel
padding.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from fa_compress.bench.environment import environment

from ._common import RESULTS
from fa_compress.machine import cpu_flags
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
U8 = INT8_FORMS["qdq-u8"]  # channels padded for onnxruntime's symmetric kernels (`Int8Form.pad_channels`)
# For depthwise-heavy models (EfficientNet-Lite): the channel padding, what to leave in float, the other knobs.
RUN_FORMS = [
    TENSORRT_FORM, U8, replace(U8, name="qdq-u8-unpadded", pad_channels=False), INT8_FORMS["qdq-u8-rr"],
    INT8_FORMS["qoperator-u8"],
    replace(U8, name="qdq-u8-zp128", symmetric_activations=True),  # uint8 activations, zero point 128
    replace(U8, name="qdq-u8-float-depthwise", float_depthwise=True),
    replace(U8, name="qdq-u8-float-head", float_ops=("Gemm",)),
    replace(U8, name="qdq-u8-int32-bias", quantize_bias=True),
    replace(U8, name="qdq-u8-u8-weights", weights="u8"),
    replace(U8, name="qdq-u8-per-tensor", per_channel=False),
    _variant("qdq-float-depthwise", float_depthwise=True),
]


def time_forms(paths: dict[str, Path], batch_size: int, img_size: int, warmup: int, runs: int,
               threads: int) -> list[dict]:
    """Each file's latency on onnxruntime CPU and its ratio to "fp32", all timed in the same interleaved
    rounds by the library (`fa_compress.bench.suite.measure_group`, what `facompress bench` runs)."""
    from fa_compress.bench.backends.ort import OrtCpuBackend
    from fa_compress.bench.suite import Artifact, Timing, measure_group

    backend = OrtCpuBackend(intra_op_threads=threads or None)
    skipped: list = []
    group = [Artifact(name, "onnx", path) for name, path in paths.items()]
    results = measure_group(backend, group, Timing((batch_size,), img_size, max(1, warmup), runs), "fp32", skipped)
    if skipped:
        raise RuntimeError(f"onnxruntime could not run: {skipped}")
    rows = []
    for name, (r,) in results.items():
        q = r.ratio
        rows.append({"form": name, "batch_size": batch_size, "median_ms": r.median_ms, "p90_ms": r.p90_ms,
                     "ratio_vs_fp32": round(q.median, 3) if q else 1.0,
                     "ratio_interval": [round(q.low, 3), round(q.high, 3)] if q else [1.0, 1.0],
                     "noisy": bool(q and q.noisy), "calls_per_round": r.calls_per_round})
    return rows


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
    return [{**row, "img_size": img_size, "size_ratio_vs_fp32": round(sizes[row["form"]] / sizes["fp32"], 3)}
            for b in batch_sizes for row in time_forms(paths, b, img_size, warmup, runs, threads)]


def _top1(session: object, test: object) -> list[bool]:
    """Per-image top-1 correctness of `session` on the (images, labels) batches of `test`."""
    right: list[bool] = []
    for x, y in test:  # type: ignore[attr-defined]
        name = session.get_inputs()[0].name  # type: ignore[attr-defined]
        logits = session.run(None, {name: x.numpy()})[0]  # type: ignore[attr-defined]  # (N, classes)
        right += (logits.argmax(1) == y.numpy()).tolist()
    return right


def bench_run_file(run_dir: Path, batch_sizes: list[int], forms: list[Int8Form], warmup: int, runs: int,
                   calib: int, threads: int, work: Path) -> tuple[list[dict], dict]:
    """Every form of the run's pruned.onnx (finetuned.onnx where there is none): latency against it on
    onnxruntime CPU, and top-1 on the run's test split with a paired test against FP32."""
    from fa_compress.accuracy import Accuracy, compare_paired
    from fa_compress.run import Run
    from fa_compress.data import dataset_of_run

    run = Run.open(run_dir)
    fp32 = next(p for p in (run.path / "pruned.onnx", run.path / "finetuned.onnx") if p.is_file())
    bundle = dataset_of_run(run)
    calib_images = torch.stack([bundle.train[i][0] for i in range(min(calib, len(bundle.train)))])  # (N, 3, H, W)
    img_size = int(calib_images.shape[-1])
    paths, sizes = {"fp32": fp32}, {"fp32": fp32.stat().st_size}
    for form in forms:
        q = quantize_int8(fp32, work / f"{fp32.stem}_{form.name}.onnx", calib_images, form=form)
        paths[form.name], sizes[form.name] = q.path, q.path.stat().st_size
    sessions = {name: _session(p, threads) for name, p in paths.items()}
    test = torch.utils.data.DataLoader(bundle.test, batch_size=100, shuffle=False)
    right = {name: _top1(s, test) for name, s in sessions.items()}
    accuracy = {}
    for name, r in right.items():
        a, c = Accuracy.of(sum(r), len(r)), compare_paired(r, right["fp32"])
        accuracy[name] = {"top1_pct": round(100 * a.value, 2), "interval_pct": [round(100 * a.low, 2),
                          round(100 * a.high, 2)], "n_images": a.n, "drop_points": round(-100 * c.diff, 2),
                          "mcnemar_p": round(c.p_value, 4), "within_noise": not c.significant}
    del sessions  # the timing opens its own, as `facompress bench` does
    rows = [{**row, "img_size": img_size, "size_ratio_vs_fp32": round(sizes[row["form"]] / sizes["fp32"], 3)}
            for b in batch_sizes for row in time_forms(paths, b, img_size, warmup, runs, threads)]
    return rows, {"run": str(run_dir), "fp32_file": fp32.name, "accuracy": accuracy}


def _markdown(result: dict) -> str:
    acc = result.get("accuracy") or {}
    lines = [f"# INT8 forms on onnxruntime CPU: {result['what']}", "",
             f"CPU {result['environment']['cpu_name']}, flags {', '.join(result['cpu_flags'])}; onnxruntime "
             f"{result['onnxruntime']}, threads {result['onnxruntime_threads']}; load average "
             f"{result['load_average_1_5_15']['before']} before, {result['load_average_1_5_15']['after']} after.", "",
             "| form | px | batch | median ms | × FP32 [95% CI] | size × FP32 | top-1 % [95% CI] (n) | drop, points |",
             "|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        a = acc.get(r["form"])
        top1 = f"{a['top1_pct']:.2f} [{a['interval_pct'][0]:.2f}, {a['interval_pct'][1]:.2f}] ({a['n_images']})" if a else "—"
        drop = (f"{a['drop_points']:+.2f} ({'noise' if a['within_noise'] else 'significant'})" if a else "—")
        ratio = f"{r['ratio_vs_fp32']:.3f} [{r['ratio_interval'][0]:.3f}, {r['ratio_interval'][1]:.3f}]"
        lines.append(f"| {r['form']} | {r['img_size']} | {r['batch_size']} | {r['median_ms']:.3f} | "
                     f"{ratio}{' noisy' if r['noisy'] else ''} | {r['size_ratio_vs_fp32']:.3f} | {top1} | {drop} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 224])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--calib", type=int, default=32, help="calibration images per form")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0 = torch's count)")
    parser.add_argument("--forms", nargs="+", default=None, help="form names (default: all for the mode)")
    parser.add_argument("--run", type=Path, default=None,
                        help="quantise this run's pruned.onnx with real calibration images and score accuracy")
    parser.add_argument("--out", type=Path, default=None,
                        help="default results/int8_forms.json (resnet18) or results/int8_forms_run.json (--run)")
    args = parser.parse_args()
    catalogue = RUN_FORMS if args.run else FORMS
    forms = [f for f in catalogue if args.forms is None or f.name in args.forms]
    args.out = args.out or RESULTS / ("int8_forms_run.json" if args.run else "int8_forms.json")

    start, load_before = time.perf_counter(), os.getloadavg()
    rows: list[dict] = []
    extra: dict = {}
    with tempfile.TemporaryDirectory(prefix="int8-forms-") as tmp:
        if args.run:
            args.calib = max(args.calib, 256)  # as `facompress export` calibrates
            rows, extra = bench_run_file(args.run, args.batches, forms, args.warmup, args.runs, args.calib,
                                         args.threads, Path(tmp))
        else:
            for img_size in args.sizes:
                rows += bench_size(img_size, args.batches, forms, args.warmup, args.runs, args.calib,
                                   args.threads, Path(tmp))

    print(f"{'form':28s} {'px':>4s} {'batch':>5s} {'median ms':>10s} {'p90 ms':>8s} {'vs FP32':>8s} {'size':>6s}")
    for r in rows:
        print(f"{r['form']:28s} {r['img_size']:4d} {r['batch_size']:5d} {r['median_ms']:10.2f} {r['p90_ms']:8.2f} "
              f"{r['ratio_vs_fp32']:7.2f}x {r['size_ratio_vs_fp32']:5.2f}x")
    import onnxruntime

    what = (f"{extra['fp32_file']} of {args.run} (real calibration and test images)" if args.run
            else "resnet18 (random weights)")
    result = {
        "what": f"onnxruntime CPU latency of INT8 forms of {what} vs FP32, interleaved timing",
        **extra,
        "environment": to_record(environment()),
        "cpu_flags": list(cpu_flags()),
        "onnxruntime_threads": args.threads or f"torch's ({torch.get_num_threads()})",
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
    args.out.with_suffix(".md").write_text(_markdown(result))
    print(f"wrote {args.out} ({result['wall_s']} s)")


if __name__ == "__main__":
    main()
