"""`facompress check`: verify a whole run directory, like a filesystem check.

The manifest against its schema; every file it lists against the size and SHA-256 recorded when it
was written; each model file by rebuilding its architecture and loading its weights; each ONNX file
through onnx's checker; each JSON artifact by parsing it. Nothing is written. The run layer knows
files and JSON; what a model or ONNX file must contain is checked by the callers that know it, passed
in as `content_checks` (`fa_compress.api.check_run` passes the model and ONNX checks).

>>> result = check_run(Path("runs/20261201-120000-resnet18-fake"), content_checks={".onnx": check_onnx})
>>> result.ok, [(row.name, row.status) for row in result.rows]
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError
from .directory import MANIFEST, Run, artifact_names
from .integrity import file_digest, mismatch_message, rerun_hint

ContentCheck = Callable[[Run, Path], None]  # raises a UserError when the file's content is not what it should be

MANIFEST_ROW = "run.json"
DAMAGED = ("damaged", "changed", "missing", "unreadable")  # statuses that make a run fail the check


@dataclass(frozen=True)
class FileCheck:
    """One row of the check: a file, the stage that wrote it, and what was found."""

    name: str
    stage: str | None
    size_bytes: int | None
    status: str  # ok, unverified (no checksum recorded), changed, missing, unreadable, damaged
    detail: str = ""

    @property
    def damaged(self) -> bool:
        return self.status in DAMAGED


@dataclass(frozen=True)
class RunCheck:
    """Every row of a run's check; `ok` when none is damaged."""

    run_path: Path
    rows: tuple[FileCheck, ...]

    @property
    def ok(self) -> bool:
        return not any(r.damaged for r in self.rows)

    @property
    def problems(self) -> tuple[FileCheck, ...]:
        return tuple(r for r in self.rows if r.damaged)

    def to_dict(self) -> dict[str, Any]:
        return {"run": str(self.run_path), "ok": self.ok,
                "rows": [{"name": r.name, "stage": r.stage, "size_bytes": r.size_bytes, "status": r.status,
                          "detail": r.detail} for r in self.rows]}


def check_run(path: Path | None = None, root: Path | None = None,
              content_checks: Mapping[str, ContentCheck] | None = None) -> RunCheck:
    """Check run `path` (default: the latest under `root`). A damaged manifest is one damaged row;
    `NotFoundError` only when there is no run at all. `content_checks`: file suffix -> a check of the
    content (JSON files are always parsed)."""
    run = Run(Run.locate(path, root))
    try:
        manifest = run.manifest
    except UserError as exc:
        return RunCheck(run.path, (FileCheck(MANIFEST_ROW, None, _size(run.manifest_path), "damaged", str(exc)),))
    rows = [FileCheck(MANIFEST_ROW, None, _size(run.path / MANIFEST), "ok",
                      f"format {manifest['format']}, {len(manifest['stages'])} stages")]
    legacy = manifest["format"] < 2 or "upgraded_from" in manifest
    for name, writer in _listed_files(manifest).items():
        rows.append(_check_file(run, name, writer, (manifest.get("files") or {}).get(name), legacy,
                                content_checks or {}))
    return RunCheck(run.path, tuple(rows))


def _listed_files(manifest: dict[str, Any]) -> dict[str, str | None]:
    """Every file the manifest names (checksummed or listed as a stage's artifact) -> the stage that wrote it."""
    found: dict[str, str | None] = {}
    for name, record in (manifest.get("files") or {}).items():
        found[name] = record.get("stage")
    for stage, entry in manifest["stages"].items():
        for name in artifact_names(entry.get("artifacts")):
            key = str(Path(name)) if Path(name).is_absolute() else Path(name).as_posix()
            if found.get(key) is None:
                found[key] = stage
    return found


def _check_file(run: Run, name: str, stage: str | None, record: dict[str, Any] | None, legacy: bool,
                content_checks: Mapping[str, ContentCheck]) -> FileCheck:
    try:
        path = run.artifact_file(name)
    except UserError as exc:
        return FileCheck(name, stage, None, "damaged", str(exc))
    if not path.is_file():
        return FileCheck(name, stage, None, "missing", f"{path} does not exist; stage {stage!r} wrote it: "
                         f"{rerun_hint(stage)} to recreate it")
    if record is None and Path(name).is_absolute() and not legacy:  # not read: facompress did not write it
        return FileCheck(name, stage, None, "damaged", f"run.json lists {name}, outside the run directory, with "
                         f"no checksum recorded: facompress did not write it; the manifest was edited")
    try:
        digest = file_digest(path)
    except UserError as exc:
        return FileCheck(name, stage, None, "unreadable", str(exc))
    if record is not None and (digest.size_bytes, digest.sha256) != (record["size_bytes"], record["sha256"]):
        return FileCheck(name, stage, digest.size_bytes, "changed", mismatch_message(path, digest, record))
    problem = _content_problem(run, path, content_checks)
    if problem:
        return FileCheck(name, stage, digest.size_bytes, "unreadable", problem)
    if record is None:
        why = "written before facompress recorded checksums" if legacy else "run.json records no checksum for it"
        return FileCheck(name, stage, digest.size_bytes, "unverified", f"content readable; {why}")
    return FileCheck(name, stage, digest.size_bytes, "ok", _content_note(path))


def _content_problem(run: Run, path: Path, content_checks: Mapping[str, ContentCheck]) -> str | None:
    """Why a file's content does not load as what it is (None when it does): JSON parses, and the
    check given for its suffix passes."""
    try:
        if path.suffix == ".json":
            json.loads(path.read_bytes())
        elif path.suffix in content_checks:
            content_checks[path.suffix](run, path)
    except UserError as exc:
        return str(exc)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"{path} is not valid JSON ({exc})"
    return None


def _content_note(path: Path) -> str:
    return {".safetensors": "checksum ok; architecture rebuilt and weights loaded",
            ".onnx": "checksum ok; passes the ONNX checker", ".json": "checksum ok; valid JSON"}.get(
        path.suffix, "checksum ok")


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None
