"""The project's exceptions (and warnings).

`UserError` and its subclasses describe something the user asked for that cannot be done
(a missing file, an unknown name, an out-of-range option). The CLI prints them as one line on
stderr and exits with code 2. Anything else that escapes is an internal bug and keeps its traceback.
A `FacompressWarning` is a note the command goes on after; the CLI prints it as one `note:` line on stderr.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class FacompressError(Exception):
    """Base class of every exception facompress raises on purpose."""


class UserError(FacompressError):
    """Bad input: the message says what was asked, what is available and what to do."""


class ConfigError(UserError):
    """An option or combination of options is out of range."""


class NotFoundError(UserError):
    """A file, run, model or dataset that was asked for does not exist."""


class CheckpointError(UserError):
    """A checkpoint or artifact is corrupt, unsafe, or does not match the model asked for."""


class DamagedFileError(CheckpointError):
    """A file's bytes are not what facompress wrote: unreadable, truncated, or failing a checksum."""


class OutputError(UserError):
    """A file or folder cannot be written where asked: no permission, a file in the way, a full disk."""


class MissingDependencyError(UserError):
    """An optional runtime (TensorRT, onnxruntime-gpu, a CUDA GPU) is not available here."""


class ParityError(UserError):
    """An exported artifact does not compute what the PyTorch model computes."""


class RunLockedError(UserError):
    """Another command is writing the same run directory (its `.lock` names the stage and process)."""


class InternalError(FacompressError):
    """An invariant of facompress itself broke: a bug to report, not a user mistake."""


class FacompressWarning(UserWarning):
    """Something a user should know that does not stop the command; the CLI prints `note: <message>`."""


class StaleLockWarning(FacompressWarning):
    """A run's lock was left by a process that is gone (killed); this command took it over."""


def unknown_name(kind: str, name: str, known: Iterable[str]) -> NotFoundError:
    """Build the error for an unknown `name`, listing the known ones and the closest matches."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return NotFoundError(f"unknown {kind} {name!r}; known: {', '.join(known)}.{hint}")
