import pytest
import torch
from torch import nn
from torchvision.models.convnext import CNBlock, LayerNorm2d

from fa_compress.errors import ConfigError
from fa_compress.gates import GatedBatchNorm2d, insert_gates
from fa_compress.models import build_model, get_head
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


def _batchnorm_affine_then_head(model, head):
    """What `bn` trained before it covered every norm: each BatchNorm's weight and bias in module order, then
    the head's parameters."""
    params = [p for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) for p in (m.weight, m.bias)]
    return params + [p for p in head.parameters() if all(p is not q for q in params)]


@pytest.mark.parametrize("name", ["resnet18", "efficientnet_lite0"])
def test_bn_phase_on_a_batchnorm_model_trains_the_same_parameters_in_the_same_order(name):
    model = insert_gates(build_model(name, num_classes=10, weights="none"))
    head = get_head(model, name)
    params = configure_phase(model, head, "bn")
    expected = _batchnorm_affine_then_head(model, head)
    assert len(params) == len(expected) and all(p is q for p, q in zip(params, expected))


def test_bn_phase_trains_the_layernorm_affine_of_a_model_without_batchnorm():
    model = insert_gates(nn.Sequential(nn.Conv2d(3, 16, 4, stride=4), LayerNorm2d(16), CNBlock(16, 0.5, 0.0),
                                       nn.Conv2d(16, 8, 1), nn.GroupNorm(2, 8), nn.AdaptiveAvgPool2d(1),
                                       nn.Flatten(), nn.Linear(8, 5)))
    params = configure_phase(model, model[7], "bn")
    norms = {"1.weight", "1.bias", "2.block.2.weight", "2.block.2.bias", "4.weight", "4.bias"}
    assert _trainable_names(model) == norms | {"7.weight", "7.bias"}  # no gate, no conv, no MLP Linear
    assert len(params) == 8 and all(p.requires_grad for p in params)


def test_bn_phase_on_a_model_without_normalisation_layers_is_refused():
    model = insert_gates(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.ReLU(),
                                       nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)))
    before = {n: p.requires_grad for n, p in model.named_parameters()}
    with pytest.raises(ConfigError, match="phase 'bn' trains normalisation layers.*use head, gates or all"):
        configure_phase(model, model[6], "bn")
    assert {n: p.requires_grad for n, p in model.named_parameters()} == before  # refused before any change


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
