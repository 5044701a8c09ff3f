"""Reports of a benchmark: Markdown, JSON, a single-page HTML, and PNG plots.

>>> paths = write_report(run.path, report)        # after `bench_run`
>>> paths = regenerate_report(run.path)           # from the stored report.json, no measuring
"""

from .markdown import render_markdown
from .tables import Table, all_tables, headline_table
from .write import load_report, regenerate_report, write_report

__all__ = ["Table", "all_tables", "headline_table", "load_report", "regenerate_report", "render_markdown",
           "write_report"]
