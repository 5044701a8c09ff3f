"""Model files: a model saved with what rebuilds it (architecture, classes, channel counts, gates),
and rebuilt from the file alone. The bytes go through `fa_compress.run` (safetensors, checksums);
this module knows what they mean.

>>> save_model(path, model, model_meta(model, arch="resnet18", classes=names, img_size=64, normalization=norm))
>>> model, meta = load_model(path)
>>> model, meta = load_run_model(run, "finetuned")     # checked against the run's manifest too
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from ..errors import CheckpointError, ConfigError, DamagedFileError, NotFoundError
from ..gates import has_gates, insert_gates
from ..run import Digest, Run, load_model_file, save_model_file, validate_model_meta
from ._builder import build_model, check_rebuilds, with_versions
from ._registry import get_spec
from .structure import apply_structure, check_structure, describe_structure


def model_meta(model: nn.Module, *, arch: str, classes: list[str], img_size: int,
               normalization: dict[str, list[float]], **extra: Any) -> dict[str, Any]:
    """The metadata that lets `load_model` rebuild `model` from its file alone."""
    check_rebuilds(model, arch)  # a pruned layer the structure record cannot rebuild: refused before writing
    return {"arch": arch, "num_classes": len(classes), "classes": list(classes), "img_size": img_size,
            "normalization": normalization, "gated": has_gates(model),
            "structure": describe_structure(model), **extra}


def save_model(path: Path, model: nn.Module, meta: dict[str, Any]) -> Digest:
    """Write a model file (safetensors + JSON metadata), atomically; returns its size and SHA-256."""
    return save_model_file(path, model.state_dict(), meta)


def load_model(path: Path, data: bytes | None = None, self_check: bool = True) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the architecture described in the file's metadata and load its weights strictly.

    `data`/`self_check`: see `fa_compress.run.load_model_file` (bytes already read and checked)."""
    state, meta = load_model_file(path, data=data, self_check=self_check)
    check_meta(path, meta, state)
    model = build_model(meta["arch"], meta["num_classes"], weights="none")
    apply_structure(model, meta["structure"])
    if meta.get("gated"):
        insert_gates(model, like=state)
    try:
        model.load_state_dict(with_versions(model, state), strict=True)  # MNASNet checks its version
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise CheckpointError(f"{path} does not match architecture {meta['arch']!r}: "
                              f"{' '.join(first[:2])[:300]}") from exc
    model.eval()
    return model, meta


def load_run_model(run: Run, name: str) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild and load the model `run` saved as `name`, after checking its bytes against the manifest."""
    path, data, verified = None, None, False
    try:
        path, data, verified = run.read_model(name)
    except DamagedFileError as changed:
        path = run.model_path(name)
        raise _diagnose(run, path, path.read_bytes(), changed) from None
    model, meta = load_model(path, data=data, self_check=not verified)
    run.check_model_meta(path, meta, verify=False)
    return model, meta


def check_model_content(run: Run, path: Path) -> None:
    """`CheckpointError` unless the file at `path` rebuilds as the run's model (what `check` verifies)."""
    _, meta = load_model(path)
    run.check_model_meta(path, meta, verify=False)


def _diagnose(run: Run, path: Path, data: bytes, changed: DamagedFileError) -> CheckpointError:
    """The most telling error for a model file whose checksum failed: what is wrong with its content
    (a model from another run, metadata that does not fit) when loading says so, else that it changed."""
    try:
        _, meta = load_model(path, data=data)
        run.check_model_meta(path, meta, verify=False)
    except DamagedFileError:
        return changed  # names the stage to re-run
    except CheckpointError as specific:
        return specific
    return changed


def check_meta(path: Path, meta: dict[str, Any], state: dict[str, Any]) -> None:
    """`CheckpointError` unless the metadata names a known architecture and its class and channel
    counts match the tensors in the file (checked before any layer is built)."""
    for key in ("arch", "num_classes", "structure"):
        if key not in meta:
            raise CheckpointError(f"{path} metadata lacks {key!r}; it was not written by this facompress")
    arch, num_classes = meta["arch"], meta["num_classes"]
    try:  # user code (file.py:factory) is imported only under --trust-code: get_spec refuses otherwise
        spec = get_spec(arch) if isinstance(arch, str) and arch else None
    except NotFoundError:
        spec = None
    except ConfigError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    if spec is None:
        raise CheckpointError(f"{path} names architecture {arch!r}, which facompress does not know "
                              f"(`facompress models` lists the names)")
    head_key = f"{spec.head}.weight"
    head = state.get(head_key)
    if head is None:
        raise CheckpointError(f"{path} says it holds a {arch} but has no {head_key}; its tensors are "
                              f"of another architecture")
    if type(num_classes) is not int or tuple(head.shape[:1]) != (num_classes,):
        raise CheckpointError(f"{path} metadata says {num_classes!r} classes, which its classifier weights "
                              f"do not bear out; the file is damaged")
    img_size = meta.get("img_size")
    if "img_size" in meta and (type(img_size) is not int or not 8 <= img_size <= 1024):
        raise CheckpointError(f"{path} metadata gives 'img_size' {img_size!r}, not a size in 8-1024 px; "
                              f"the file is damaged")
    validate_model_meta(meta, path)  # the types of every other field a stage reads (classes, normalization)
    try:
        check_structure(meta["structure"], state)
    except CheckpointError as exc:
        raise CheckpointError(f"{path} is damaged: {exc}") from exc
