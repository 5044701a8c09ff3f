"""Kill-and-resume, 2-process gloo vs 1 process, and seed determinism, through the real CLI."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fa_compress.run import Run, load_train_state

# at most 256 training images at batch 32: 8 steps an epoch, held to 12 a phase, so the floor's path (steps past
# an epoch's end, resumed mid-phase, split over ranks) runs here at little cost
ARGS = ["--model", "mobilenet_v2", "--weights", "none", "--data", "fake", "--img-size", "32",
        "--limit-train", "256", "--limit-test", "128", "--batch-size", "32", "--min-phase-steps", "12", "--quiet"]


def _cli(*args: str, env_runs: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "FACOMPRESS_RUNS": str(env_runs), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "fa_compress.cli.app", *args], env=env,
                          capture_output=True, text=True, timeout=600)


def _phases(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / "run.json").read_text())["stages"]["finetune"]["metrics"]["phases"]


@pytest.mark.slow
def test_sigkill_mid_phase_then_resume_matches_uninterrupted_run(tmp_path):
    schedule = ["--schedule", "head,gates,gates", "--checkpoint-every", "3", "--seed", "3"]
    full = _cli("finetune", *ARGS, *schedule, "--run", str(tmp_path / "full"), env_runs=tmp_path)
    assert full.returncode == 0, full.stderr[-2000:]

    run_dir = tmp_path / "killed"
    env = {**os.environ, "FACOMPRESS_RUNS": str(tmp_path), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "fa_compress.cli.app", "finetune", *ARGS, *schedule,
                             "--run", str(run_dir)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state_file, writes, last = run_dir / "train_state.pt", 0, None
    deadline = time.time() + 300
    while writes < 2 and time.time() < deadline and proc.poll() is None:  # 1: end of head; 2: mid-gates
        stamp = state_file.stat().st_mtime_ns if state_file.exists() else None
        if stamp is not None and stamp != last:
            writes, last = writes + 1, stamp
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be killed mid-phase"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    state = load_train_state(state_file)  # not torn: loads, and says where it stopped
    assert state["phase_index"] == 1 and state["step"] > 0
    assert Run.open(run_dir).stage("finetune")["status"] == "running"

    resumed = _cli("finetune", "--resume", "--run", str(run_dir), "--quiet", env_runs=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    got, want = _phases(run_dir), _phases(tmp_path / "full")
    assert [p["phase"] for p in got] == ["head", "gates", "gates"]
    for g, w in zip(got, want):
        assert g["test_acc"] == pytest.approx(w["test_acc"], abs=1e-9)
        assert g["train_loss"] == pytest.approx(w["train_loss"], rel=1e-4)


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(tmp_path):
    common = [*ARGS, "--schedule", "head,gates", "--seed", "5"]
    one = _cli("finetune", *common, "--run", str(tmp_path / "one"), env_runs=tmp_path)
    two = _cli("finetune", *common, "--run", str(tmp_path / "two"), "--nproc", "2", env_runs=tmp_path)
    assert one.returncode == 0, one.stderr[-2000:]
    assert two.returncode == 0, two.stderr[-2000:]
    stage = json.loads((tmp_path / "two" / "run.json").read_text())["stages"]["finetune"]
    assert stage["world_size"] == 2
    # the ranks split each global batch exactly as one process would see it; what differs is
    # float summation order (1 vs 2 threads, all-reduce): stated tolerance 2 points of accuracy
    for a, b in zip(_phases(tmp_path / "one"), _phases(tmp_path / "two")):
        assert abs(a["test_acc"] - b["test_acc"]) <= 0.02
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=0.02)


def test_same_seed_gives_same_metrics(tmp_path):
    from fa_compress.train import TrainConfig
    from fa_compress.train.stage import FinetuneOptions, finetune_run

    def once(name):
        opts = FinetuneOptions(model="resnet18", weights="none", data="fake", img_size=32, limit_train=128,
                               limit_test=64, run=tmp_path / name, show_progress=False,
                               train=TrainConfig(schedule=("head", "gates"), batch_size=32, seed=11))
        return finetune_run(opts)[1]

    a, b = once("a"), once("b")
    assert [p.test_acc for p in a.phases] == [p.test_acc for p in b.phases]
    assert [p.train_loss for p in a.phases] == [p.train_loss for p in b.phases]
