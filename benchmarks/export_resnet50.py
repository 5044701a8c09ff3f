"""ResNet50 dense and keep 0.6: export time, file size, parity, ORT vs eager, INT8 vs FP32.

    .venv/bin/python benchmarks/export_resnet50.py           # full: ~5-8 min on 2 busy cores
    .venv/bin/python benchmarks/export_resnet50.py --quick   # calibration

Models: torchvision resnet50 with random weights (`weights none`: no ResNet weights offline; latency
does not depend on weight values), dense, and pruned to keep 0.6 with facompress gate importance
(gates uniform in [0, 1), global scope, round_to 8) and folded.

- Export: fa_compress.export.export_onnx (TorchScript exporter, onnxslim, opset 17, one file);
  export time is the median of a few exports.
- Parity: fa_compress.export.check_parity against the PyTorch model, at batch 1 and 8, on
  random-normal images (acceptable for a random-weight model; the Lite0 + Fashion-MNIST parity on
  real images is measured elsewhere).
- INT8: fa_compress.export.quantize_int8, calibrated on a few dozen random-normal images, in the
  CPU forms the module offers ("qdq-u8", "qoperator-u8": uint8 activations, the fastest on x86 per
  benchmarks/int8_forms.py) and the TensorRT form ("qdq", int8 activations). Accuracy drop cannot be
  measured on random weights; the Lite0 run reports it.
- Latency: PyTorch eager, ORT FP32 and every INT8 form, all timed in the same interleaved rounds by the
  library (`fa_compress.bench.compare.compare_steps`, as `facompress bench` does), batch 1 and 8; every
  ratio (ORT / eager, INT8 / FP32) is taken per round, median with a 95% bootstrap interval.

Writes benchmarks/results/export_resnet50.json and .md.
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import torch

from . import _common as C

C.set_threads()

from fa_compress.bench.compare import compare_steps  # noqa: E402
from fa_compress.export import (  # noqa: E402
    FP32_TOLERANCE, INT8_FORMS, INT8_TOLERANCE, check_parity, export_onnx, onnx_metadata, quantize_int8,
)
from fa_compress.gates import insert_gates, iter_gates  # noqa: E402
from fa_compress.models import build_model, get_head  # noqa: E402
from fa_compress.models.complexity import count_macs, count_params  # noqa: E402
from fa_compress.pruning.pruner import PruneSettings, prune_model  # noqa: E402

ARCH, IMG, KEEP, ROUND_TO = "resnet50", 224, 0.6, 8
CPU_FORMS = ("qdq-u8", "qoperator-u8")  # uint8 activations: the fast forms on x86 CPUs (int8_forms.py)
TRT_FORM = "qdq"  # int8 activations, zero point 0: what TensorRT reads; slow on onnxruntime's CPU provider
WORK = Path(__file__).resolve().parent / "work" / "export_resnet50"
# The gates are drawn at random (a stand-in for learned ones), so they are ranked by value, without
# training images; per-MAC weighting off, as when the committed results were measured.
GATE_RANKING = {"importance": "gate", "gate_score": "value", "gate_per_mac": 0.0}


def build_models(seed: int = 0) -> dict[str, torch.nn.Module]:
    torch.manual_seed(seed)
    dense = build_model(ARCH, 1000, weights="none").eval()
    gated = insert_gates(copy.deepcopy(dense))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, bn in iter_gates(gated):
            bn.gate.uniform_(0.0, 1.0, generator=gen)
    example = torch.randn(1, 3, IMG, IMG)  # (1, 3, H, W)
    pruned = prune_model(gated, get_head(gated, ARCH), PruneSettings(keep=KEEP, round_to=ROUND_TO, **GATE_RANKING),
                         example).eval()
    return {"dense": dense, "keep0.6": pruned}


def _ratio(timings: dict, name: str, reference: str) -> tuple[float, list[float]]:
    """Per-round latency ratio name / reference: median and 95% interval, rounded."""
    r = timings[name].ratio_to(timings[reference])
    return round(r.median, 3), [round(r.low, 3), round(r.high, 3)]


def latency_row(timings: dict, name: str, batch: int, forms: tuple[str, ...]) -> tuple[dict, list]:
    """One model's row at one batch size (JSON) and its Markdown cells: eager, ORT FP32, INT8 forms."""
    lat = {k: t.latency for k, t in timings.items() if k.startswith(f"{name}/")}
    eager, fp32 = lat[f"{name}/eager"], lat[f"{name}/ort-fp32"]
    cpu_best = min(CPU_FORMS, key=lambda f: lat[f"{name}/ort-{f}"].median_ms)
    ort_vs_eager, ort_vs_eager_ci = _ratio(timings, f"{name}/ort-fp32", f"{name}/eager")
    row = {"batch_size": batch, "model": name, "eager_median_ms": eager.median_ms, "eager_p90_ms": eager.p90_ms,
           "ort_fp32_median_ms": fp32.median_ms, "ort_fp32_p90_ms": fp32.p90_ms, "ort_vs_eager": ort_vs_eager,
           "ort_vs_eager_interval": ort_vs_eager_ci, "fastest_int8_form": cpu_best,
           "calls_per_round": timings[f"{name}/eager"].calls_per_round}
    for form in forms:
        q = lat[f"{name}/ort-{form}"]
        row[f"int8_{form}_median_ms"], row[f"int8_{form}_p90_ms"] = q.median_ms, q.p90_ms
        row[f"int8_{form}_vs_fp32"], row[f"int8_{form}_vs_fp32_interval"] = _ratio(
            timings, f"{name}/ort-{form}", f"{name}/ort-fp32")
    ci = lambda key: f"[{row[key][0]:.2f}, {row[key][1]:.2f}]"  # noqa: E731
    cells = [batch, name, f"{C.ms(eager.median_ms)} / {C.ms(eager.p90_ms)}",
             f"{C.ms(fp32.median_ms)} / {C.ms(fp32.p90_ms)}", f"**{ort_vs_eager:.2f}** {ci('ort_vs_eager_interval')}",
             f"{cpu_best}: {C.ms(row[f'int8_{cpu_best}_median_ms'])} / {C.ms(row[f'int8_{cpu_best}_p90_ms'])}",
             f"**{row[f'int8_{cpu_best}_vs_fp32']:.2f}** {ci(f'int8_{cpu_best}_vs_fp32_interval')}",
             ", ".join(f"{f} {row[f'int8_{f}_vs_fp32']:.2f}" for f in forms if f != cpu_best)]
    return row, cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    C.add_options(parser)
    args = parser.parse_args()
    C.set_threads(args.threads)
    exports_n = 1 if args.quick else 3
    calib_n = 8 if args.quick else 32
    parity_n = 8 if args.quick else 16
    plan = {1: (2, 4), 8: (1, 2)} if args.quick else {1: (4, 25), 8: (2, 10)}  # batch: (warmup, runs)
    forms = (TRT_FORM, *CPU_FORMS)

    loads = {"at start": C.load_average()}
    print(C.uptime_line())
    start = time.perf_counter()
    models = build_models()
    WORK.mkdir(parents=True, exist_ok=True)
    meta = onnx_metadata(classes=[str(i) for i in range(1000)], img_size=IMG, mean=(0.485, 0.456, 0.406),
                         std=(0.229, 0.224, 0.225), model_name=ARCH)
    gen = torch.Generator().manual_seed(1)
    parity_images = torch.randn(parity_n, 3, IMG, IMG, generator=gen)  # (N, 3, H, W), random normal
    calib_images = torch.randn(calib_n, 3, IMG, IMG, generator=gen)  # (N, 3, H, W), random normal

    info: dict[str, dict] = {}
    paths: dict[str, dict[str, Path]] = {}
    for name, m in models.items():
        fp32 = WORK / f"{ARCH}_{name}.onnx"
        export_times, exported = [], None
        for _ in range(exports_n):
            exported = export_onnx(m, fp32, img_size=IMG, metadata=meta)
            export_times.append(exported.export_s)
        parity = check_parity(m, fp32, parity_images, batch_sizes=(1, 8), tolerance=FP32_TOLERANCE)
        entry = {"params": count_params(m), "macs": count_macs(m, IMG), "export_s_runs": export_times,
                 "export_s_median": sorted(export_times)[len(export_times) // 2], "onnx_mb": exported.size_mb,
                 "onnx_bytes": fp32.stat().st_size, "nodes_before": exported.nodes_before,
                 "nodes_after": exported.nodes_after, "opset": exported.opset, "parity_fp32": C.to_record(parity),
                 "int8": {}}
        paths[name] = {"fp32": fp32}
        print(f"{name}: export {entry['export_s_median']:.2f} s, {exported.size_mb:.1f} MiB, parity max rel "
              f"{parity.max_rel_err:.2e} top-1 {parity.top1_agreement:.0%} passed {parity.passed}")
        for form in forms:
            q = quantize_int8(fp32, WORK / f"{ARCH}_{name}.int8-{form}.onnx", calib_images, form=form)
            qpar = check_parity(m, q.path, parity_images, batch_sizes=(1, 8), tolerance=INT8_TOLERANCE)
            entry["int8"][form] = {"form": C.to_record(INT8_FORMS[form]), "quantize_s": q.quantize_s,
                                   "size_mb": q.size_mb, "bytes": q.path.stat().st_size,
                                   "size_ratio_vs_fp32": round(q.path.stat().st_size / entry["onnx_bytes"], 3),
                                   "parity_vs_torch": C.to_record(qpar)}
            paths[name][form] = q.path
            print(f"  int8 {form}: {q.size_mb:.1f} MiB ({entry['int8'][form]['size_ratio_vs_fp32']:.3f}x), "
                  f"quantise {q.quantize_s:.1f} s, vs torch: max rel {qpar.max_rel_err:.3f}, "
                  f"top-1 agreement {qpar.top1_agreement:.0%}")
        info[name] = entry

    sessions = {(name, kind): C.ort_session(p) for name, ps in paths.items() for kind, p in ps.items()}
    latency: dict[str, dict] = {}
    rows, table = [], []
    for batch, (warmup, runs) in plan.items():
        steps = {}
        for name, m in models.items():
            steps[f"{name}/eager"] = C.torch_step(m, batch, IMG)
            for kind in paths[name]:
                steps[f"{name}/ort-{kind}"] = C.ort_step(sessions[(name, kind)], batch, IMG)
        timings = compare_steps(steps, warmup=warmup, rounds=runs)
        latency[str(batch)] = {k: C.to_record(t.latency) for k, t in timings.items()}
        print(f"batch {batch}: " + ", ".join(f"{k} {t.latency.median_ms:.0f}" for k, t in timings.items()) +
              f" ms  [{C.uptime_line()}]")
        for name in models:
            row, cells = latency_row(timings, name, batch, forms)
            rows.append(row)
            table.append(cells)
    loads["at end"] = C.load_average()

    env = C.env_record(onnxruntime_settings=C.ort_settings())
    notes = [
        "resnet50 with random weights (`weights none`): no ResNet weights are available offline; latency, size and "
        "export time do not depend on weight values. keep0.6 = gate importance (gates uniform in [0, 1)), global "
        f"scope, round_to {ROUND_TO}, folded.",
        f"Parity: check_parity on {parity_n} random-normal 224 px images at batch 1 and 8 (acceptable for a "
        "random-weight model; real-image parity is measured on the Lite0 + Fashion-MNIST run). INT8 accuracy drop "
        "is not measurable with random weights; INT8 parity vs PyTorch is shown only as a sanity check.",
        f"INT8: quantize_int8, minmax calibration on {calib_n} random-normal images, forms {', '.join(forms)}. "
        f"The latency ratio uses the faster of the CPU forms {', '.join(CPU_FORMS)} (uint8 activations; "
        "benchmarks/int8_forms.py found them the fastest on this CPU); \"qdq\" (int8 activations) is the "
        "TensorRT form.",
        f"Timing: PyTorch eager and every ONNX file of both models in the same interleaved rounds in one process "
        f"(order shuffled per round; short calls repeated to ~10 ms a visit, each visit counted by its fastest "
        f"call); warm-up/rounds {', '.join(f'b{b}: {w}/{r}' for b, (w, r) in plan.items())}. Ratios per round, "
        f"median [95% bootstrap interval]. {C.ort_settings()}; eager CPU float32, inference_mode, torch threads "
        f"{C.THREADS}.",
        C.EAGER_NOTE,
    ]
    md = C.md_header("ResNet50 export: dense and keep 0.6, ONNX FP32 and INT8", env, loads, notes)
    md += "\n" + C.md_table(
        ["model", "params M", "MACs G", "export s (median)", "nodes raw -> slim", "FP32 MiB",
         "parity max abs / rel", "top-1 agree", "passed", "INT8 MiB (ratio)"],
        [[name, f"{e['params'] / 1e6:.2f}", f"{e['macs'] / 1e9:.2f}", f"{e['export_s_median']:.2f}",
          f"{e['nodes_before']} -> {e['nodes_after']}", f"{e['onnx_mb']:.1f}",
          f"{e['parity_fp32']['max_abs_err']:.1e} / {e['parity_fp32']['max_rel_err']:.1e}",
          f"{e['parity_fp32']['top1_agreement']:.0%}", "yes" if e["parity_fp32"]["passed"] else "NO",
          ", ".join(f"{f} {q['size_mb']:.1f} ({q['size_ratio_vs_fp32']:.3f}x)" for f, q in e["int8"].items())]
         for name, e in info.items()]) + "\n\n"
    md += C.md_table(
        ["batch", "model", "eager median / p90 ms", "ORT FP32 median / p90 ms", "ORT / eager [95% CI]",
         "fastest CPU INT8 median / p90 ms", "INT8 / FP32 [95% CI]", "other INT8 forms / FP32"], table) + "\n"
    md += "\nINT8 parity vs PyTorch (random weights, sanity only): " + "; ".join(
        f"{name} {f}: max rel {q['parity_vs_torch']['max_rel_err']:.3f}, "
        f"top-1 {q['parity_vs_torch']['top1_agreement']:.0%}"
        for name, e in info.items() for f, q in e["int8"].items()) + ".\n"
    data = {"what": "resnet50 dense and keep 0.6: export, parity, ORT vs eager, INT8 vs FP32",
            "command": C.command_line(), "quick": args.quick, "environment": env, "load_average": loads,
            "settings": {"img_size": IMG, "keep": KEEP, "round_to": ROUND_TO, "calib_images": calib_n,
                         "parity_images": parity_n, "images": "random normal", "weights": "none (random)",
                         "warmup_runs": {str(b): list(p) for b, p in plan.items()}},
            "models": info, "latency": latency, "rows": rows, "wall_s": round(time.perf_counter() - start, 1)}
    C.write_results(C.result_name("export_resnet50", args.name), data, md)


if __name__ == "__main__":
    main()
