"""benchmarks/gpu_check.py in its CPU dry-run mode (the GPU run itself happens on a CUDA machine)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_dry_run_on_cpu(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--dry-run", "--arch", "resnet18",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (path,) = tmp_path.glob("gpu_check-cpu_*-dry-run.json")
    result = json.loads(path.read_text())
    assert result["models"]["pruned"]["params"] < 0.6 * result["models"]["dense"]["params"]
    assert {(r["model"], r["batch_size"]) for r in result["latencies"]} == {
        ("dense", 1), ("pruned", 1), ("dense", 2), ("pruned", 2)}
    assert all(r["median_ms"] > 0 for r in result["latencies"])
    assert set(result["throughput_ratio_pruned_over_dense"]) == {"torch-cpu@1", "torch-cpu@2"}
    assert result["train_step"]["dense"]["loss_finite"]
    assert "throughput ratio pruned/dense" in proc.stdout


def test_gpu_check_refuses_cuda_without_a_gpu(tmp_path):
    import torch

    if torch.cuda.is_available():
        import pytest
        pytest.skip("this machine has a GPU: the refusal path cannot be exercised")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2
    assert "no CUDA GPU" in proc.stderr
    assert not list(tmp_path.iterdir())
