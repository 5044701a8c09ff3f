"""`facompress export`: the run's model to checked ONNX, optionally INT8/FP16 ONNX, a TensorRT engine and a
torch.export program (.pt2)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import TrustCode, trusting_code, user_errors_exit_2


@user_errors_exit_2
@trusting_code
def export(
    model: Annotated[Optional[str], typer.Option(rich_help_panel="What to export",
        help="Model in the run to export (default: the newest: pruned, else finetuned).")] = None,
    out: Annotated[Optional[Path], typer.Option(rich_help_panel="What to export", help="Existing folder for the files (default: the run).")] = None,
    opset: Annotated[int, typer.Option(rich_help_panel="What to export", help="ONNX opset, 13-20 (TensorRT 10 parses up to 20).")] = 17,
    int8: Annotated[bool, typer.Option(rich_help_panel="INT8 and FP16",
        help="Also write a statically quantised INT8 ONNX for onnxruntime CPU (<model>.int8-ort.onnx); with "
             "--trt also the symmetric int8 Q/DQ form TensorRT needs (<model>.int8-trt.onnx).")] = False,
    int8_format: Annotated[str, typer.Option(rich_help_panel="INT8 and FP16",
        help="Form of the onnxruntime CPU file: auto (the fastest measured for this CPU: qdq-u8, uint8 "
             "activations; qdq-u8-rr without VNNI), qdq-u8, qdq-u8-rr, qoperator-u8 or qdq (symmetric int8, "
             "the TensorRT form).")] = "auto",
    calib_samples: Annotated[int, typer.Option(rich_help_panel="INT8 and FP16", help="Training images used to calibrate INT8.")] = 256,
    fp16: Annotated[bool, typer.Option(rich_help_panel="INT8 and FP16", help="Also write an FP16 ONNX with float32 inputs and outputs.")] = False,
    torch_program: Annotated[bool, typer.Option("--torch/--no-torch", rich_help_panel="What to export", help="Also write <model>.pt2, a torch.export program with a dynamic batch that plain PyTorch "
                        "loads: torch.export.load(path).module()(x). Loading a .pt2 can run code (pickle): load "
                        "one only from a source you trust.")] = False,
    trt: Annotated[bool, typer.Option(rich_help_panel="TensorRT", help="Also build a TensorRT engine (needs TensorRT and a CUDA GPU).")] = False,
    min_batch: Annotated[int, typer.Option(rich_help_panel="TensorRT", help="Smallest batch the engine accepts.")] = 1,
    opt_batch: Annotated[int, typer.Option(rich_help_panel="TensorRT", help="Batch TensorRT tunes the engine for.")] = 8,
    max_batch: Annotated[int, typer.Option(rich_help_panel="TensorRT", help="Largest batch the engine accepts.")] = 32,
    workspace_mb: Annotated[int, typer.Option(rich_help_panel="TensorRT", help="TensorRT builder workspace limit, MiB.")] = 2048,
    run: Annotated[Optional[Path], typer.Option(rich_help_panel="Run and device", help="Run directory (default: the latest run).")] = None,
    trust_code: TrustCode = False,
) -> None:
    """Export the run's model to ONNX, check it against PyTorch, and record it in run.json."""
    from fa_compress.errors import MissingDependencyError
    from fa_compress.export.pipeline import ExportOptions, export_run

    options = ExportOptions(model_name=model, out=out, opset=opset, int8=int8, int8_format=int8_format,
                            calib_samples=calib_samples, fp16=fp16, torch_program=torch_program, trt=trt,
                            min_batch=min_batch, opt_batch=opt_batch, max_batch=max_batch, workspace_mb=workspace_mb)
    try:
        result = export_run(run, options)
    except MissingDependencyError as exc:  # --trt without TensorRT: list the checked ONNX files, then fail
        if getattr(exc, "partial_result", None) is not None:
            _print(exc.partial_result)  # type: ignore[attr-defined]
        raise
    _print(result)


def _print(r) -> None:  # noqa: ANN001 - an ExportResult; imported lazily to keep --help fast
    p = r.parity
    typer.echo(f"{r.onnx.path}  ({r.onnx.size_mb:.1f} MB, opset {r.onnx.opset}, nodes {r.onnx.nodes_before} -> "
               f"{r.onnx.nodes_after}, {r.onnx.export_s:.1f} s)")
    typer.echo(f"  parity vs PyTorch: max rel err {p.max_rel_err:.2e}, top-1 agreement {p.top1_agreement:.1%} "
               f"on {p.n_images} images, batch {'/'.join(map(str, p.batch_sizes))}")
    for f in r.int8_files:
        q, a = f.quantized, f.accuracy
        made_for = "onnxruntime CPU" if f.target == "ort-cpu" else "TensorRT; on CPUs run it with OpenVINO"
        padded = f", {q.padded_channels} zero channels for its kernels" if q.padded_channels else ""
        typer.echo(f"{q.path}  ({q.size_mb:.1f} MB = {q.size_ratio:.2f}x FP32, form {q.form.name}{padded}, "
                   f"for {made_for})")
        lo, hi = a.interval_pct
        verdict = "within noise" if a.within_noise else "significant"
        typer.echo(f"  test top-1: FP32 {a.fp32_top1_pct:.2f}%  INT8 {a.top1_pct:.2f}% [{lo:.2f}, {hi:.2f}]  drop "
                   f"{a.drop_points:+.2f} points on {a.n_images} images (McNemar p={a.p_value:.2g}, {verdict})")
    if r.fp16_path is not None and r.fp16_parity is not None:
        typer.echo(f"{r.fp16_path}  (parity: max rel err {r.fp16_parity.max_rel_err:.2e})")
    if r.torch_program is not None and r.torch_parity is not None:
        typer.echo(f"{r.torch_program.path}  ({r.torch_program.size_mb:.1f} MB, torch.export program for torch "
                   f"{r.torch_program.torch_version}; parity: max rel err {r.torch_parity.max_rel_err:.2e})")
    for engine in r.engines:
        typer.echo(f"{engine.path}  ({engine.precision}, TensorRT {engine.trt_version} on {engine.gpu_name}, "
                   f"built in {engine.build_s:.1f} s)")
    typer.echo(f"recorded in {r.run_path / 'run.json'}")
