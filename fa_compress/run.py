"""Run directories: where every stage reads its inputs and writes its artifacts and metrics.

A run is a folder holding `run.json` (the manifest) and the model files. `facompress finetune`
creates one under `runs/` (or `$FACOMPRESS_RUNS`) and marks it as the latest in `runs/LATEST`,
so later commands find it without a path. The manifest records, per stage, the settings, the
artifacts (paths relative to the run) and the metrics. Every write is atomic.

>>> run = Run.resolve(None)          # the latest run
>>> model, meta = run.load_model("finetuned")
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from torch import nn

from .checkpoint import atomic_write_bytes, load_model_file, save_model_file
from .errors import CheckpointError, NotFoundError

MANIFEST = "run.json"
LATEST = "LATEST"
FORMAT_VERSION = 1


def runs_root() -> Path:
    """Where new runs go: `$FACOMPRESS_RUNS`, else `./runs`."""
    return Path(os.environ.get("FACOMPRESS_RUNS", "runs"))


def _write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2, sort_keys=False) + "\n").encode())


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
            raise NotFoundError(f"{path} already holds a run; pass another --run or remove it")
        if path.exists() and any(path.iterdir()):
            raise NotFoundError(f"{path} exists and is not empty; pass a new folder for --run")
        path.mkdir(parents=True, exist_ok=True)
        run = cls(path)
        _write_json(run.manifest_path, {"format": FORMAT_VERSION, "created": _now(), "stages": {}})
        return run

    @classmethod
    def open(cls, path: Path) -> Run:
        """An existing run; `NotFoundError` when `path` is not one."""
        path = Path(path)
        if not path.is_dir():
            raise NotFoundError(f"run directory {path} does not exist; pass --run DIR of an existing run")
        if not (path / MANIFEST).is_file():
            raise NotFoundError(f"{path} is not a facompress run (no {MANIFEST}); "
                                f"pass a folder made by `facompress finetune`")
        run = cls(path)
        manifest = run.manifest
        if not isinstance(manifest, dict) or "stages" not in manifest:
            raise CheckpointError(f"{run.manifest_path} is not a facompress manifest")
        return run

    @classmethod
    def latest(cls, root: Path | None = None) -> Run:
        """The run last marked latest under `root`."""
        root = Path(root) if root is not None else runs_root()
        marker = root / LATEST
        if not marker.is_file():
            raise NotFoundError(f"no run found under {root}/; run `facompress finetune` first or pass --run DIR")
        target = marker.read_text().strip()
        return cls.open(root / target)

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

    # ---- the manifest -------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    @property
    def manifest(self) -> dict[str, Any]:
        return _read_json(self.manifest_path)

    def stage(self, name: str) -> dict[str, Any] | None:
        """The recorded entry of a stage, or None."""
        return self.manifest["stages"].get(name)

    def record(self, stage: str, entry: dict[str, Any]) -> None:
        """Store (replace) a stage's entry in the manifest, atomically."""
        manifest = self.manifest
        manifest["stages"][stage] = {"updated": _now(), **entry}
        _write_json(self.manifest_path, manifest)

    def write_json(self, name: str, data: Any) -> Path:
        """Write a JSON document into the run, atomically."""
        path = self.path / name
        _write_json(path, data)
        return path

    def read_json(self, name: str) -> Any:
        path = self.path / name
        if not path.is_file():
            raise NotFoundError(f"{path} does not exist in run {self.path}")
        return _read_json(path)

    # ---- model files --------------------------------------------------------------------
    def model_path(self, name: str) -> Path:
        return self.path / f"{name}.safetensors"

    def has_model(self, name: str) -> bool:
        return self.model_path(name).is_file()

    def save_model(self, name: str, model: nn.Module, meta: dict[str, Any]) -> Path:
        """Save `model` as `<name>.safetensors` with its rebuild metadata."""
        path = self.model_path(name)
        save_model(path, model, meta)
        return path

    def load_model(self, name: str) -> tuple[nn.Module, dict[str, Any]]:
        """Rebuild and load the model saved as `name`."""
        path = self.model_path(name)
        if not path.is_file():
            raise NotFoundError(f"run {self.path} has no model {name!r} ({path.name} missing); "
                                f"run the stage that makes it first")
        return load_model(path)


def model_meta(model: nn.Module, *, arch: str, classes: list[str], img_size: int,
               normalization: dict[str, list[float]], **extra: Any) -> dict[str, Any]:
    """The metadata that lets `load_model` rebuild `model` from its file alone."""
    from .gates import has_gates
    from .models.structure import describe_structure

    return {"arch": arch, "num_classes": len(classes), "classes": list(classes), "img_size": img_size,
            "normalization": normalization, "gated": has_gates(model),
            "structure": describe_structure(model), **extra}


def save_model(path: Path, model: nn.Module, meta: dict[str, Any]) -> None:
    """Write a model file (safetensors + JSON metadata), atomically."""
    save_model_file(path, model.state_dict(), meta)


def load_model(path: Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the architecture described in the file's metadata and load its weights strictly."""
    from .gates import insert_gates
    from .models import build_model
    from .models.structure import apply_structure

    state, meta = load_model_file(path)
    for key in ("arch", "num_classes", "structure"):
        if key not in meta:
            raise CheckpointError(f"{path} metadata lacks {key!r}; it was not written by this facompress")
    model = build_model(meta["arch"], meta["num_classes"], weights="none")
    apply_structure(model, meta["structure"])
    if meta.get("gated"):
        insert_gates(model)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise CheckpointError(f"{path} does not match architecture {meta['arch']!r}: "
                              f"{' '.join(first[:2])[:300]}") from exc
    model.eval()
    return model, meta


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def save_train_state(path: Path, state: dict[str, Any]) -> None:
    """Write a resumable training state (tensors and plain containers only), atomically."""
    from .checkpoint import save_torch_file

    save_torch_file(path, state)


def load_train_state(path: Path) -> dict[str, Any]:
    """Read a training state with `weights_only=True`: refuses anything that could run code."""
    from .checkpoint import load_torch_file

    state = load_torch_file(path)
    if not isinstance(state, dict) or "phase_index" not in state:
        raise CheckpointError(f"{path} is not a facompress training state")
    return state
