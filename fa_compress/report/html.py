"""`report.html`: one self-contained page with the report's tables and its plots embedded as base64."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path

from ..bench.results import BenchReport
from .tables import Table, all_tables, spread_warnings

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f2f2f2; } td { font-variant-numeric: tabular-nums; }
.scroll { overflow-x: auto; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
.note { color: #555; font-size: 0.9em; }
.warn { background: #fff4e0; border-left: 4px solid #e69500; padding: 0.3em 1em; margin: 0.5em 0 1.5em; }
"""


def table_html(table: Table) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in table.headers)
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in table.rows)
    note = f'<p class="note">{e(table.note)}</p>' if table.note else ""
    anchor = "-".join(table.title.lower().split())
    return (f'<h2>{e(table.title)}</h2>\n<div class="scroll"><table id="{e(anchor)}"><tr>{head}</tr>{body}</table>'
            f"</div>{note}")


def render_html(report: BenchReport, plots: Sequence[Path] = ()) -> str:
    """The page; each plot file is read and embedded as a data URI."""
    e = html.escape
    title = f"facompress benchmark{f' — {report.run}' if report.run else ''}"
    parts = [f"<h1>{e(title)}</h1>", f"<p>Measured {e(report.created)}.</p>"]
    tables = [table_html(t) for t in all_tables(report)]
    warnings = spread_warnings(report)
    if warnings:  # right under the headline, where the figures they qualify are
        tables.insert(1, '<div class="warn"><strong>Too noisy for a figure:</strong><ul>'
                      + "".join(f"<li>{e(w)}</li>" for w in warnings) + "</ul></div>")
    parts += tables
    if report.notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in report.notes) + "</ul>")
    if plots:
        parts.append("<h2>Plots</h2>")
        for path in plots:
            data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
            parts.append(f'<figure><img alt="{e(Path(path).stem)}" src="data:image/png;base64,{data}">'
                         f"<figcaption>{e(Path(path).stem)}</figcaption></figure>")
    body = "\n".join(parts)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{e(title)}</title>'
            f"<style>{_STYLE}</style></head>\n<body>\n{body}\n</body></html>\n")
