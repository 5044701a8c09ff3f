"""`facompress report`: rewrite report.md, report.html and the plots from the stored report.json."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import user_errors_exit_2


@user_errors_exit_2
def report(
    run: Annotated[Optional[Path], typer.Option(help="Run directory (default: the latest run).")] = None,
) -> None:
    """Regenerate the run's report from its stored benchmark results, without measuring again."""
    from fa_compress.report import load_report, regenerate_report
    from fa_compress.run import Run

    from ._headline import print_headline

    the_run = Run.resolve(run)
    with the_run.writer("report"):
        written = regenerate_report(the_run.path)
    for path in written:
        typer.echo(f"regenerated {path}")
    print_headline(load_report(the_run.path), the_run.path)
