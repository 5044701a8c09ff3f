import pytest
import torch
from torch import nn

from fa_compress.errors import ConfigError
from fa_compress.gates import GatedBatchNorm2d, insert_gates
from fa_compress.models import get_head
from fa_compress.train import configure_phase, parse_schedule


def _trainable_names(model):
    return {n for n, p in model.named_parameters() if p.requires_grad}


@pytest.fixture
def gated(resnet18_10):
    return insert_gates(resnet18_10)


def test_head_phase_trains_only_classifier(gated):
    configure_phase(gated, get_head(gated, "resnet18"), "head")
    assert _trainable_names(gated) == {"fc.weight", "fc.bias"}
    assert not any(m.training for m in gated.modules() if isinstance(m, nn.BatchNorm2d))


def test_gates_phase_trains_gates_and_head_with_frozen_statistics(gated):
    params = configure_phase(gated, get_head(gated, "resnet18"), "gates")
    names = _trainable_names(gated)
    assert {n for n in names if not n.startswith("fc.")} == {n for n in names if n.endswith(".gate")}
    assert len([n for n in names if n.endswith(".gate")]) == 20
    assert len(params) == len(names)
    bn = next(m for m in gated.modules() if isinstance(m, GatedBatchNorm2d))
    mean_before = bn.running_mean.clone()
    gated(torch.randn(4, 3, 32, 32))
    torch.testing.assert_close(bn.running_mean, mean_before)  # statistics frozen


def test_bn_phase_trains_affine_and_head(gated):
    configure_phase(gated, get_head(gated, "resnet18"), "bn")
    names = _trainable_names(gated)
    assert all(n.startswith("fc.") or n.endswith((".weight", ".bias")) and "bn" in n or "downsample.1" in n
               for n in names)
    assert not any(n.endswith(".gate") for n in names)
    assert "conv1.weight" not in names


def test_all_phase_trains_everything_and_updates_statistics(gated):
    configure_phase(gated, get_head(gated, "resnet18"), "all")
    assert _trainable_names(gated) == {n for n, _ in gated.named_parameters()}
    assert all(m.training for m in gated.modules() if isinstance(m, nn.BatchNorm2d))


def test_schedule_parsing():
    assert parse_schedule("head, gates,gates") == ("head", "gates", "gates")
    with pytest.raises(ConfigError, match="unknown phase 'gatez'"):
        parse_schedule("head,gatez")
    with pytest.raises(ConfigError):
        parse_schedule(" , ")
