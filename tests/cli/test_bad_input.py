"""The bad-input battery: every command, driven through the CLI with input it must refuse.

For each case: exit code 2, exactly one non-empty line on stderr, starting with `error:` and naming
the problem; no traceback anywhere; and no file created, changed or removed under the test's folder
(the run directory included). Most cases call `fa_compress.cli.app.main(argv)` in this process (fast);
a few run `python -m fa_compress.cli.app` in a subprocess, so the real stderr and exit status are seen.

One small mobilenet_v2 run (fine-tuned with gates, pruned, exported) and one fine-tuned without gates
are made once per session; each case works on its own copy.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fa_compress.cli.app import main
from tests.cli.bad_input_cases import ALL, READ_ONLY, SUBPROCESS
from tests.cli.bad_input_scene import Case, Scene


def snapshot(root: Path) -> dict[str, tuple[int, int] | str]:
    """Everything under `root`, hidden entries too: file -> (size, mtime in ns); folder -> "dir"."""
    return {str(p.relative_to(root)): "dir" if p.is_dir() else (p.lstat().st_size, p.lstat().st_mtime_ns)
            for p in sorted(root.rglob("*"))}


def assert_refused(code: object, out: str, err: str, word: str) -> None:
    """Exit code 2, one `error:` line on stderr that names the problem, no traceback."""
    assert "Traceback" not in out + err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{err}"
    assert len(err.strip().splitlines()) == 1, err
    assert lines[0].startswith("error: ") and len(lines[0]) > len("error: ") + 10, lines[0]
    assert word.lower() in lines[0].lower(), f"{word!r} not named in: {lines[0]}"
    assert code == 2, f"exit code {code}, stderr: {err}"


@pytest.mark.parametrize("case", [c for _, c in ALL], ids=[i for i, _ in ALL])
def test_bad_input_is_refused_cleanly(case: Case, scene: Scene, capsys):
    if case.prepare is not None:
        case.prepare(scene)
    argv = case.argv(scene)
    before = snapshot(scene.tmp)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    assert_refused(exit_info.value.code, out, err, case.word)
    assert snapshot(scene.tmp) == before, "files were created, changed or removed"


@pytest.mark.parametrize("case", SUBPROCESS, ids=[c.id for c in SUBPROCESS])
def test_real_process_exit_code_and_stderr(case: Case, scene: Scene):
    if case.prepare is not None:
        case.prepare(scene)
    argv = case.argv(scene)
    before = snapshot(scene.tmp)
    env = {**os.environ, "FACOMPRESS_RUNS": str(scene.tmp / "runs"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "fa_compress.cli.app", *argv], env=env, cwd=scene.tmp,
                          capture_output=True, text=True, timeout=300)
    assert_refused(proc.returncode, proc.stdout, proc.stderr, case.word)
    assert snapshot(scene.tmp) == before, "files were created, changed or removed"


@pytest.mark.parametrize("case", READ_ONLY, ids=[c.id for c in READ_ONLY])
def test_read_only_output_folder_is_refused(case: Case, scene: Scene, capsys):
    """Writing into a folder this user cannot write to (root and CAP_DAC_OVERRIDE can: skipped there;
    the `*-under-a-file` cases above fail for root too)."""
    folder = scene.folder("readonly")
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as root (or with CAP_DAC_OVERRIDE): a read-only folder is still writable")
        argv = case.argv(scene)
        before = snapshot(scene.tmp)
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        out, err = capsys.readouterr()
        assert_refused(exit_info.value.code, out, err, case.word)
        assert snapshot(scene.tmp) == before
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize("failing", ["mkstemp", "replace"])
def test_unwritable_target_is_an_output_error_and_leaves_nothing(failing, tmp_path, monkeypatch):
    """What a read-only folder or a full disk does to `atomic_write_bytes`, simulated (root can write
    anywhere): an `OutputError` (exit 2 in the CLI) and no temporary file left behind."""
    import tempfile

    from fa_compress.run import atomic_write_bytes
    from fa_compress.errors import OutputError

    def deny(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile if failing == "mkstemp" else os, failing, deny)
    with pytest.raises(OutputError, match="cannot write .*Permission denied"):
        atomic_write_bytes(tmp_path / "model.onnx", b"data")
    assert list(tmp_path.iterdir()) == []
