"""Reading and writing model files without ever unpickling code.

Weights go to safetensors (tensors only); everything needed to rebuild the model (architecture
name, class names, per-layer channel counts, gates) goes to a JSON document stored in the same
file's metadata. Training-state checkpoints (optimizer, scheduler, RNG) use `torch.save` and are
read back with `torch.load(weights_only=True)`, which refuses arbitrary objects.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch loads on first use, so importing the run layer stays cheap
    import torch

from ..errors import CheckpointError, DamagedFileError, NotFoundError, OutputError
from .integrity import Digest, bytes_digest, rerun_hint

_META_KEY = "facompress"
_DIGEST_KEY = "facompress_sha256"  # content_digest() of the file, written beside the metadata


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


def content_digest(tensors: Mapping[str, torch.Tensor], raw_meta: str) -> str:
    """SHA-256 over the metadata string and every tensor (name, dtype, shape, bytes), in name order:
    what a model file's self-check compares, whatever order safetensors lays the tensors out in."""
    import torch

    h = hashlib.sha256(b"facompress-model-v1\0" + raw_meta.encode() + b"\0")
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())  # the raw bytes, any dtype (bf16 included)
    return h.hexdigest()


def save_model_file(path: Path, state_dict: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> Digest:
    """Save tensors as safetensors with `meta` (JSON-serialisable) in the file's metadata, atomically.

    The file also carries `content_digest` of what it holds, so any later change to its tensors or
    metadata is refused on load. Returns the size and SHA-256 of the bytes written."""
    from safetensors.torch import save

    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    raw_meta = json.dumps(meta)
    data = save(tensors, metadata={_META_KEY: raw_meta, _DIGEST_KEY: content_digest(tensors, raw_meta)})
    atomic_write_bytes(Path(path), data)
    return bytes_digest(data)


def load_model_file(path: Path, data: bytes | None = None,
                    self_check: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load a file written by `save_model_file`: (state_dict, meta). Raises `CheckpointError` if unreadable
    or if its content differs from what was written.

    `data`: the file's bytes when the caller has read them already (to check them against the run's
    manifest first). `self_check=False` skips the content check when those bytes were just verified."""
    from safetensors.torch import load

    path = Path(path)
    if data is None:
        if not path.is_file():
            raise NotFoundError(f"model file {path} does not exist")
        data = _read(path)
    header = _safetensors_metadata(path, data)
    try:
        tensors = load(data)
    except Exception as exc:  # safetensors raises several types for corrupt files
        raise DamagedFileError(f"{path} is not a readable safetensors model file ({_first_line(exc)}); "
                               f"re-create it") from exc
    raw_meta = header.get(_META_KEY)
    if not isinstance(raw_meta, str):
        raise CheckpointError(f"{path} has no facompress metadata; it was not written by facompress")
    digest = header.get(_DIGEST_KEY)
    if self_check and digest is not None and content_digest(tensors, raw_meta) != digest:
        raise DamagedFileError(f"{path} is damaged: its tensors or metadata differ from what facompress wrote "
                               f"(content SHA-256 self-check failed); {rerun_hint(_stage_named(raw_meta))} to "
                               f"recreate it")
    try:
        meta = json.loads(raw_meta)
    except json.JSONDecodeError as exc:
        raise DamagedFileError(f"{path} has damaged facompress metadata (not JSON: {exc}); re-create it") from exc
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path} has damaged facompress metadata (not a JSON object); re-create it")
    return tensors, meta


def _stage_named(raw_meta: str) -> str | None:
    """The stage a model file's (possibly damaged) metadata says wrote it, if it still says so."""
    try:
        stage = json.loads(raw_meta).get("stage")
    except (json.JSONDecodeError, AttributeError):
        return None
    return stage if isinstance(stage, str) else None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{path} cannot be read ({exc.strerror or exc})") from exc


def _safetensors_metadata(path: Path, data: bytes) -> dict[str, Any]:
    """The `__metadata__` of a safetensors file, read from its header (8-byte length, then JSON)."""
    size = int.from_bytes(data[:8], "little") if len(data) >= 8 else -1
    if size < 2 or 8 + size > len(data):
        raise DamagedFileError(f"{path} is not a readable safetensors model file (header length {size} does not "
                               f"fit a {len(data)}-byte file: truncated or corrupt); re-create it")
    try:
        header = json.loads(data[8:8 + size])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DamagedFileError(f"{path} is not a readable safetensors model file (its header is not JSON: "
                               f"{exc}); re-create it") from exc
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if meta is not None and not (isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())):
        raise DamagedFileError(f"{path} is not a readable safetensors model file (its metadata is not a map "
                               f"of strings); re-create it")
    return meta or {}


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    """Load a plain state dict (`.safetensors`, or `.pt/.pth` read with `weights_only=True`)."""
    import torch

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
    import torch

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

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(Path(path), buf.getvalue())
