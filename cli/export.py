"""`facompress export`: the run's model to checked ONNX, optionally INT8/FP16 ONNX and a TensorRT engine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import user_errors_exit_2


@user_errors_exit_2
def export(
    run: Annotated[Optional[Path], typer.Option(help="Run directory (default: the latest run).")] = None,
    model: Annotated[Optional[str], typer.Option(
        help="Model in the run to export (default: the newest: pruned, else finetuned).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Existing folder for the files (default: the run).")] = None,
    opset: Annotated[int, typer.Option(help="ONNX opset, 13-20 (TensorRT 10 parses up to 20).")] = 17,
    int8: Annotated[bool, typer.Option(help="Also write a statically quantised INT8 ONNX.")] = False,
    int8_format: Annotated[str, typer.Option(
        help="qdq (symmetric int8 Q/DQ: TensorRT), qdq-u8 (uint8 activations: ~3x faster on onnxruntime "
             "CPU, not for TensorRT) or qoperator-u8.")] = "qdq",
    calib_samples: Annotated[int, typer.Option(help="Training images used to calibrate INT8.")] = 256,
    fp16: Annotated[bool, typer.Option(help="Also write an FP16 ONNX with float32 inputs and outputs.")] = False,
    trt: Annotated[bool, typer.Option(help="Also build a TensorRT engine (needs TensorRT and a CUDA GPU).")] = False,
    min_batch: Annotated[int, typer.Option(help="Smallest batch the engine accepts.")] = 1,
    opt_batch: Annotated[int, typer.Option(help="Batch TensorRT tunes the engine for.")] = 8,
    max_batch: Annotated[int, typer.Option(help="Largest batch the engine accepts.")] = 32,
    workspace_mb: Annotated[int, typer.Option(help="TensorRT builder workspace limit, MiB.")] = 2048,
) -> None:
    """Export the run's model to ONNX, check it against PyTorch, and record it in run.json."""
    from fa_compress.errors import MissingDependencyError
    from fa_compress.export.pipeline import ExportOptions, export_run

    options = ExportOptions(model_name=model, out=out, opset=opset, int8=int8, int8_format=int8_format,
                            calib_samples=calib_samples, fp16=fp16, trt=trt, min_batch=min_batch,
                            opt_batch=opt_batch, max_batch=max_batch, workspace_mb=workspace_mb)
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
    if r.int8 is not None and r.int8_accuracy is not None:
        a = r.int8_accuracy
        typer.echo(f"{r.int8.path}  ({r.int8.size_mb:.1f} MB = {r.int8.size_ratio:.2f}x FP32, {r.int8.form.name})")
        typer.echo(f"  test top-1: FP32 {a.fp32_top1_pct:.2f}%  INT8 {a.top1_pct:.2f}%  drop {a.drop_points:+.2f} "
                   f"points on {a.n_images} images")
    if r.fp16_path is not None and r.fp16_parity is not None:
        typer.echo(f"{r.fp16_path}  (parity: max rel err {r.fp16_parity.max_rel_err:.2e})")
    for engine in r.engines:
        typer.echo(f"{engine.path}  ({engine.precision}, TensorRT {engine.trt_version} on {engine.gpu_name}, "
                   f"built in {engine.build_s:.1f} s)")
    typer.echo(f"recorded in {r.run_path / 'run.json'}")
