"""One writer per run directory: `<run>/.lock`, created atomically, naming the stage and process holding it.

Every stage that writes into a run (finetune, prune, export, bench, report, sweep) holds the lock while
it works; readers (`gates`, `check`, loading a model) take none. A second writer is refused with
`RunLockedError` before it writes anything. A lock whose process is gone (killed; its pid no longer runs
on this host) is stale: the next writer takes it over and says so with a `StaleLockWarning`. A stage
run inside another on the same run (the sweep's prunes, exports and benchmark) works under the outer lock.

>>> with writer_lock(run.path, "export") as lock:    # or `with run.writer("export"):` (records takeovers)
...     write_the_files(run)                           # not reached when another writer holds the run
>>> lock.took_over                                     # the stale holder's record, or None
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import OutputError, RunLockedError, StaleLockWarning

LOCK_FILE = ".lock"
# lock file (real path) -> the lock this thread / task holds on it; replaced, never mutated
_HELD: ContextVar[dict[str, RunLock]] = ContextVar("facompress_run_locks", default={})


@dataclass(frozen=True)
class RunLock:
    """Who holds a run: the lock file's JSON."""

    stage: str
    pid: int
    hostname: str
    started: str                    # local time the lock was taken
    pid_started: int | None = None  # the process's start (clock ticks since boot, Linux): a reused pid is not it
    token: str = ""                 # tells this lock from a later one of the same process
    took_over: dict[str, Any] | None = None  # the stale lock this one replaced


@contextmanager
def writer_lock(run_path: Path | str, stage: str,
                on_takeover: Callable[[dict[str, Any]], None] | None = None) -> Iterator[RunLock]:
    """Hold `<run_path>/.lock` for `stage` while the block runs, and remove it after (also on an exception).
    `RunLockedError` when a live process holds it; `on_takeover(stale_record)` runs after a stale one is
    taken over. Inside a block holding the same run's lock, yields that lock and takes nothing."""
    path = Path(run_path) / LOCK_FILE
    key, held = os.path.realpath(path), _HELD.get()
    if key in held:
        yield held[key]
        return
    lock = _acquire(path, stage)
    reset = _HELD.set({**held, key: lock})
    try:
        if lock.took_over is not None and on_takeover is not None:
            on_takeover(lock.took_over)
        yield lock
    finally:
        _HELD.reset(reset)
        if (_read(path)[1] or {}).get("token") == lock.token:  # still ours (not deleted by hand and retaken)
            path.unlink(missing_ok=True)


def _acquire(path: Path, stage: str) -> RunLock:
    stale = None
    for _ in range(3):  # each round takes the lock, raises, or removes a stale lock (another writer may win)
        lock = RunLock(stage, os.getpid(), socket.gethostname(), time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                       _process_start(os.getpid()), uuid.uuid4().hex[:12], stale)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raw, holder = _read(path)
            if raw is not None and (holder is None or _alive(holder)):
                raise RunLockedError(_refusal(path, stage, holder)) from None
            if raw is not None and _set_aside(path, raw):
                stale = {k: v for k, v in holder.items() if k != "took_over"}
            continue
        except OSError as exc:
            raise OutputError(f"cannot create the lock file {path} for `{stage}`: {exc.strerror or exc}; "
                              f"the run folder must be writable") from exc
        try:
            with os.fdopen(fd, "w") as file:
                json.dump(asdict(lock), file)
        except OSError as exc:  # a full disk: leave no half-written lock behind
            path.unlink(missing_ok=True)
            raise OutputError(f"cannot write the lock file {path}: {exc.strerror or exc}") from exc
        if stale is not None:
            warnings.warn(StaleLockWarning(
                f"took over the lock of run {path.parent} left by `{stale['stage']}` (pid {stale['pid']}, since "
                f"{stale.get('started', '?')}), which is no longer running; the files it was writing may be "
                f"incomplete: `facompress check --run {path.parent}` lists them"), stacklevel=4)
        return lock
    raise RunLockedError(f"`{stage}` could not take the lock {path}: other commands keep taking it; "
                         f"run one writer at a time on run {path.parent}")


def _read(path: Path) -> tuple[bytes | None, dict[str, Any] | None]:
    """The lock file's bytes (None: no file) and its record (None: not a lock facompress wrote)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, None
    try:
        record = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return raw, None
    fields_ok = isinstance(record, dict) and isinstance(record.get("stage"), str) \
        and isinstance(record.get("hostname"), str) and type(record.get("pid")) is int and record["pid"] > 0
    return raw, record if fields_ok else None


def _alive(holder: dict[str, Any]) -> bool:
    """False only when the holder is surely gone: on this host, and no process (or a newer one) has its pid."""
    if holder["hostname"] != socket.gethostname() or os.name == "nt":  # cannot tell: assume it runs
        return True
    try:
        os.kill(holder["pid"], 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    recorded = holder.get("pid_started")
    return recorded is None or _process_start(holder["pid"]) in (None, recorded)


def _process_start(pid: int) -> int | None:
    """When process `pid` started (clock ticks since boot, /proc/<pid>/stat field 22); None where unknown."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
        return int(text[text.rindex(")") + 2:].split()[19])  # after "(comm)": fields 3, 4, ... 22
    except (OSError, ValueError, IndexError):
        return None


def _set_aside(path: Path, raw: bytes) -> bool:
    """Remove the stale lock whose bytes are `raw`; False (the lock left in place) when another writer
    replaced it in the meantime."""
    aside = path.with_name(f"{LOCK_FILE}.stale-{uuid.uuid4().hex[:12]}")
    try:
        os.rename(path, aside)  # atomic: whatever lock is there now, only this process holds it aside
    except FileNotFoundError:
        return False
    mine = aside.read_bytes() == raw
    if not mine:
        try:
            os.link(aside, path)  # a live writer's lock, moved by mistake: put it back
        except FileExistsError:
            pass
    aside.unlink()
    return mine


def _refusal(path: Path, stage: str, holder: dict[str, Any] | None) -> str:
    """Why `stage` cannot write the run now, and what to do."""
    run = path.parent
    if holder is None:
        return (f"cannot run `{stage}`: run {run} is locked ({path} exists but is not a lock facompress "
                f"wrote completely); if no facompress command is working on this run, delete {path}")
    pid, host = holder["pid"], holder["hostname"]
    here = host == socket.gethostname()
    state = "which is still running" if here else "which may still be running there (this host cannot tell)"
    gone = f"killed (and pid {pid} now belongs to another program)" if here else f"killed or {host} rebooted"
    return (f"cannot run `{stage}`: run {run} is being written by `{holder['stage']}` (pid {pid} on {host}, since "
            f"{holder.get('started', '?')}), {state}; wait for it to finish, or if it was {gone}, delete {path}")
