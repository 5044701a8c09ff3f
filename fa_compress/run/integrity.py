"""Size and SHA-256 of the files a run holds: computed when facompress writes them, compared when it reads.

The run's manifest keeps one record per file (`{"size_bytes", "sha256", "stage"}` under `files`);
`check_bytes` compares a file's bytes with its record and names the stage to re-run when they differ.

>>> digest = file_digest(path)                # Digest(size_bytes=9194256, sha256='3f2a...')
>>> check_bytes(path, path.read_bytes(), record)   # CheckpointError when the file changed
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, DamagedFileError, NotFoundError

_CHUNK = 1 << 20  # bytes read at a time when hashing a file


@dataclass(frozen=True)
class Digest:
    """What a file's record holds: its length and SHA-256."""

    size_bytes: int
    sha256: str

    def record(self, stage: str | None, written: str) -> dict[str, Any]:
        """The manifest's record of a file with this digest, written by `stage`."""
        return {"size_bytes": self.size_bytes, "sha256": self.sha256, "stage": stage, "written": written}


def bytes_digest(data: bytes | memoryview) -> Digest:
    """The digest of bytes already in memory."""
    return Digest(len(data), hashlib.sha256(data).hexdigest())


def file_digest(path: Path) -> Digest:
    """The digest of a file, read in 1 MiB chunks."""
    h, size = hashlib.sha256(), 0
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
                size += len(chunk)
    except FileNotFoundError as exc:
        raise NotFoundError(f"{path} does not exist") from exc
    except OSError as exc:
        raise CheckpointError(f"{path} cannot be read ({exc.strerror or exc})") from exc
    return Digest(size, h.hexdigest())


def rerun_hint(stage: str | None) -> str:
    """How to recreate the files a stage wrote: `facompress prune` for `prune`, `facompress sweep` for
    `prune:keep0.5` (the sweep names its pruned models)."""
    if not stage:
        return "re-run the stage that wrote it"
    command, _, name = stage.partition(":")
    if command == "prune" and name:
        return "re-run the sweep that made it (`facompress sweep`)"
    if command == "export" and name:
        return f"re-run that stage (`facompress export --model {name}`)"
    if command in ("finetune", "prune", "export", "bench", "sweep"):
        return f"re-run that stage (`facompress {command}`)"
    return f"re-run the {stage!r} stage"


def mismatch_message(path: Path, got: Digest, record: dict[str, Any]) -> str:
    """One line: which file changed since which stage wrote it, and how to recover."""
    stage = record.get("stage")
    by = f"stage {stage!r} wrote it" if stage else "facompress wrote it"
    if got.size_bytes != record["size_bytes"]:
        what = f"it is {got.size_bytes} bytes, {record['size_bytes']} were written"
    else:
        what = f"SHA-256 {got.sha256[:12]}... differs from the {record['sha256'][:12]}... recorded"
    return f"{path} changed since {by} ({what}); the file is damaged: {rerun_hint(stage)} to recreate it"


def check_bytes(path: Path, data: bytes | memoryview, record: dict[str, Any] | None) -> bool:
    """True when `data` (the bytes of `path`) matches `record`, False when there is no record (a file
    from before checksums); `CheckpointError` when it differs."""
    if record is None:
        return False
    if len(data) == record["size_bytes"]:
        got = bytes_digest(data)
        if got.sha256 == record["sha256"]:
            return True
    else:
        got = Digest(len(data), "")
    raise DamagedFileError(mismatch_message(path, got, record))


def check_file(path: Path, record: dict[str, Any] | None) -> bool:
    """`check_bytes` for a file on disk, hashed in chunks (its size is compared first)."""
    if record is None:
        return False
    size = Path(path).stat().st_size
    got = file_digest(path) if size == record["size_bytes"] else Digest(size, "")
    if got.sha256 != record["sha256"]:
        raise DamagedFileError(mismatch_message(path, got, record))
    return True
