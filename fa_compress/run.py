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
from .errors import CheckpointError, NotFoundError, OutputError

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
        if path.exists() and not path.is_dir():
            raise OutputError(f"{path} is a file, not a folder; pass a new folder for --run")
        if path.exists() and any(path.iterdir()):
            raise NotFoundError(f"{path} exists and is not empty; pass a new folder for --run")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file where a parent folder should be, no permission, ...
            raise OutputError(f"cannot create the run folder {path}: {exc.strerror or exc}; "
                              f"pass --run DIR in a folder you can write to") from exc
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
        model, meta = load_model(path)
        self.check_model_meta(path, meta)
        return model, meta

    def check_model_meta(self, path: Path, meta: dict[str, Any]) -> None:
        """`CheckpointError` when a model file's architecture or classes are not the run's own
        (a file copied in from another run would prune, export or score against the wrong labels)."""
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
    _check_meta(path, meta, state)
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


def _check_meta(path: Path, meta: dict[str, Any], state: dict[str, Any]) -> None:
    """`CheckpointError` unless the metadata names a known architecture and its class and channel
    counts match the tensors in the file (checked before any layer is built)."""
    from .models import get_spec, model_names
    from .models.structure import check_structure

    for key in ("arch", "num_classes", "structure"):
        if key not in meta:
            raise CheckpointError(f"{path} metadata lacks {key!r}; it was not written by this facompress")
    arch, num_classes = meta["arch"], meta["num_classes"]
    if not isinstance(arch, str) or arch not in model_names():
        raise CheckpointError(f"{path} names architecture {arch!r}, which facompress does not know "
                              f"(known: {', '.join(model_names())})")
    head_key = f"{get_spec(arch).head}.weight"
    head = state.get(head_key)
    if head is None:
        raise CheckpointError(f"{path} says it holds a {arch} but has no {head_key}; its tensors are "
                              f"of another architecture")
    if type(num_classes) is not int or tuple(head.shape[:1]) != (num_classes,):
        raise CheckpointError(f"{path} metadata says {num_classes!r} classes, which its classifier weights "
                              f"do not bear out; the file is damaged")
    img_size = meta.get("img_size")
    if "img_size" in meta and (type(img_size) is not int or not 8 <= img_size <= 1024):
        raise CheckpointError(f"{path} metadata gives img_size {img_size!r}, not a size in 8-1024 px; "
                              f"the file is damaged")
    try:
        check_structure(meta["structure"], state)
    except CheckpointError as exc:
        raise CheckpointError(f"{path} is damaged: {exc}") from exc


def _few(names: list[str], shown: int = 3) -> str:
    return ", ".join(map(str, names[:shown])) + (", ..." if len(names) > shown else "")


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
