"""Writing a run's report files, and regenerating them from stored results without measuring.

Files (all in the run directory, each written atomically):
`report.json` (the `BenchReport`), `report_inputs.json` (gate values and channel counts, when
given), `report_*.png`, `report.md` and `report.html`.

>>> write_report(run.path, report, gate_values=gates_by_stage(model))
>>> regenerate_report(run.path)      # what `facompress report` does
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..bench.results import BenchReport
from ..run import atomic_write_bytes
from ..errors import CheckpointError, NotFoundError
from . import plots
from .html import render_html
from .markdown import render_markdown

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
INPUTS_JSON = "report_inputs.json"
PLOT_NAMES = {"pareto": "report_accuracy_latency.png", "ratios": "report_latency_ratios.png",
              "size_macs": "report_size_macs.png", "gates": "report_gates.png", "channels": "report_channels.png"}


def _write_text(path: Path, text: str) -> Path:
    atomic_write_bytes(path, text.encode("utf-8"))
    return path


def _draw_plots(run_dir: Path, report: BenchReport, inputs: Mapping[str, dict]) -> list[Path]:
    drawn = [plots.plot_pareto(report, run_dir / PLOT_NAMES["pareto"]),
             plots.plot_latency_ratios(report, run_dir / PLOT_NAMES["ratios"]),
             plots.plot_size_macs(report, run_dir / PLOT_NAMES["size_macs"])]
    if inputs.get("gate_values"):
        drawn.append(plots.plot_gate_histograms(inputs["gate_values"], run_dir / PLOT_NAMES["gates"]))
    if inputs.get("channels_before") and inputs.get("channels_after"):
        drawn.append(plots.plot_channels(inputs["channels_before"], inputs["channels_after"],
                                         run_dir / PLOT_NAMES["channels"]))
    made = [p for p in drawn if p is not None]
    for name in PLOT_NAMES.values():  # a plot that no longer applies must not linger beside the new ones
        if run_dir / name not in made:
            (run_dir / name).unlink(missing_ok=True)
    return made


def write_report(run_dir: Path, report: BenchReport,
                 gate_values: Mapping[str, Sequence[float]] | None = None,
                 channels_before: Mapping[str, int] | None = None,
                 channels_after: Mapping[str, int] | None = None) -> list[Path]:
    """Write report.json, the plots, report.md and report.html into `run_dir`; returns the paths."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise NotFoundError(f"report folder {run_dir} does not exist; pass an existing run directory")
    written = [_write_text(run_dir / REPORT_JSON, report.to_json())]
    inputs = {k: v for k, v in (("gate_values", gate_values), ("channels_before", channels_before),
                                ("channels_after", channels_after)) if v}
    if inputs:
        jsonable = {k: {name: (list(map(float, vals)) if k == "gate_values" else int(vals))
                        for name, vals in v.items()} for k, v in inputs.items()}
        written.append(_write_text(run_dir / INPUTS_JSON, json.dumps(jsonable, indent=1) + "\n"))
        inputs = jsonable
    else:
        (run_dir / INPUTS_JSON).unlink(missing_ok=True)  # stale inputs would reappear on regeneration
    return written + _render(run_dir, report, inputs)


def _render(run_dir: Path, report: BenchReport, inputs: Mapping[str, dict]) -> list[Path]:
    pngs = _draw_plots(run_dir, report, inputs)
    md = _write_text(run_dir / REPORT_MD, render_markdown(report, [p.name for p in pngs]))
    page = _write_text(run_dir / REPORT_HTML, render_html(report, pngs))
    return pngs + [md, page]


def load_report(run_dir: Path) -> BenchReport:
    """The `BenchReport` stored in `run_dir/report.json`."""
    path = Path(run_dir) / REPORT_JSON
    if not path.is_file():
        raise NotFoundError(f"{path} does not exist; run `facompress bench` first")
    return BenchReport.from_json(path.read_text(encoding="utf-8"))


def regenerate_report(run_dir: Path) -> list[Path]:
    """Redraw the plots and rewrite report.md/report.html from the stored JSON; measures nothing."""
    run_dir = Path(run_dir)
    report = load_report(run_dir)
    inputs: dict = {}
    if (run_dir / INPUTS_JSON).is_file():
        try:
            inputs = json.loads((run_dir / INPUTS_JSON).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{run_dir / INPUTS_JSON} is not valid JSON ({exc}); "
                                  f"re-run `facompress bench`") from exc
    return _render(run_dir, report, inputs)
