"""The step floor per fine-tuning phase: every phase of a tiny dataset takes it, a dataset whose epoch is at least
the floor trains exactly as before, the run records and prints it, a mid-phase resume continues it, bad values fail."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import fa_compress as fc
from fa_compress.errors import ConfigError
from fa_compress.train import TrainConfig, init_context
from fa_compress.train import phase_steps as phase_steps_module
from fa_compress.train.loop import finetune, phase_budget
from fa_compress.train.progress import PhaseBar
from fa_compress.train.sampler import StepSampler
from tests.conftest import run_cli
from tests.cli.cli_output import cli_output

DEFAULT_TASK_IMAGES = 6000  # `make demo`: --limit-train 6000 on Fashion-MNIST, batch 32


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))


def _data(n: int, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, 2, (n,), generator=g))


def test_the_floor_reaches_every_phase_on_a_tiny_dataset(optimizer_steps):
    taken, image_steps = optimizer_steps, []
    # 40 images at batch 32: one epoch is 2 steps, the head's 2 passes over cached features 4
    result = fc.finetune(_net(), _data(40), _data(20, 1), schedule="head,gates,gates", min_phase_steps=7,
                         after_backward=lambda _m: image_steps.append(1))
    assert [(p.steps.steps, p.steps.rule, p.steps.own_steps) for p in result.phases] == \
        [(7, "floor", 4), (7, "floor", 2), (7, "floor", 2)]
    assert (len(taken), len(image_steps)) == (21, 14)  # 7 head steps, 7 in each gates phase
    assert result.phases[1].steps.describe() == "7 steps (floor; one epoch is 2)"
    assert result.phases[0].steps.describe() == "7 steps (floor; 2 passes over cached features are 4)"


def test_without_a_floor_each_phase_is_one_epoch(optimizer_steps):
    taken = optimizer_steps
    result = fc.finetune(_net(), _data(40), schedule="head,gates,gates", min_phase_steps=0)
    assert [(p.steps.steps, p.steps.rule) for p in result.phases] == [(4, "own length"), (2, "own length"),
                                                                      (2, "own length")]
    assert len(taken) == 8


def test_a_floor_at_or_below_one_epoch_changes_nothing():
    """The floor only lengthens shorter phases: at or below the epoch, training is bit for bit the one-epoch one."""
    runs = []
    for floor in (0, 6):  # 44 images at batch 8: one epoch is 6 steps, the last of 4 images
        model, batches = _net(), []
        model[0].register_forward_pre_hook(lambda _m, args: batches.append(args[0].shape[0]))
        result = fc.finetune(model, _data(44), schedule="head,gates", batch_size=8, min_phase_steps=floor)
        # after the probe that finds the classifier: the head's features, then one epoch of the gates phase
        assert batches[1:] == [8, 8, 8, 8, 8, 4] * 2
        runs.append((model.state_dict(), [p.train_loss for p in result.phases], result.phases))
    (a, loss_a, phases_a), (b, loss_b, phases_b) = runs
    assert loss_a == loss_b
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert [p.steps.steps for p in phases_b] == [12, 6] and {p.steps.rule for p in phases_b} == {"own length"}


@pytest.mark.real_floor
def test_the_default_task_keeps_one_epoch_per_phase():
    """`make demo` trains on 6,000 images at batch 32: 188 steps an epoch, above the default floor."""
    cfg, ctx = TrainConfig(), init_context("cpu")
    assert cfg.min_phase_steps is None and phase_steps_module.FLOOR_STEPS == 100
    gates = phase_budget(False, DEFAULT_TASK_IMAGES, cfg, ctx)
    head = phase_budget(True, DEFAULT_TASK_IMAGES, cfg, ctx)
    assert (gates.steps, gates.rule, gates.floor_steps) == (188, "own length", 100)
    assert (head.steps, head.rule) == (376, "own length")  # 2 passes over the cached features
    small = phase_budget(False, 270, cfg, ctx)  # 270 images: 9 steps an epoch
    assert (small.steps, small.rule, small.own_steps) == (100, "floor", 9)


@pytest.mark.parametrize("bad", [-1, 2.5, True, "100"])
def test_bad_floors_are_refused(bad):
    with pytest.raises(ConfigError, match=r"min_phase_steps must be a whole number >= 0 \(got "):
        TrainConfig(min_phase_steps=bad)


def test_the_cli_refuses_a_negative_floor_by_its_flag(capsys):
    code, _, err = run_cli(["finetune", "--data", "fake", "--min-phase-steps", "-3", "--quiet"], capsys)
    assert code == 2
    assert "--min-phase-steps must be a whole number >= 0 (got -3)" in err


def test_runs_recorded_before_the_floor_resume_with_one_epoch_per_phase():
    recorded = TrainConfig().to_dict()
    del recorded["min_phase_steps"]
    assert TrainConfig.from_dict(recorded).min_phase_steps == 0
    assert TrainConfig.from_dict(TrainConfig().to_dict()).min_phase_steps is None  # a new run: the default floor


def test_the_run_records_and_prints_each_phases_steps(tmp_path, capsys):
    run = tmp_path / "run"
    out = cli_output(["finetune", "--model", "resnet18", "--weights", "none", "--data", "fake", "--img-size", "32",
                      "--limit-train", "40", "--limit-test", "8", "--schedule", "head,gates,gates",
                      "--min-phase-steps", "6", "--run", str(run), "--quiet"], capsys)
    stage = json.loads((run / "run.json").read_text())["stages"]["finetune"]
    assert stage["options"]["train"]["min_phase_steps"] == 6
    steps = [p["steps"] for p in stage["metrics"]["phases"]]
    assert [(s["steps"], s["rule"], s["floor_steps"]) for s in steps] == [(6, "floor", 6)] * 3
    epoch = steps[1]["own_steps"]
    assert epoch < 6
    assert (f"steps per phase: 1 head: 6 steps (floor; 2 passes over cached features are {steps[0]['own_steps']}); "
            f"2-3 gates: 6 steps (floor; one epoch is {epoch})") in out


def test_step_sampler_resumes_at_its_batch():
    full = list(StepSampler(10, batch_size=4, steps=7, seed=3, epoch=1))
    assert len(full) == 28
    for start in (1, 3, 6):
        resumed = StepSampler(10, batch_size=4, steps=7, seed=3, epoch=1, start_batch=start)
        assert list(resumed) == full[start * 4:] and len(resumed) == len(full) - start * 4


def test_a_floored_phase_resumed_mid_way_matches_the_uninterrupted_one():
    train, val = _data(40), DataLoader(_data(20, 1), batch_size=20)
    cfg = TrainConfig(schedule=("head", "gates"), min_phase_steps=9, checkpoint_every=4)
    ctx = init_context("cpu")
    states: list[dict] = []

    def keep(state: dict) -> None:
        states.append(copy.deepcopy({**state, "model": model.state_dict()}))

    model = fc.insert_gates(_net())
    whole = finetune(model, model[-1], train, val, cfg, ctx, PhaseBar(None), on_checkpoint=keep)
    mid = next(s for s in states if s["phase_index"] == 1 and s["step"] == 4)  # 4 of the gates phase's 9 steps
    resumed_model = fc.insert_gates(_net())
    resumed_model.load_state_dict(mid["model"])
    resumed = finetune(resumed_model, resumed_model[-1], train, val, cfg, ctx, PhaseBar(None), resume=mid)
    assert [p.steps.steps for p in resumed.phases] == [9, 9]
    assert resumed.phases[1].train_loss == pytest.approx(whole.phases[1].train_loss, rel=1e-6)
    torch.testing.assert_close(resumed_model.state_dict(), model.state_dict())
