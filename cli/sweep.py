"""`facompress sweep`: prune, recover, export and benchmark several keep ratios from one run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import TrustCode, trusting_code, user_errors_exit_2
from .bench import parse_int_list


@user_errors_exit_2
@trusting_code
def sweep(
    keep: Annotated[Optional[str], typer.Option(help="Comma-separated keep ratios (default 0.9,0.75,0.6,0.5 when no --target-macs).")] = None,
    target_macs: Annotated[Optional[str], typer.Option(help="Comma-separated MAC targets, fractions of dense, e.g. 0.75,0.5,0.35: every criterion pruned to each, so they compare at equal compute.")] = None,
    importance: Annotated[str, typer.Option(help="Comma-separated criteria: gate, taylor, bn, l1, random, group; each gets the same budgets and recovery.")] = "gate",
    recover_epochs: Annotated[Optional[int], typer.Option(help="Recovery epochs per ratio (default: as `facompress prune`: the gate ranking fades its cut out for an epoch instead, every other criterion recovers for 1).")] = None,
    int8: Annotated[bool, typer.Option(help="Also export and benchmark INT8 ONNX files.")] = False,
    batch_sizes: Annotated[str, typer.Option(help="Comma-separated batch sizes for latency.")] = "1,8",
    runs: Annotated[int, typer.Option(help="Timed runs per latency measurement.")] = 30,
    run: Annotated[Optional[Path], typer.Option(help="Run directory (default: the latest run).")] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
    trust_code: TrustCode = False,
) -> None:
    """Draw the accuracy-latency-size frontier over keep ratios."""
    from fa_compress.errors import ConfigError
    from fa_compress.search.sweep import parse_fractions, parse_importances, parse_keeps, sweep_run

    if keep is not None and target_macs is not None:
        raise ConfigError("give either --keep or --target-macs to sweep over, not both")
    sizes = parse_int_list(batch_sizes, "--batch-sizes")
    keeps = parse_keeps(keep or "0.9,0.75,0.6,0.5") if target_macs is None else ()
    targets = parse_fractions(target_macs) if target_macs is not None else ()
    result = sweep_run(run, keeps, importances=parse_importances(importance), target_macs=targets,
                       recover_epochs=recover_epochs, int8=int8, batch_sizes=sizes, runs=runs,
                       show_progress=not quiet)
    n_test = result.dense.test_final.n if result.dense.test_final else "?"
    typer.echo(f"{'criterion':>10} {'keep':>6} {'MACs':>6} {'params M':>9} {'MB':>6} {'val %':>6} "
               f"{'test % [95% interval]':>23}  latency (ms, ONNX)")
    for p in (result.dense, *result.points):
        lat = "  ".join(f"{k} {v:.2f}" for k, v in p.onnx_median_ms.items())
        val = f"{100 * p.val_final.value:.2f}" if p.val_final else "-"
        t = p.test_final
        test = f"{100 * t.value:.2f} [{100 * t.low:.1f}, {100 * t.high:.1f}]" if t else f"{100 * p.acc_final:.2f}"
        typer.echo(f"{p.importance:>10} {p.keep:>6.3f} {p.macs_fraction:>6.3f} {p.params / 1e6:>9.2f} "
                   f"{p.size_mb:>6.1f} {val:>6} {test:>23}  {lat}")
    typer.echo(f"validation chose keep-or-undo for each ratio; test accuracy on {n_test} images is reported only")
    if result.plot:
        typer.echo(f"frontier plot: {result.plot}")
