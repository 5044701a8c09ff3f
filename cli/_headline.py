"""The headline table (dense vs pruned vs INT8) that `bench` and `report` end with.

Ratios follow one convention everywhere: latency / dense latency (`0.62×`: takes 62% of the dense
time, < 1 is faster), with its 95% interval; a ratio too uncertain for a figure is printed as such."""

from __future__ import annotations

from pathlib import Path


def print_headline(report, run_path: Path) -> None:
    """Print the headline table, the skipped backends with reasons, and where the report is."""
    from rich import box
    from rich.console import Console
    from rich.table import Table as RichTable

    from fa_compress.report import headline_table
    from fa_compress.report.tables import spread_warnings

    console = Console()
    if not console.is_terminal:  # a log or a pipe: no reason to squeeze the table into 80 columns
        console = Console(width=120)
    headline = headline_table(report)
    table = RichTable(title=headline.title, caption=headline.note, box=box.SIMPLE_HEAD)
    for i, header in enumerate(headline.headers):  # cells and one-word headers whole, never cut
        widest = max((len(row[i]) for row in headline.rows), default=0)
        table.add_column(header, min_width=max(widest, max(len(word) for word in header.split())))
    for row in headline.rows:
        table.add_row(*row)
    console.print(table)
    for line in spread_warnings(report):  # plain text: "[openvino]" in an install hint is not markup
        console.print(f"noisy: {line}", style="yellow", highlight=False, markup=False)
    for s in report.skipped:
        console.print(f"skipped {s.backend}{f' on {s.artifact}' if s.artifact else ''}: {s.reason}",
                      style="yellow", highlight=False, markup=False)
    console.print(f"report: {run_path / 'report.md'} (also report.html, report.json)", highlight=False)
