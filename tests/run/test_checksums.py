"""Checksums: every file facompress writes gets its size and SHA-256 in run.json when written; a read
through the run compares them and a mismatch names the file and the stage to re-run."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from fa_compress.run import load_model_file
from fa_compress.cli.app import main
from fa_compress.errors import CheckpointError
from fa_compress.run import Run
from fa_compress.models.saved import load_model
from fa_compress.models.saved import load_run_model


def _flip(path: Path, at: float = 0.5, n: int = 8) -> None:
    data = bytearray(path.read_bytes())
    for i in range(n):
        data[int(len(data) * at) + 997 * i] ^= 0x5A
    path.write_bytes(bytes(data))


def test_records_match_the_files(finished_run_base):
    files = json.loads((finished_run_base / "run.json").read_text())["files"]
    for name, record in files.items():
        data = (finished_run_base / name).read_bytes()
        assert record["size_bytes"] == len(data)
        assert record["sha256"] == hashlib.sha256(data).hexdigest()
    assert files["finetuned.safetensors"]["stage"] == "finetune"
    assert Run.open(finished_run_base).verify_file(finished_run_base / "finetuned.onnx") is True


def test_flipped_model_bytes_refused_naming_the_stage(finished_run):
    _flip(finished_run / "finetuned.safetensors")
    with pytest.raises(CheckpointError) as info:
        load_run_model(Run.open(finished_run), "finetuned")
    message = str(info.value)
    assert "finetuned.safetensors changed since stage 'finetune' wrote it" in message
    assert "SHA-256" in message and "`facompress finetune`" in message


def test_truncated_model_refused_by_size(finished_run):
    path = finished_run / "finetuned.safetensors"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match=r"it is \d+ bytes, \d+ were written"):
        load_run_model(Run.open(finished_run), "finetuned")


def test_standalone_model_file_checks_itself(finished_run):
    """Outside a run there is no manifest: the file's own content digest refuses changed tensors."""
    path = finished_run / "finetuned.safetensors"
    state, meta = load_model_file(path)
    _flip(path, at=0.7)
    with pytest.raises(CheckpointError, match="self-check"):
        load_model(path)
    # a file without the digest (written before it existed) still loads
    from safetensors.torch import save

    path.write_bytes(save(state, metadata={"facompress": json.dumps(meta)}))
    model, loaded = load_model(path)
    assert loaded == meta
    torch.testing.assert_close(model.state_dict()["classifier.1.weight"], state["classifier.1.weight"])


def test_changed_onnx_refused_naming_export(finished_run, capsys):
    _flip(finished_run / "finetuned.onnx", at=0.6, n=1)
    with pytest.raises(CheckpointError, match="changed since stage 'export' wrote it.*`facompress export`"):
        Run.open(finished_run).verify_file(finished_run / "finetuned.onnx")


def test_changed_json_refused_by_read_json(finished_run):
    path = finished_run / "gates.json"
    path.write_text(path.read_text() + " ")
    with pytest.raises(CheckpointError, match="gates.json changed since stage 'finetune'"):
        Run.open(finished_run).read_json("gates.json")


def test_write_json_and_record_register_checksums(finished_run):
    run = Run.open(finished_run)
    run.write_json("notes.json", {"a": 1})
    assert run.file_record(finished_run / "notes.json")["stage"] is None
    (finished_run / "report.md").write_text("# report\n")
    run.record("bench", {"status": "done", "artifacts": {"report_md": "report.md", "notes": "notes.json"}})
    files = run.manifest["files"]
    assert files["report.md"] == {**files["report.md"], "stage": "bench", "size_bytes": 9,
                                  "sha256": hashlib.sha256(b"# report\n").hexdigest()}
    assert files["notes.json"]["stage"] == "bench"
    assert run.read_json("notes.json") == {"a": 1}


def test_artifact_link_leading_outside_is_refused(finished_run, tmp_path):
    outside = tmp_path / "secret.json"
    outside.write_text("{}")
    (finished_run / "link.json").symlink_to(outside)
    with pytest.raises(CheckpointError, match="leads outside the run directory"):
        Run.open(finished_run).read_json("link.json")


def test_cli_refuses_a_changed_model_in_one_line(finished_run, capsys):
    _flip(finished_run / "finetuned.safetensors")
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["export", "--run", str(finished_run)])
    out, err = capsys.readouterr()
    assert info.value.code == 2 and "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "changed since stage 'finetune' wrote it" in lines[0], err


def test_register_files_records_rewritten_files(finished_run):
    """A stage that rewrites files without recording itself again (`facompress report`) re-registers them."""
    run = Run.open(finished_run)
    (finished_run / "report.md").write_text("v1\n")
    run.record("bench", {"status": "done", "artifacts": {"report_md": "report.md"}})
    (finished_run / "report.md").write_text("v2, regenerated\n")
    with pytest.raises(CheckpointError, match="changed since stage 'bench'"):
        run.verify_file(finished_run / "report.md")
    run.register_files([finished_run / "report.md"], "bench")
    assert run.verify_file(finished_run / "report.md") is True
    assert run.file_record(finished_run / "report.md")["size_bytes"] == len("v2, regenerated\n")
