"""benchmarks/step_budget.py's budget names: one epoch, a step count, or a multiple of the library's default."""

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.step_budget import _check_budget, budget_options
from fa_compress.pruning.steps import FLOOR_STEPS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.real_floor
def test_multiples_scale_the_default_budget_floor_and_epoch_alike():
    assert FLOOR_STEPS == 400
    # 1,080 images: one epoch at batch 8 is 135 steps, so the default is the floor (400)
    assert budget_options("x1", 1080) == {"fade_steps": 400}
    assert budget_options("x2", 1080) == {"fade_steps": 800}
    # 6,000 images: one epoch is 750 steps, above the floor
    assert budget_options("x1.5", 6000) == {"fade_steps": 1125}
    assert budget_options("epoch", 6000) == {"fade_epochs": 1}
    assert budget_options("250", 6000) == {"fade_steps": 250}


@pytest.mark.parametrize("bad", ["x0", "x-1", "xx", "0", "-5", "ten", ""])
def test_bad_budget_names_are_refused(bad):
    import argparse

    with pytest.raises(argparse.ArgumentTypeError, match="a budget is"):
        _check_budget(bad)


def test_a_bad_budget_exits_2_before_any_work():
    proc = subprocess.run([sys.executable, "-m", "benchmarks.step_budget", "--budgets", "x1,x0"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2
    assert "a budget is" in proc.stderr and "x0" in proc.stderr
