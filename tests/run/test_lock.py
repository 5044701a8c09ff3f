"""One writer per run: a second writer is refused before it writes anything, a stale lock (its process
gone) is taken over with a note, and the lock is released however the block ends."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from fa_compress.errors import RunLockedError, StaleLockWarning
from fa_compress.run import LOCK_FILE, Run, writer_lock
from fa_compress.run.lock import _process_start
from tests.conftest import run_cli


# ---- helpers --------------------------------------------------------------------------------------
def plant_lock(run: Path, pid: int, stage: str = "prune", **extra) -> Path:
    """A lock as the process `pid` running `stage` on this host would have written it."""
    path = run / LOCK_FILE
    path.write_text(json.dumps({"stage": stage, "pid": pid, "hostname": socket.gethostname(),
                                "started": "2026-01-01T00:00:00+0000", **extra}))
    return path


def snapshot(root: Path) -> dict[str, tuple[int, int] | str]:
    """Everything under `root`, hidden entries too: file -> (size, mtime in ns); folder -> "dir"."""
    return {str(p.relative_to(root)): "dir" if p.is_dir() else (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*"))}


def exited_pid() -> int:
    """The pid of a process that has finished (and been reaped): what a killed writer leaves in its lock."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def sleeper():
    """A live process that is not this one."""
    proc = subprocess.Popen(["sleep", "120"])
    yield proc.pid
    proc.kill()
    proc.wait()


@pytest.fixture(params=["this-process", "other-process"])
def live_pid(request, sleeper) -> int:
    return os.getpid() if request.param == "this-process" else sleeper


# ---- a second writer is refused, writing nothing --------------------------------------------------
@pytest.mark.parametrize("argv", [["export"], ["bench"], ["report"], ["finetune", "--resume"]],
                         ids=["export", "bench", "report", "finetune-resume"])
def test_cli_writer_on_a_locked_run_exits_2_and_changes_nothing(argv, live_pid, finished_run, capsys):
    plant_lock(finished_run, live_pid)
    before = snapshot(finished_run)
    code, out, err = run_cli([*argv, "--run", str(finished_run)], capsys)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot run `"), err
    assert "`prune`" in lines[0] and f"pid {live_pid}" in lines[0] and "wait for it to finish" in lines[0]
    assert str(finished_run / LOCK_FILE) in lines[0]  # what to delete if the holder was killed
    assert "Traceback" not in out + err
    assert snapshot(finished_run) == before


def test_library_writers_on_a_locked_run_raise_and_change_nothing(sleeper, finished_run):
    from fa_compress.export.pipeline import ExportOptions, export_run
    from fa_compress.report.bench_stage import bench_run
    from fa_compress.search.sweep import sweep_run
    from fa_compress.train.stage import FinetuneOptions, finetune_run

    plant_lock(finished_run, sleeper, stage="sweep")
    before = snapshot(finished_run)
    run = Run.open(finished_run)
    writers = {"export": lambda: export_run(run, ExportOptions()),
               "bench": lambda: bench_run(run, backends=["torch-cpu"], batch_sizes=[1], warmup=1, rounds=2),
               "finetune": lambda: finetune_run(FinetuneOptions(run=finished_run, resume=True, show_progress=False)),
               "sweep": lambda: sweep_run(run, keeps=(0.5,), show_progress=False)}
    for stage, write in writers.items():
        with pytest.raises(RunLockedError, match=rf"cannot run `{stage}`.*`sweep` \(pid {sleeper} "):
            write()
    assert snapshot(finished_run) == before


def test_bench_without_writing_needs_no_lock(sleeper, finished_run):
    from fa_compress.report.bench_stage import bench_run

    plant_lock(finished_run, sleeper)
    report = bench_run(Run.open(finished_run), backends=["torch-cpu"], batch_sizes=[1], warmup=1, rounds=2,
                       eval_limit=8, write=False)
    assert {a.name for a in report.artifacts} >= {"finetuned"}


def test_a_reused_pid_is_not_the_holder(sleeper, tmp_path):
    """The pid runs, but a process started at another time: the writer that wrote the lock is gone."""
    started = _process_start(sleeper)
    if started is None:
        pytest.skip("no /proc here: a reused pid cannot be told from the holder")
    plant_lock(tmp_path, sleeper, pid_started=started + 1)
    with pytest.warns(StaleLockWarning), writer_lock(tmp_path, "export") as lock:
        assert lock.took_over["pid"] == sleeper
    plant_lock(tmp_path, sleeper, pid_started=started)
    with pytest.raises(RunLockedError), writer_lock(tmp_path, "export"):
        pass


def test_an_unreadable_lock_is_refused_with_what_to_do(tmp_path):
    (tmp_path / LOCK_FILE).write_bytes(b"")  # a writer between creating the file and writing it, or killed there
    with pytest.raises(RunLockedError, match="not a lock facompress wrote completely.*delete"):
        with writer_lock(tmp_path, "export"):
            pass
    assert (tmp_path / LOCK_FILE).read_bytes() == b""


# ---- a stale lock is taken over ------------------------------------------------------------------
def test_cli_takes_over_a_stale_lock_with_a_note(finished_run, capsys):
    dead = exited_pid()
    plant_lock(finished_run, dead)
    code, out, err = run_cli(["export", "--run", str(finished_run)], capsys)
    assert code == 0, err
    notes = [line for line in err.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1 and f"pid {dead}" in notes[0] and "`prune`" in notes[0], err
    assert "no longer running" in notes[0] and "facompress check" in notes[0]
    assert not (finished_run / LOCK_FILE).exists()
    manifest = Run.open(finished_run).manifest
    assert manifest["stages"]["export"]["status"] == "done"
    [takeover] = manifest["lock_takeovers"]
    assert takeover["by"] == "export" and takeover["stale"]["pid"] == dead and takeover["stale"]["stage"] == "prune"


def test_library_takeover_warns_and_records_in_the_lock(tmp_path):
    dead = exited_pid()
    plant_lock(tmp_path, dead, stage="bench")
    with pytest.warns(StaleLockWarning, match=rf"`bench` \(pid {dead},"):
        with writer_lock(tmp_path, "report") as lock:
            held = json.loads((tmp_path / LOCK_FILE).read_text())
    assert held["stage"] == "report" and held["took_over"]["pid"] == dead and lock.took_over["stage"] == "bench"
    assert not (tmp_path / LOCK_FILE).exists()


# ---- the lock's life -----------------------------------------------------------------------------
def test_lock_names_the_holder_and_is_released_after_an_exception(tmp_path):
    with pytest.raises(ValueError, match="inside"):
        with writer_lock(tmp_path, "export"):
            held = json.loads((tmp_path / LOCK_FILE).read_text())
            raise ValueError("inside the block")
    assert (held["stage"], held["pid"], held["hostname"]) == ("export", os.getpid(), socket.gethostname())
    assert held["started"] and held["took_over"] is None
    assert not (tmp_path / LOCK_FILE).exists()
    with writer_lock(tmp_path, "export"):  # free again
        pass


def test_stage_failing_inside_the_lock_releases_it(finished_run):
    from fa_compress.errors import NotFoundError
    from fa_compress.export.pipeline import ExportOptions, export_run

    with pytest.raises(NotFoundError, match="no model 'missing'"):
        export_run(finished_run, ExportOptions(model_name="missing"))
    assert not (finished_run / LOCK_FILE).exists()


def test_nested_stage_runs_under_the_outer_lock_but_another_thread_is_refused(tmp_path):
    refused: list[BaseException] = []

    def other_writer() -> None:
        try:
            with writer_lock(tmp_path, "export"):
                pass
        except RunLockedError as exc:
            refused.append(exc)

    with writer_lock(tmp_path, "sweep") as outer:
        with writer_lock(tmp_path, "prune") as inner:
            assert inner is outer
        assert json.loads((tmp_path / LOCK_FILE).read_text())["stage"] == "sweep"  # the inner exit kept it
        thread = threading.Thread(target=other_writer)
        thread.start()
        thread.join()
    assert len(refused) == 1 and "`sweep`" in str(refused[0])
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_lock_replaced_by_hand_is_not_removed_by_its_former_holder(tmp_path, sleeper):
    with writer_lock(tmp_path, "export"):
        (tmp_path / LOCK_FILE).unlink()  # someone deleted it ...
        plant_lock(tmp_path, sleeper)  # ... and another writer took the run
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == sleeper


def test_a_lock_from_another_host_is_never_taken_over(tmp_path):
    """This host cannot see that host's processes: refused, even with a pid that runs nowhere here."""
    plant_lock(tmp_path, exited_pid())
    record = json.loads((tmp_path / LOCK_FILE).read_text())
    (tmp_path / LOCK_FILE).write_text(json.dumps({**record, "hostname": "gpu-box-7"}))
    with pytest.raises(RunLockedError, match="on gpu-box-7.*cannot tell.*gpu-box-7 rebooted"):
        with writer_lock(tmp_path, "export"):
            pass
    assert (tmp_path / LOCK_FILE).exists()
