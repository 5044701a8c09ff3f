"""`facompress check`: verify a run directory (manifest, checksums, models rebuild) and print a table."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import TrustCode, trusting_code, user_errors_exit_2


@user_errors_exit_2
@trusting_code
def check(
    run: Annotated[Optional[Path], typer.Option(help="Run directory (default: the latest run).")] = None,
    trust_code: TrustCode = False,
) -> None:
    """Check a run: its manifest, every file's size and SHA-256, and that each model file rebuilds."""
    from rich.console import Console
    from rich.table import Table

    from fa_compress.api import check_run

    result = check_run(run)
    table = Table(title=f"facompress check {result.run_path}")
    for col in ("file", "stage", "size", "status", "detail"):
        table.add_column(col, justify="right" if col == "size" else "left", overflow="fold")
    for row in result.rows:
        size = f"{row.size_bytes / 1e6:.2f} MB" if row.size_bytes is not None else "-"
        status = f"[red]{row.status}[/red]" if row.damaged else row.status
        table.add_row(row.name, row.stage or "-", size, status, row.detail)
    Console(width=160).print(table)
    problems = result.problems
    if problems:
        first = " ".join(problems[0].detail.split())
        print(f"error: run {result.run_path} is damaged: {len(problems)} of {len(result.rows)} files failed the "
              f"check; first: {first}", file=sys.stderr)
        raise typer.Exit(code=2)
    print(f"run {result.run_path}: {len(result.rows)} files checked, no damage")
