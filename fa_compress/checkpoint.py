"""Reading and writing model files without ever unpickling code.

Weights go to safetensors (tensors only); everything needed to rebuild the model (architecture
name, class names, per-layer channel counts, gates) goes to a JSON document stored in the same
file's metadata. Training-state checkpoints (optimizer, scheduler, RNG) use `torch.save` and are
read back with `torch.load(weights_only=True)`, which refuses arbitrary objects.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError, NotFoundError, OutputError

_META_KEY = "facompress"


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file, fsync and rename: never a torn file."""
    path = Path(path)
    if not path.parent.is_dir():
        raise NotFoundError(f"folder {path.parent} does not exist; create it or choose another path")
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise _unwritable(path, exc) from exc
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _unwritable(path, exc) from exc
        raise


def _unwritable(path: Path, exc: OSError) -> OutputError:
    return OutputError(f"cannot write {path}: {exc.strerror or exc}; choose a folder you can write to")


def save_model_file(path: Path, state_dict: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> None:
    """Save tensors as safetensors with `meta` (JSON-serialisable) in the file's metadata, atomically."""
    from safetensors.torch import save

    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    atomic_write_bytes(Path(path), save(tensors, metadata={_META_KEY: json.dumps(meta)}))


def load_model_file(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load a file written by `save_model_file`: (state_dict, meta). Raises `CheckpointError` if unreadable."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"model file {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw_meta = (f.metadata() or {}).get(_META_KEY)
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises several types for corrupt headers
        raise CheckpointError(f"{path} is not a readable safetensors model file ({exc}); re-create it") from exc
    if raw_meta is None:
        raise CheckpointError(f"{path} has no facompress metadata; it was not written by facompress")
    try:
        meta = json.loads(raw_meta)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path} has damaged facompress metadata (not JSON: {exc}); re-create it") from exc
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path} has damaged facompress metadata (not a JSON object); re-create it")
    return tensors, meta


def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    """Load a plain state dict (`.safetensors`, or `.pt/.pth` read with `weights_only=True`)."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"weights file {path} does not exist; pass imagenet, none, or an existing file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:
            raise CheckpointError(f"{path} is not a readable safetensors file ({exc})") from exc
    obj = load_torch_file(path)
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors")
    return obj


def load_torch_file(path: Path) -> Any:
    """`torch.load(path, weights_only=True)`: tensors and plain containers only, never code."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        text = str(exc).split("\n")[0][:200] or type(exc).__name__
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            raise CheckpointError(
                f"{path} holds objects other than tensors and plain containers; refused to unpickle it "
                f"(it could run code). Only load files you trust, re-saved as a state dict"
            ) from exc
        raise CheckpointError(f"{path} is corrupt or not a PyTorch checkpoint ({text})") from exc


def save_torch_file(path: Path, obj: Any) -> None:
    """`torch.save` through a temporary file + fsync + rename."""
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(Path(path), buf.getvalue())
