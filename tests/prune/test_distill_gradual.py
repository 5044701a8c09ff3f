"""Distillation from the dense model during the fade and the recovery, and deep cuts in steps: the teacher
is a frozen copy in eval mode, weight 0 changes nothing, a schedule of cuts meets its MAC target as the
one-shot cut does, and out-of-range settings are refused naming the parameter."""

import copy
import json

import pytest
import torch
import torch.nn.functional as F

from fa_compress.cli.app import main
from fa_compress.errors import ConfigError
from fa_compress.gates import fold_gates, insert_gates
from fa_compress.models import build_model, get_head
from fa_compress.models.complexity import count_macs
from fa_compress.pruning.budget import Budget
from fa_compress.pruning.chain import ChainOptions, prune_chain
from fa_compress.pruning.fade import fade_out, plan_cut
from fa_compress.pruning.gradual import split_evenly, step_fractions
from fa_compress.pruning.pruner import PruneSettings, scorers
from fa_compress.train.config import TrainConfig
from fa_compress.train.distill import Distillation, distill_loss
from fa_compress.train.distributed import init_context
from fa_compress.train.progress import phase_bar
from tests.conftest import random_gates, randomize_batchnorm, run_cli, tiny_finetuned_run

IMG = 32
EXAMPLE = torch.zeros(1, 3, IMG, IMG)
SETTINGS = PruneSettings(importance="gate", score_images=16, round_to=1)
CFG = TrainConfig(batch_size=16, seed=0, memory_format="contiguous")


def _data(n: int = 32, classes: int = 4):
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(3, IMG, IMG, generator=g), i % classes) for i in range(n)]


def _gated(arch: str = "resnet18"):
    torch.manual_seed(0)
    model = randomize_batchnorm(build_model(arch, num_classes=4, weights="none"))
    return random_gates(insert_gates(model)).eval()


def _chain(model, options: ChainOptions, budget: Budget, data=None):
    return prune_chain(model, get_head(model, "resnet18"), SETTINGS, EXAMPLE, budget, data or _data(), CFG,
                       init_context("cpu"), options=options.resolved("gate"), seed=0)


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    ours, theirs = a.state_dict(), b.state_dict()
    assert sorted(ours) == sorted(theirs)
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key


def test_distill_loss_is_the_weighted_cross_entropy_and_scaled_kl():
    g = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)  # (B, classes)
    labels = torch.arange(8) % 5
    t = 3.0
    p_teacher = F.softmax(teacher / t, dim=1)
    kl = (p_teacher * (p_teacher.log() - F.log_softmax(student / t, dim=1))).sum(1).mean()
    expected = 0.75 * F.cross_entropy(student, labels) + 0.25 * t ** 2 * kl
    torch.testing.assert_close(distill_loss(student, teacher, labels, 0.25, t), expected)
    assert float(distill_loss(student, student, labels, 1.0, t)) == pytest.approx(0.0, abs=1e-6)  # KL(p || p)
    assert torch.equal(distill_loss(student, teacher, labels, 0.0, t), F.cross_entropy(student, labels))


def test_the_teacher_is_a_frozen_dense_copy_in_eval_mode(monkeypatch):
    """Through the whole chain (fade and recovery): every teacher forward runs in eval mode without
    gradients, its parameters never require or receive a gradient, and its weights stay the dense ones."""
    model = _gated()
    dense = {k: v.clone() for k, v in model.state_dict().items()}
    teachers, forwards, losses = [], [], []
    original = Distillation.__call__

    def spy(self, logits, images, labels):
        if not teachers:
            teachers.append(self)
            self.teacher.register_forward_hook(
                lambda m, _inputs, _out: forwards.append((m.training, torch.is_grad_enabled())))
        assert not self.teacher.training
        assert not any(p.requires_grad for p in self.teacher.parameters())
        loss = original(self, logits, images, labels)
        losses.append(loss.requires_grad)  # the student's loss still carries its gradient
        return loss

    monkeypatch.setattr(Distillation, "__call__", spy)
    result = _chain(model, ChainOptions(fade_epochs=1, recover_epochs=1, distill_weight=0.5), Budget(keep=0.6))
    steps = 2 * len(_data()) // ChainOptions().recover_batch_size  # an epoch of fade, one of recovery: 4 + 4
    assert len(forwards) == len(losses) == steps
    assert all(training is False and grad is False for training, grad in forwards)
    assert all(losses)
    teacher = teachers[0].teacher
    assert all(p.grad is None for p in teacher.parameters())
    assert sorted(teacher.state_dict()) == sorted(dense)
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, dense[key]), key
    assert result.teacher_s > 0


def test_distill_weight_zero_is_bit_for_bit_todays_chain():
    options = ChainOptions(fade_epochs=1, recover_epochs=1)
    today = _chain(_gated(), options, Budget(keep=0.6))
    zero = _chain(_gated(), ChainOptions(fade_epochs=1, recover_epochs=1, distill_weight=0.0,
                                         distill_temperature=2.0), Budget(keep=0.6))
    _assert_same_weights(today.model, zero.model)
    assert zero.teacher_s == 0.0


def test_a_weight_zero_teacher_through_the_loss_hook_changes_nothing():
    """The hook itself: a fade whose loss is a weight-0 distillation trains exactly as the cross-entropy."""
    dense = _gated()
    masks, _ = plan_cut(dense, get_head(dense, "resnet18"), SETTINGS, EXAMPLE, Budget(keep=0.6),
                        *scorers(SETTINGS, _data()))
    faded = []
    for distil in (False, True):
        model = copy.deepcopy(dense)
        torch.manual_seed(0)
        with phase_bar(False) as bar:
            fade_out(model, get_head(model, "resnet18"), masks, _data(), CFG, init_context("cpu"), bar,
                     loss_fn=Distillation(dense, weight=0.0) if distil else None)
        faded.append(model)
    _assert_same_weights(*faded)


def test_cuts_in_steps_reach_the_mac_target():
    model, steps = _gated(), 3
    dense_macs = count_macs(fold_gates(_gated()), IMG)
    budget = Budget(target_macs=0.35)
    result = _chain(model, ChainOptions(fade_epochs=steps, prune_steps=steps), budget)
    found = result.budget
    assert abs(found.macs_fraction - 0.35) <= budget.tolerance  # the one-shot cut's tolerance (test_budget.py)
    assert abs(count_macs(result.model, IMG) / dense_macs - 0.35) <= budget.tolerance
    fractions = [s.macs_fraction for s in found.steps]
    assert len(fractions) == len(result.fade["cuts"]) == steps
    assert fractions == sorted(fractions, reverse=True) and fractions[-1] == found.macs_fraction
    for reached, planned in zip(fractions, step_fractions(0.35, steps)):
        assert abs(reached - planned) <= budget.tolerance
    assert result.fade["channels"] == sum(c["channels"] for c in result.fade["cuts"]) > 0


def test_the_step_schedule_falls_geometrically_and_splits_the_training():
    assert step_fractions(0.35, 3) == pytest.approx([0.35 ** (1 / 3), 0.35 ** (2 / 3), 0.35])
    assert step_fractions(0.5, 1) == [0.5]
    assert split_evenly(200, 3) == [67, 67, 66] and sum(split_evenly(7, 7)) == 7


@pytest.mark.parametrize("field, value", [("distill_weight", 1.5), ("distill_weight", -0.1),
                                          ("distill_temperature", 0.0), ("distill_temperature", -1.0),
                                          ("prune_steps", 0), ("prune_steps", 1.5)])
def test_out_of_range_settings_name_the_parameter(field, value):
    with pytest.raises(ConfigError) as caught:
        ChainOptions(**{field: value})
    assert field in str(caught.value) and "--" not in str(caught.value)


def test_cuts_in_steps_need_a_target_and_the_fade():
    with pytest.raises(ConfigError, match="prune_steps 2 needs a target_macs or target_params"):
        _chain(_gated(), ChainOptions(fade_epochs=2, prune_steps=2), Budget(keep=0.5))
    model = _gated()
    with pytest.raises(ConfigError, match="prune_steps 2 fades each cut in"):
        prune_chain(model, get_head(model, "resnet18"), PruneSettings(importance="l1"), EXAMPLE,
                    Budget(target_macs=0.5), _data(), CFG, init_context("cpu"),
                    options=ChainOptions(prune_steps=2).resolved("l1"), seed=0)


def test_the_command_names_the_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["prune", "--distill-weight", "2", "--quiet"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --distill-weight must be in [0, 1]") and "\n" not in err


def test_the_command_cuts_in_steps_with_distillation_and_records_both(tmp_path, capsys):
    run = tiny_finetuned_run(tmp_path / "run", limit_train=32, limit_test=16).path
    code, out, err = run_cli(["prune", "--run", str(run), "--target-macs", "0.5", "--prune-steps", "2",
                              "--fade-steps", "4", "--distill-weight", "0.5", "--score-images", "16", "--quiet"],
                             capsys)
    assert code == 0, err
    assert "cut in 2 steps: MACs" in out and "distilled from the dense model" in out
    stage = json.loads((run / "run.json").read_text())["stages"]["prune"]
    assert (stage["prune_steps"], stage["distill_weight"], stage["distill_temperature"]) == (2, 0.5, 4.0)
    cuts = stage["metrics"]["fade"]["cuts"]
    assert [c["steps"] for c in cuts] == [2, 2] and cuts[0]["macs_fraction"] > cuts[1]["macs_fraction"]
    assert stage["metrics"]["teacher_s"] > 0
