"""Fading the planned cut out: the plan names the channels the budget removes, the fade zeroes exactly
those gates, and the cut that follows removes them without changing what the model computes."""

from dataclasses import replace

import pytest
import torch

from fa_compress.errors import ConfigError
from fa_compress.gates import insert_gates, iter_gates
from fa_compress.models import build_model, get_head
from fa_compress.pruning.budget import Budget
from fa_compress.pruning.fade import cut_channels, fade_out, plan_cut
from fa_compress.pruning.pruner import PruneSettings, prune_model, scorers
from fa_compress.train.config import TrainConfig
from fa_compress.train.distributed import init_context
from fa_compress.train.progress import phase_bar
from tests.conftest import random_gates, randomize_batchnorm

IMG = 32
EXAMPLE = torch.zeros(1, 3, IMG, IMG)


def _data(n: int = 64, classes: int = 4):
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(3, IMG, IMG, generator=g), i % classes) for i in range(n)]


def _gated(arch: str):
    torch.manual_seed(0)
    model = randomize_batchnorm(build_model(arch, num_classes=4, weights="none"))
    return random_gates(insert_gates(model)).eval()


@pytest.mark.parametrize("arch", ["resnet18", "efficientnet_lite0"])
def test_fade_zeroes_the_planned_channels_and_the_cut_then_changes_nothing(arch):
    model, data = _gated(arch), _data()
    head = get_head(model, arch)
    settings = PruneSettings(importance="gate", score_images=32, round_to=1)
    gradient_fn, score_fn = scorers(settings, data)
    masks, found = plan_cut(model, head, settings, EXAMPLE, Budget(target_macs=0.5), gradient_fn, score_fn)
    assert set(masks) == {name for name, _ in iter_gates(model)}
    assert all(m.dtype == torch.bool and m.numel() == g.num_features for (_, g), m in zip(iter_gates(model),
                                                                                       masks.values()))
    assert 0 < cut_channels(masks) < sum(g.num_features for _, g in iter_gates(model))
    assert not any(getattr(g, "channel_origin", None) is not None for _, g in iter_gates(model))  # model untouched

    gates_before = {name: g.gate.detach().clone() for name, g in iter_gates(model)}
    cfg = TrainConfig(batch_size=16, seed=0, memory_format="contiguous")
    with phase_bar(False) as bar:
        fade_out(model, head, masks, data, cfg, init_context("cpu"), bar)
    changed = 0
    for name, g in iter_gates(model):
        assert g.fade is None
        assert torch.all(g.gate[masks[name]] == 0)  # exactly zero
        kept = ~masks[name]
        changed += int((g.gate[kept].detach() != gates_before[name][kept]).sum())
    assert changed > 0  # the kept gates trained while the cut faded

    x = torch.randn(4, 3, IMG, IMG)
    model.eval()
    with torch.no_grad():
        faded_out = model(x)  # (4, classes)
    pruned = prune_model(model, head, replace(settings, keep=found.keep), EXAMPLE, gradient_fn, score_fn)
    with torch.no_grad():
        assert torch.allclose(pruned(x), faded_out, atol=1e-4, rtol=1e-4)  # the cut removed only zeroed channels


def test_plan_cut_needs_the_gate_ranking():
    model = _gated("resnet18")
    with pytest.raises(ConfigError, match="importance gate"):
        plan_cut(model, model.fc, PruneSettings(importance="l1"), EXAMPLE, Budget(target_macs=0.5))


def test_fade_steps_below_one_are_refused():
    model = _gated("resnet18")
    with phase_bar(False) as bar, pytest.raises(ConfigError, match="fade_steps"):
        fade_out(model, model.fc, {}, _data(), TrainConfig(), init_context("cpu"), bar, steps=0)


@pytest.mark.parametrize("batch_size, expected", [(None, 8), (4, 4)])
def test_fade_steps_in_the_recovery_batch_by_default(batch_size, expected):
    model, data = _gated("resnet18"), _data(n=32)
    head = get_head(model, "resnet18")
    masks = {name: torch.arange(g.num_features) < 8 for name, g in iter_gates(model)}
    seen = []
    model.register_forward_hook(lambda m, args, out: seen.append(args[0].shape[0]))
    kwargs = {} if batch_size is None else {"batch_size": batch_size}
    with phase_bar(False) as bar:  # the fine-tuning's batch (32 here) is not the fade's
        fade_out(model, head, masks, data, TrainConfig(batch_size=32, seed=0, memory_format="contiguous"),
                 init_context("cpu"), bar, **kwargs)
    assert seen == [expected] * (32 // expected)
    assert all(torch.all(g.gate[masks[name]] == 0) for name, g in iter_gates(model))


@pytest.mark.parametrize("arch, round_to", [("resnet18", 1), ("efficientnet_lite0", 16)])
def test_the_cut_after_the_fade_removes_exactly_the_planned_channels(arch, round_to):
    from fa_compress.models.complexity import count_macs
    from fa_compress.pruning.pruner import cut_channels_exactly

    model, data = _gated(arch), _data()
    head = get_head(model, arch)
    settings = PruneSettings(importance="gate", score_images=32, round_to=round_to)
    gradient_fn, score_fn = scorers(settings, data)
    masks, found = plan_cut(model, head, settings, EXAMPLE, Budget(target_macs=0.5), gradient_fn, score_fn)
    with phase_bar(False) as bar:
        fade_out(model, head, masks, data, TrainConfig(batch_size=16, seed=0, memory_format="contiguous"),
                 init_context("cpu"), bar)
    x = torch.randn(4, 3, IMG, IMG)
    with torch.no_grad():
        faded_out = model.eval()(x)  # (4, classes)
    widths = {name: int((~m).sum()) for name, m in masks.items()}
    pruned = cut_channels_exactly(model, EXAMPLE, masks)
    assert count_macs(pruned, IMG) == found.macs_after  # the plan's MACs, not a re-ranked cut's
    assert {name: m.num_features for name, m in pruned.named_modules() if name in widths} == widths
    with torch.no_grad():
        assert torch.allclose(pruned(x), faded_out, atol=1e-4, rtol=1e-4)
