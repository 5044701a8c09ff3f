"""Run directories: where every stage reads its inputs and writes its artifacts and metrics.

A run is a folder holding `run.json` (the manifest) and the model files. `facompress finetune`
creates one under `runs/` (or `$FACOMPRESS_RUNS`) and marks it as the latest in `runs/LATEST`,
so later commands find it without a path. The manifest records, per stage, the settings, the
artifacts (paths relative to the run) and the metrics, and per file the size and SHA-256 it had when
written. Every write is atomic; every read of the manifest is checked against its schema
(`manifest.py`) and every artifact read through a `Run` against its recorded checksum.

>>> run = Run.resolve(None)          # the latest run
>>> path, data, verified = run.read_model("finetuned")   # fa_compress.models.load_run_model rebuilds it
"""

from __future__ import annotations

import json
import os
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

from .files import atomic_write_bytes, load_torch_file, save_model_file, save_torch_file
from ..errors import CheckpointError, DamagedFileError, InternalError, NotFoundError, OutputError
from .integrity import Digest, check_bytes, check_file, file_digest
from .lock import RunLock, writer_lock
from .manifest import SCHEMA_VERSION, validate_manifest

MANIFEST = "run.json"
LATEST = "LATEST"
FORMAT_VERSION = SCHEMA_VERSION  # the manifest format this facompress writes (see manifest.py)


def runs_root() -> Path:
    """Where new runs go: `$FACOMPRESS_RUNS`, else `./runs`."""
    return Path(os.environ.get("FACOMPRESS_RUNS", "runs"))


def _write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2, sort_keys=False) + "\n").encode())


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{path} cannot be read ({exc.strerror or exc})") from exc


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc}); the run is damaged") from exc


class Run:
    """A run directory and its manifest."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    # ---- finding runs -------------------------------------------------------------------
    @classmethod
    def create(cls, root: Path | None = None, name: str = "run", path: Path | None = None) -> Run:
        """Make a new run folder (`root/<time>-<name>`, or exactly `path`) with an empty manifest."""
        if path is None:
            root = Path(root) if root is not None else runs_root()
            stamp = time.strftime("%Y%m%d-%H%M%S")
            path = root / f"{stamp}-{name}"
            suffix = 1
            while path.exists():
                suffix += 1
                path = root / f"{stamp}-{name}-{suffix}"
        path = Path(path)
        if (path / MANIFEST).exists():
            raise NotFoundError(f"{path} already holds a run; pass another run or remove it")
        if path.exists() and not path.is_dir():
            raise OutputError(f"{path} is a file, not a folder; pass a new folder for run")
        if path.exists() and any(path.iterdir()):
            raise NotFoundError(f"{path} exists and is not empty; pass a new folder for run")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file where a parent folder should be, no permission, ...
            raise OutputError(f"cannot create the run folder {path}: {exc.strerror or exc}; "
                              f"pass run DIR in a folder you can write to") from exc
        run = cls(path)
        run._write_manifest({"format": FORMAT_VERSION, "created": _now(), "stages": {}, "files": {}})
        return run

    @classmethod
    def open(cls, path: Path) -> Run:
        """An existing run, its manifest checked; `NotFoundError` when `path` is not one."""
        run = cls(cls.locate(path))
        run.manifest  # noqa: B018 - refuses a damaged manifest now, not in the middle of a stage
        return run

    @classmethod
    def locate(cls, path: Path | None, root: Path | None = None) -> Path:
        """The folder of run `path` (else the latest under `root`), without reading its manifest."""
        if path is None:
            root = Path(root) if root is not None else runs_root()
            marker = root / LATEST
            if not marker.is_file():
                raise NotFoundError(f"no run found under {root}/; run `facompress finetune` first or pass run DIR")
            path = root / marker.read_text().strip()
        path = Path(path)
        if not path.is_dir():
            raise NotFoundError(f"run directory {path} does not exist; pass run DIR of an existing run")
        if not (path / MANIFEST).is_file():
            raise NotFoundError(f"{path} is not a facompress run (no {MANIFEST}); "
                                f"pass a folder made by `facompress finetune`")
        return path

    @classmethod
    def latest(cls, root: Path | None = None) -> Run:
        """The run last marked latest under `root`."""
        return cls.open(cls.locate(None, root))

    @classmethod
    def resolve(cls, path: Path | None, root: Path | None = None) -> Run:
        """`path` when given, else the latest run."""
        return cls.open(path) if path is not None else cls.latest(root)

    def mark_latest(self, root: Path | None = None) -> None:
        """Make this run the one later commands use by default."""
        root = Path(root) if root is not None else self.path.parent
        root.mkdir(parents=True, exist_ok=True)
        try:
            name = str(self.path.resolve().relative_to(root.resolve()))
        except ValueError:
            name = str(self.path.resolve())
        atomic_write_bytes(root / LATEST, (name + "\n").encode())

    # ---- the one writer -----------------------------------------------------------------
    def writer(self, stage: str) -> AbstractContextManager[RunLock]:
        """Hold the run's writer lock while `stage` writes (`lock.writer_lock`): `RunLockedError` when another
        command holds it; a stale lock taken over is recorded in run.json's `lock_takeovers`.

        >>> with run.writer("export"):
        ...     run.record("export", entry)
        """
        return writer_lock(self.path, stage, on_takeover=lambda stale: self._record_takeover(stage, stale))

    def _record_takeover(self, stage: str, stale: dict[str, Any]) -> None:
        manifest = self.manifest
        manifest.setdefault("lock_takeovers", []).append({"at": _now(), "by": stage, "stale": stale})
        self._write_manifest(manifest)

    # ---- the manifest -------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    @property
    def manifest(self) -> dict[str, Any]:
        """The manifest as a dict, checked against the schema (`CheckpointError` naming the field)."""
        return validate_manifest(_read_json(self.manifest_path), source=self.manifest_path)

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        from .. import __version__

        if manifest.get("format", FORMAT_VERSION) < FORMAT_VERSION:  # a run from before checksums
            manifest["upgraded_from"] = manifest["format"]
        manifest.update(format=FORMAT_VERSION, written_by=f"facompress {__version__}")
        manifest.setdefault("files", {})
        text = json.dumps(manifest, indent=2) + "\n"
        try:
            validate_manifest(json.loads(text), source=self.manifest_path)  # as a reader will see it
        except CheckpointError as exc:
            raise InternalError(f"facompress was about to write a manifest its own schema refuses: {exc}") from exc
        atomic_write_bytes(self.manifest_path, text.encode())

    def stage(self, name: str) -> dict[str, Any] | None:
        """The recorded entry of a stage, or None."""
        return self.manifest["stages"].get(name)

    def record(self, stage: str, entry: dict[str, Any]) -> None:
        """Store (replace) a stage's entry in the manifest, atomically, with the size and SHA-256 of
        every artifact it lists that exists (so a later read notices any change)."""
        manifest = self.manifest
        manifest["stages"][stage] = {"updated": _now(), **entry}
        files = manifest.setdefault("files", {})
        for name in artifact_names(entry.get("artifacts")):
            path = self.artifact_file(name)
            if path.is_file():
                files[self.artifact_key(path)] = file_digest(path).record(stage, _now())
        self._write_manifest(manifest)

    def write_json(self, name: str, data: Any) -> Path:
        """Write a JSON document into the run, atomically, and record its checksum."""
        path = self.path / name
        _write_json(path, data)
        self._register(self.artifact_key(path), file_digest(path), None)
        return path

    def read_json(self, name: str) -> Any:
        """A JSON document of the run, checked against the checksum recorded when it was written."""
        path = self.artifact_file(name)
        if not path.is_file():
            raise NotFoundError(f"{path} does not exist in run {self.path}")
        data = _read_bytes(path)
        check_bytes(path, data, self.file_record(path))
        try:
            return json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{path} is not valid JSON ({exc}); the run is damaged") from exc

    # ---- checksums ----------------------------------------------------------------------
    def artifact_key(self, path: Path | str) -> str:
        """How the manifest's `files` names the file at `path` (a path, not an artifact name): relative
        to the run when inside it, else absolute."""
        full, base = Path(os.path.abspath(path)), Path(os.path.abspath(self.path))  # links not followed
        try:
            return full.relative_to(base).as_posix()
        except ValueError:
            return str(full)

    def artifact_file(self, name: str) -> Path:
        """The file an artifact name denotes; `CheckpointError` when a name inside the run leads out of it
        (through `..` or a link)."""
        if Path(name).is_absolute():
            return Path(name)
        path = self.path / name
        root = self.path.resolve()
        if ".." in Path(name).parts or (path.exists() and not path.resolve().is_relative_to(root)):
            raise CheckpointError(f"{self.manifest_path}: artifact {name!r} leads outside the run directory "
                                  f"{self.path}; the run is damaged or hostile: refused")
        return path

    def file_record(self, path: Path | str) -> dict[str, Any] | None:
        """The size, SHA-256 and stage recorded when a file was written, or None (a run from before checksums)."""
        return (self.manifest.get("files") or {}).get(self.artifact_key(path))

    def verify_file(self, path: Path | str) -> bool:
        """True when a file matches the checksum recorded when it was written, False when none was
        recorded; `CheckpointError` naming the file and the stage to re-run when it changed."""
        return check_file(Path(path), self.file_record(path))

    def register_files(self, paths: list[Path], stage: str | None) -> None:
        """Record the size and SHA-256 of files a stage (re)wrote without recording itself again
        (`facompress report` rewriting bench's report files), so `check` does not call them changed."""
        manifest = self.manifest
        files = manifest.setdefault("files", {})
        for path in paths:
            if Path(path).is_file():
                files[self.artifact_key(path)] = file_digest(Path(path)).record(stage, _now())
        self._write_manifest(manifest)

    def _register(self, name: str, digest: Digest, stage: str | None) -> None:
        manifest = self.manifest
        manifest.setdefault("files", {})[name] = digest.record(stage, _now())
        self._write_manifest(manifest)

    # ---- model files --------------------------------------------------------------------
    def model_path(self, name: str) -> Path:
        return self.path / f"{name}.safetensors"

    def has_model(self, name: str) -> bool:
        return self.model_path(name).is_file()

    def save_model(self, name: str, model: nn.Module, meta: dict[str, Any]) -> Path:
        """Save `model` as `<name>.safetensors` with its rebuild metadata, and record its checksum."""
        path = self.model_path(name)
        digest = save_model_file(path, model.state_dict(), meta)
        self._register(self.artifact_key(path), digest, meta.get("stage") if isinstance(meta.get("stage"), str) else None)
        return path

    def read_model(self, name: str) -> tuple[Path, bytes, bool]:
        """The bytes of the model file saved as `name` and whether they match the checksum the manifest
        records (False: no checksum recorded); `DamagedFileError` when they do not match.
        `fa_compress.models.load_run_model` rebuilds the model from them."""
        path = self.model_path(name)
        if not path.is_file():
            raise NotFoundError(f"run {self.path} has no model {name!r} ({path.name} missing); "
                                f"run the stage that makes it first")
        data = _read_bytes(path)
        return path, data, check_bytes(path, data, self.file_record(path))

    def check_model_meta(self, path: Path, meta: dict[str, Any], *, verify: bool = True) -> None:
        """`CheckpointError` when a model file's architecture or classes are not the run's own (a file
        copied in from another run would prune, export or score against the wrong labels), or (with
        `verify`) when it changed since it was written."""
        stage = self.stage("finetune") or {}
        arch = (stage.get("options") or {}).get("model")
        if arch and meta.get("arch") != arch:
            raise CheckpointError(f"{path} holds a {meta.get('arch')} model but run {self.path} fine-tuned {arch}; "
                                  f"it comes from another run: restore the run's own file or use that run")
        classes = (stage.get("dataset") or {}).get("classes")
        theirs = meta.get("classes") if isinstance(meta.get("classes"), list) else []
        if classes is not None and theirs != list(classes):
            raise CheckpointError(f"{path} was trained for {len(theirs)} classes ({_few(theirs)}) but run {self.path} "
                                  f"fine-tuned on {len(classes)} ({_few(classes)}); it comes from another run")
        if verify:
            self.verify_file(path)


def artifact_names(artifacts: Any) -> list[str]:
    """The file names a stage's `artifacts` lists (plain names and `{"path": ...}` entries)."""
    if not isinstance(artifacts, dict):
        return []
    names = [v.get("path") if isinstance(v, dict) else v for v in artifacts.values()]
    return [n for n in names if isinstance(n, str)]


def _few(names: list[str], shown: int = 3) -> str:
    return ", ".join(map(str, names[:shown])) + (", ..." if len(names) > shown else "")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def finetune_options(run: Run) -> dict[str, Any]:
    """The options `finetune` recorded in the run; `NotFoundError` when the run has none."""
    stage = run.stage("finetune")
    if not stage or stage.get("status") != "done":
        raise NotFoundError(f"run {run.path} has no finished fine-tuning; run `facompress finetune` first")
    return stage["options"]


def save_train_state(path: Path, state: dict[str, Any]) -> None:
    """Write a resumable training state (tensors and plain containers only), atomically."""
    save_torch_file(path, state)


def load_train_state(path: Path) -> dict[str, Any]:
    """Read a training state with `weights_only=True`: refuses anything that could run code."""
    state = load_torch_file(path)
    if not isinstance(state, dict) or "phase_index" not in state:
        raise CheckpointError(f"{path} is not a facompress training state")
    return state
