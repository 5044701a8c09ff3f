"""`facompress sweep`: prune, recover, export and benchmark several keep ratios from one run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import user_errors_exit_2
from .bench import parse_int_list


@user_errors_exit_2
def sweep(
    keep: Annotated[str, typer.Option(help="Comma-separated keep ratios.")] = "0.9,0.75,0.6,0.5",
    importance: Annotated[str, typer.Option(help="gate, l1, bn, taylor or random.")] = "gate",
    recover_epochs: Annotated[int, typer.Option(help="Recovery epochs per ratio.")] = 1,
    int8: Annotated[bool, typer.Option(help="Also export and benchmark INT8 ONNX files.")] = False,
    batch_sizes: Annotated[str, typer.Option(help="Comma-separated batch sizes for latency.")] = "1,8",
    runs: Annotated[int, typer.Option(help="Timed runs per latency measurement.")] = 30,
    run: Annotated[Optional[Path], typer.Option(help="Run directory (default: the latest run).")] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
) -> None:
    """Draw the accuracy-latency-size frontier over keep ratios."""
    from fa_compress.prune.pruner import PruneSettings
    from fa_compress.sweep import parse_keeps, sweep_run

    sizes = parse_int_list(batch_sizes, "--batch-sizes")
    result = sweep_run(run, parse_keeps(keep), base=PruneSettings(importance=importance),
                       recover_epochs=recover_epochs, int8=int8, batch_sizes=sizes, runs=runs,
                       show_progress=not quiet)
    typer.echo(f"{'keep':>6} {'params M':>9} {'MACs M':>8} {'MB':>6} {'acc %':>7}  latency (ms, ONNX)")
    for p in (result.dense, *result.points):
        acc = p.acc_final
        lat = "  ".join(f"{k} {v:.2f}" for k, v in p.onnx_median_ms.items())
        typer.echo(f"{p.keep:>6} {p.params / 1e6:>9.2f} {p.macs / 1e6:>8.1f} {p.size_mb:>6.1f} {100 * acc:>7.2f}  {lat}")
    if result.plot:
        typer.echo(f"frontier plot: {result.plot}")
