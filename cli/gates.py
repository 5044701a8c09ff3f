"""`facompress gates`: the channel ranking the gates learned, as a table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import user_errors_exit_2


@user_errors_exit_2
def gates(
    run: Annotated[Optional[Path], typer.Option(help="Run directory (default: the latest run).")] = None,
    layers: Annotated[int, typer.Option(help="Show this many layers with the most noise channels (0 = all).")] = 15,
) -> None:
    """Summarise the gate ranking: per stage and per layer, amplified (>1) and noise (~0) channels."""
    from rich.console import Console
    from rich.table import Table

    from fa_compress.gates.summary import load_ranking, stage_summary

    rankings = load_ranking(run)
    console = Console()
    stages = Table(title="Gates per stage")
    for col in ("stage", "layers", "channels", "mean gate", "amplified >1", "noise <0.1"):
        stages.add_column(col, justify="right" if col != "stage" else "left")
    for row in stage_summary(rankings):
        stages.add_row(row.stage, str(row.layers), str(row.channels), f"{row.mean_gate:.3f}",
                       str(row.amplified), str(row.noise))
    console.print(stages)
    shown = sorted(rankings, key=lambda r: r.noise / r.channels, reverse=True)
    shown = shown[:layers] if layers else shown
    table = Table(title=f"Layers ({len(shown)} of {len(rankings)}, most noise first)")
    for col in ("layer", "channels", "mean", "max", "min", "amplified", "noise"):
        table.add_column(col, justify="right" if col != "layer" else "left")
    for r in shown:
        table.add_row(r.layer, str(r.channels), f"{r.mean_gate:.3f}", f"{r.gates[0]:.3f}",
                      f"{r.gates[-1]:.3f}", str(r.amplified), str(r.noise))
    console.print(table)
