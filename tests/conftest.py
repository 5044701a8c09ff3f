"""Shared fixtures: small real architectures with randomised BatchNorm so tests see non-trivial numbers."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

DEVICE = os.environ.get("FACOMPRESS_TEST_DEVICE", "cpu")

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs one pytest worker per core: each computes on one thread, and so do the processes
    # its tests start, or the workers' thread pools contend for the same cores.
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm non-trivial statistics and affine terms (fresh ones are identity-like)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
    return model


def random_gates(model: nn.Module, seed: int = 0) -> nn.Module:
    """Set every gate of a gated model to a distinct value in [0, 2) (fresh gates are all 1)."""
    from fa_compress.gates import iter_gates

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, m in iter_gates(model):
            m.gate.copy_(torch.rand(m.num_features, generator=g) * 2)
    return model


@pytest.fixture
def resnet18_10() -> nn.Module:
    from fa_compress.models import build_model

    torch.manual_seed(0)
    return randomize_batchnorm(build_model("resnet18", num_classes=10, weights="none")).eval()


@pytest.fixture(autouse=True)
def _isolated_runs(tmp_path, monkeypatch):
    """Every test writes runs under its own tmp folder, never into the repository."""
    monkeypatch.setenv("FACOMPRESS_RUNS", str(tmp_path / "runs"))


@pytest.fixture
def optimizer_steps(monkeypatch):
    """One entry per AdamW step taken while the test runs (fine-tuning, fades and recoveries all use AdamW)."""
    taken: list[int] = []
    real = torch.optim.AdamW.step

    def counted(self, *args, **kwargs):
        taken.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", counted)
    return taken


def run_cli(argv: list[str], capsys) -> tuple[object, str, str]:
    """Run `facompress ARGV` in-process: (exit code, stdout, stderr)."""
    from fa_compress.cli.app import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def tiny_finetuned_run(path, *, model: str = "resnet18", data: str = "fake", limit_train: int = 64,
                       limit_test: int = 48, schedule: tuple[str, ...] = ("head", "gates"), batch_size: int = 32,
                       seed: int = 0):
    """A run directory fine-tuned in seconds: random weights, 32-px images, no progress bars."""
    from fa_compress.train import TrainConfig
    from fa_compress.train.stage import FinetuneOptions, finetune_run

    run, _ = finetune_run(FinetuneOptions(
        model=model, weights="none", data=data, img_size=32, limit_train=limit_train, limit_test=limit_test,
        run=path, show_progress=False, train=TrainConfig(schedule=schedule, batch_size=batch_size, seed=seed)))
    return run


TEST_FLOOR_STEPS = 8


@pytest.fixture(autouse=True)
def _short_step_floor(request, monkeypatch):
    """Prune's default fade and recovery run at least `FLOOR_STEPS` (400) optimizer steps, and each fine-tuning
    phase at least `phase_steps.FLOOR_STEPS` (100): budgets for real data. In-process tests train tiny models
    on a few dozen images, so prune's floor drops to `TEST_FLOOR_STEPS` and fine-tuning's to 0 (one epoch per
    phase, as those tests were written for) unless the test is marked `real_floor`. Subprocess tests keep the
    real floors."""
    if request.node.get_closest_marker("real_floor") is None:
        monkeypatch.setattr("fa_compress.pruning.steps.FLOOR_STEPS", TEST_FLOOR_STEPS)
        monkeypatch.setattr("fa_compress.train.phase_steps.FLOOR_STEPS", 0)
