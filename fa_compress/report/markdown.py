"""`report.md`: the benchmark as Markdown tables, rendered only from a `BenchReport`.

Rendering is deterministic: the same report (for example re-read from `report.json`) and the same
plot names always give the same text.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..bench.results import BenchReport
from .tables import Table, all_tables, spread_warnings


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def table_markdown(table: Table) -> str:
    """A GitHub-flavoured Markdown table with its title and note."""
    lines = [f"## {table.title}", ""]
    lines.append("| " + " | ".join(_cell(h) for h in table.headers) + " |")
    lines.append("|" + "|".join("---" for _ in table.headers) + "|")
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows]
    if table.note:
        lines += ["", table.note]
    return "\n".join(lines)


def render_markdown(report: BenchReport, plots: Sequence[str] = ()) -> str:
    """The whole report; `plots` are PNG file names (relative to the report) to show at the end."""
    header = [f"# facompress benchmark{f' — {report.run}' if report.run else ''}", "",
              f"Measured {report.created}."]
    tables = [table_markdown(t) for t in all_tables(report)]
    warnings = spread_warnings(report)
    if warnings:  # right under the headline, where the figures they qualify are
        tables.insert(1, "**Too noisy for a figure:**\n\n" + "\n".join(f"- {_cell(w)}" for w in warnings))
    parts = ["\n".join(header)] + tables
    if report.notes:
        parts.append("## Notes\n\n" + "\n".join(f"- {_cell(n)}" for n in report.notes))
    if plots:
        parts.append("## Plots\n\n" + "\n\n".join(f"![{p.rsplit('.', 1)[0]}]({p})" for p in plots))
    return "\n\n".join(parts) + "\n"
