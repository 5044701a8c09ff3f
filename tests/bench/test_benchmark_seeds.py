"""The method-comparing benchmark scripts refuse a bad `--seeds` with one line on stderr and exit 2."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("script, seeds, match", [
    ("prune_criteria.py", "", "--seeds is empty"),
    ("prune_criteria.py", "0,x", "--seeds must be whole numbers"),
    ("prune_recovery.py", "1,1", "--seeds lists a seed twice"),
    ("finetune_compare.py", ",", "--seeds is empty"),
])
def test_bad_seeds_are_one_line_and_exit_2(script, seeds, match):
    argv = [sys.executable, "-m", f"benchmarks.{script[:-3]}", f"--seeds={seeds}"]
    argv += ["--run", str(ROOT / "no-such-run")] if script != "finetune_compare.py" else []
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and match in lines[0] and "Traceback" not in proc.stderr
    assert proc.stdout == ""
