import base64
import json

import pytest

from fa_compress.errors import CheckpointError, NotFoundError
from fa_compress.report import load_report, regenerate_report, write_report


def test_write_then_regenerate_gives_the_same_markdown(report, tmp_path):
    paths = write_report(tmp_path, report, gate_values={"stride 2": [0.1, 1.0, 1.3]},
                         channels_before={"conv1": 64, "layer1.conv": 64}, channels_after={"conv1": 48})
    names = [p.name for p in paths]
    assert names[:2] == ["report.json", "report_inputs.json"]
    assert {"report.md", "report.html", "report_gates.png", "report_channels.png",
            "report_accuracy_latency.png", "report_size_macs.png"} <= set(names)
    md = (tmp_path / "report.md").read_text()
    assert "![report_gates](report_gates.png)" in md
    (tmp_path / "report.md").unlink()
    regenerated = regenerate_report(tmp_path)
    assert (tmp_path / "report.md").read_text() == md
    assert {p.name for p in regenerated} >= {"report.md", "report.html", "report_gates.png"}
    assert load_report(tmp_path) == report


def test_html_embeds_every_plot(report, tmp_path):
    write_report(tmp_path, report)
    page = (tmp_path / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    embedded = page.split('src="data:image/png;base64,')[1:]
    assert len(embedded) == 3  # pareto, latency ratios and size/MACs; no gates or channels given
    assert base64.b64decode(embedded[0].split('"')[0])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "tensorrt is not importable | here" in page


def test_stale_inputs_and_plots_are_removed(report, tmp_path):
    write_report(tmp_path, report, gate_values={"s": [1.0, 0.5]})
    assert (tmp_path / "report_gates.png").exists()
    write_report(tmp_path, report)
    assert not (tmp_path / "report_gates.png").exists()
    assert not (tmp_path / "report_inputs.json").exists()


def test_missing_or_damaged_report(tmp_path, report):
    with pytest.raises(NotFoundError, match="facompress bench"):
        regenerate_report(tmp_path)
    (tmp_path / "report.json").write_text(json.dumps({"format": 1}))
    with pytest.raises(CheckpointError):
        load_report(tmp_path)
    with pytest.raises(NotFoundError, match="does not exist"):
        write_report(tmp_path / "nope", report)
