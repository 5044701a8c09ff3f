"""The run.json schema: each wrong type, missing field and escaping path is refused with one line naming
the file and the field; unknown fields load; old manifests load, newer ones are refused by version."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from fa_compress.cli.app import main
from fa_compress.errors import CheckpointError
from fa_compress.run import Run
from fa_compress.models.saved import load_run_model


def _manifest_only(base: Path, dest: Path, edit: Callable[[dict], object] | None = None) -> Path:
    """A folder holding only a (possibly edited) copy of the finished run's run.json."""
    dest.mkdir()
    data = json.loads((base / "run.json").read_text())
    if edit is not None:
        edit(data)
    (dest / "run.json").write_text(json.dumps(data))
    return dest


def _set(path: str, value: object) -> Callable[[dict], None]:
    def edit(doc: dict) -> None:
        *parents, last = path.split("/")
        for key in parents:
            doc = doc[key]
        doc[last] = value
    return edit


def _delete(path: str) -> Callable[[dict], None]:
    def edit(doc: dict) -> None:
        *parents, last = path.split("/")
        for key in parents:
            doc = doc[key]
        del doc[last]
    return edit


FT = "stages/finetune"
BAD = {  # id: (edit, words the error line must hold)
    "options-an-int": (_set(f"{FT}/options", 7), ["stages.finetune.options", "an object", "got 7"]),
    "img-size-a-string": (_set(f"{FT}/options/img_size", "32"), ["stages.finetune.options.img_size", "an integer"]),
    "img-size-out-of-range": (_set(f"{FT}/options/img_size", 5000), ["options.img_size", "less than or equal to 1024"]),
    "limit-train-zero": (_set(f"{FT}/options/limit_train", 0), ["options.limit_train", "greater than or equal to 1"]),
    "schedule-a-string": (_set(f"{FT}/options/train/schedule", "head"), ["options.train.schedule", "a list"]),
    "seed-a-float": (_set(f"{FT}/options/train/seed", 1.5), ["options.train.seed", "an integer"]),
    "lr-a-bool": (_set(f"{FT}/options/train/lr_head", True), ["options.train.lr_head", "a number"]),
    "train-missing": (_delete(f"{FT}/options/train"), ["stages.finetune.options.train", "required but missing"]),
    "model-missing": (_delete(f"{FT}/options/model"), ["stages.finetune.options.model", "required but missing"]),
    "status-missing": (_delete(f"{FT}/status"), ["stages.finetune.status", "required but missing"]),
    "class-names-ints": (_set(f"{FT}/dataset/classes", [1, 2]), ["stages.finetune.dataset.classes.0", "a string"]),
    "artifact-escapes": (_set(f"{FT}/artifacts/model", "../../etc/passwd"),
                         ["stages.finetune.artifacts.model", "inside the run directory", "../../etc/passwd"]),
    "artifact-dotdot-inside": (_set(f"{FT}/artifacts/gates", "sub/../../gates.json"),
                               ["stages.finetune.artifacts.gates", "inside the run directory"]),
    "artifact-an-int": (_set(f"{FT}/artifacts/model", 7), ["stages.finetune.artifacts.model", "file name"]),
    "artifact-nul": (_set(f"{FT}/artifacts/model", "a\x00b"), ["stages.finetune.artifacts.model", "NUL"]),
    "export-path-escapes": (_set("stages/export/artifacts/onnx/path", "../x.onnx"),
                            ["stages.export.artifacts.onnx", "inside the run directory"]),
    "export-source-an-int": (_set("stages/export/artifacts/onnx/source", 3), ["stages.export.artifacts.onnx", "source"]),
    "checksum-not-hex": (_set("files/finetuned.safetensors/sha256", "abc"),
                         ["files.finetuned.safetensors.sha256", "pattern"]),
    "size-negative": (_set("files/finetuned.safetensors/size_bytes", -5),
                      ["files.finetuned.safetensors.size_bytes", "greater than or equal to 0"]),
    "file-record-escapes": (lambda d: d["files"].update({"../../evil": {"size_bytes": 1, "sha256": "0" * 64}}),
                            ["files", "inside the run directory"]),
    "stages-a-list": (_set("stages", []), ["field stages", "an object"]),
    "stage-entry-a-string": (_set(f"{FT}", "done"), ["stages.finetune", "an object"]),
    "format-a-string": (_set("format", "2"), ["field format", "an integer"]),
    "format-missing": (_delete("format"), ["field format", "required but missing"]),
    "files-null": (_set("files", None), ["field files", "an object"]),
}


@pytest.mark.parametrize("case", BAD)
def test_schema_refuses_with_the_field_named(case, finished_run_base, tmp_path):
    edit, words = BAD[case]
    folder = _manifest_only(finished_run_base, tmp_path / "run", edit)
    with pytest.raises(CheckpointError) as info:
        Run.open(folder)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(folder / "run.json"))
    for word in words:
        assert word in message, f"{word!r} not in: {message}"


def test_not_a_manifest(finished_run_base, tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "run.json").write_text("[1, 2, 3]")
    with pytest.raises(CheckpointError, match="not a facompress manifest"):
        Run.open(folder)


@pytest.mark.parametrize("where", ["", "stages/finetune/", "stages/finetune/options/", "stages/finetune/options/train/",
                                   "stages/export/artifacts/onnx/", "files/finetuned.safetensors/"])
def test_unknown_fields_are_kept_not_refused(where, finished_run_base, tmp_path):
    folder = _manifest_only(finished_run_base, tmp_path / "run", _set(f"{where}zz_new_field", {"any": [1, "x"]}))
    run = Run.open(folder)
    doc = run.manifest
    for key in [k for k in where.split("/") if k]:
        doc = doc[key]
    assert doc["zz_new_field"] == {"any": [1, "x"]}


@pytest.mark.parametrize("command", ["prune", "export", "bench", "gates", "check"])
def test_wrong_type_in_manifest_is_one_line_and_exit_2_in_every_command(command, finished_run, capsys):
    """The issue's case: `"options": 7` ended prune/export/bench in a traceback."""
    _set(f"{FT}/options", 7)(doc := json.loads((finished_run / "run.json").read_text()))
    (finished_run / "run.json").write_text(json.dumps(doc))
    before = sorted((p.name, p.stat().st_mtime_ns) for p in finished_run.iterdir())
    argv = {"prune": ["prune", "--quiet"], "export": ["export"], "bench": ["bench", "--backend", "torch-cpu", "--quiet"],
            "gates": ["gates"], "check": ["check"]}[command] + ["--run", str(finished_run)]
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    assert info.value.code == 2, err
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "run.json" in lines[0], err
    assert "stages.finetune.options must be an object (got 7)" in lines[0]
    assert sorted((p.name, p.stat().st_mtime_ns) for p in finished_run.iterdir()) == before


# ---- versions -------------------------------------------------------------------------------------
def _as_format_1(doc: dict) -> None:
    """What facompress 0.1.0 wrote before the schema: format 1, no checksums, no written_by."""
    doc["format"] = 1
    doc.pop("files")
    doc.pop("written_by")


def test_format_1_manifest_still_loads_and_is_upgraded_on_write(finished_run):
    doc = json.loads((finished_run / "run.json").read_text())
    _as_format_1(doc)
    (finished_run / "run.json").write_text(json.dumps(doc))
    run = Run.open(finished_run)
    model, meta = load_run_model(run, "finetuned")  # nothing to verify against: loads as before
    assert meta["arch"] == "mobilenet_v2" and run.file_record(run.model_path("finetuned")) is None
    run.record("extra", {"status": "done", "artifacts": {"notes": "gates.json"}})
    upgraded = json.loads((finished_run / "run.json").read_text())
    assert upgraded["format"] == 2 and upgraded["upgraded_from"] == 1
    assert set(upgraded["files"]) == {"gates.json"} and upgraded["files"]["gates.json"]["stage"] == "extra"


def test_newer_manifest_is_refused_naming_the_version(finished_run_base, tmp_path):
    folder = _manifest_only(finished_run_base, tmp_path / "run", lambda d: d.update(format=7, written_by="facompress 3.2.0"))
    with pytest.raises(CheckpointError) as info:
        Run.open(folder)
    assert "written by facompress 3.2.0 (manifest format 7)" in str(info.value)
    assert "reads formats 1-2" in str(info.value) and "upgrade facompress" in str(info.value)


def test_written_manifest_records_version_and_checksums(finished_run_base):
    doc = json.loads((finished_run_base / "run.json").read_text())
    assert doc["format"] == 2 and doc["written_by"].startswith("facompress ")
    assert {"finetuned.safetensors", "gates.json", "finetuned.onnx"} <= set(doc["files"])
    assert doc["files"]["finetuned.onnx"]["stage"] == "export"


def test_copied_run_json_only_is_enough_for_the_schema(finished_run_base, tmp_path):
    shutil.copy(finished_run_base / "run.json", tmp_path / "run.json")
    assert Run.open(tmp_path).stage("finetune")["status"] == "done"
