"""`facompress check`: a clean run passes with a table of every file; a damaged one exits 2, the table
showing which file changed, is missing or does not rebuild, and nothing in the run is written."""

from __future__ import annotations

import json
from pathlib import Path

from fa_compress.api import check_run
from tests.conftest import run_cli


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in root.iterdir()}



def test_clean_run_passes(finished_run, capsys):
    result = check_run(finished_run)
    assert result.ok and [r.status for r in result.rows] == ["ok"] * len(result.rows)
    assert {r.name for r in result.rows} == {"run.json", "finetuned.safetensors", "gates.json", "finetuned.onnx"}
    model = next(r for r in result.rows if r.name == "finetuned.safetensors")
    assert model.stage == "finetune" and "architecture rebuilt" in model.detail
    assert model.size_bytes == (finished_run / "finetuned.safetensors").stat().st_size
    before = _snapshot(finished_run)
    code, out, err = run_cli(["check", "--run", str(finished_run)], capsys)
    assert code == 0 and err == ""
    assert "finetuned.safetensors" in out and "finetuned.onnx" in out and "no damage" in out
    assert _snapshot(finished_run) == before


def test_damaged_run_fails_with_a_table(finished_run, capsys):
    model = finished_run / "finetuned.safetensors"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    (finished_run / "finetuned.onnx").unlink()
    result = check_run(finished_run)
    statuses = {r.name: r.status for r in result.rows}
    assert statuses == {"run.json": "ok", "finetuned.safetensors": "changed", "gates.json": "ok",
                        "finetuned.onnx": "missing"}
    assert not result.ok and len(result.problems) == 2
    before = _snapshot(finished_run)
    code, out, err = run_cli(["check", "--run", str(finished_run)], capsys)
    assert code == 2 and "Traceback" not in out + err
    assert "changed" in out and "missing" in out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "2 of 4 files" in lines[0]
    assert "stage 'finetune'" in lines[0]
    assert _snapshot(finished_run) == before


def test_model_that_does_not_rebuild_is_reported(finished_run):
    """Bytes as recorded but metadata naming another run's classes: the checksum passes, the rebuild check does not."""
    doc = json.loads((finished_run / "run.json").read_text())
    doc["stages"]["finetune"]["dataset"]["classes"] = [f"other_{i}" for i in range(10)]
    (finished_run / "run.json").write_text(json.dumps(doc))
    rows = {r.name: r for r in check_run(finished_run).rows}
    assert rows["finetuned.safetensors"].status == "unreadable"
    assert "another run" in rows["finetuned.safetensors"].detail


def test_damaged_manifest_is_one_row(finished_run, capsys):
    doc = json.loads((finished_run / "run.json").read_text())
    doc["stages"]["finetune"]["options"] = 7
    (finished_run / "run.json").write_text(json.dumps(doc))
    result = check_run(finished_run)
    assert [(r.name, r.status) for r in result.rows] == [("run.json", "damaged")]
    code, _, err = run_cli(["check", "--run", str(finished_run)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "stages.finetune.options" in err


def test_listed_file_outside_the_run_without_checksum_is_damage(finished_run):
    doc = json.loads((finished_run / "run.json").read_text())
    doc["stages"]["export"]["artifacts"]["evil"] = "/etc/hostname"
    (finished_run / "run.json").write_text(json.dumps(doc))
    rows = {r.name: r for r in check_run(finished_run).rows}
    assert rows["/etc/hostname"].status == "damaged" and "outside the run" in rows["/etc/hostname"].detail


def test_no_run_at_all(tmp_path, capsys):
    code, _, err = run_cli(["check", "--run", str(tmp_path / "nope")], capsys)
    assert code == 2 and "does not exist" in err
