import copy

import pytest
import torch
from torch import nn

from fa_compress.gates import (GatedBatchNorm2d, fold_gate_into_conv, fold_gates, gate_l1, gate_ranking,
                               has_gates, insert_gates, iter_gates)
from fa_compress.models import build_model
from tests.conftest import random_gates, randomize_batchnorm


def test_gated_model_at_init_equals_original(resnet18_10):
    x = torch.randn(2, 3, 64, 64)
    expected = resnet18_10(x)
    gated = insert_gates(copy.deepcopy(resnet18_10)).eval()
    assert sum(1 for _ in iter_gates(gated)) == 20  # resnet18 has 20 BatchNorms
    torch.testing.assert_close(gated(x), expected, rtol=0, atol=0)


def test_gated_lite0_at_init_equals_original():
    model = build_model("efficientnet_lite0", num_classes=10, weights="imagenet").eval()
    x = torch.randn(2, 3, 64, 64)
    expected = model(x)
    gated = insert_gates(copy.deepcopy(model)).eval()
    assert has_gates(gated) and not has_gates(model)
    torch.testing.assert_close(gated(x), expected, rtol=0, atol=0)


def test_fold_is_exact_with_random_gates(resnet18_10):
    gated = random_gates(insert_gates(resnet18_10), seed=1)
    x = torch.randn(3, 3, 64, 64)
    before = gated(x)
    folded = fold_gates(gated)
    assert not has_gates(folded)
    assert all(type(m) is nn.BatchNorm2d for m in folded.modules() if isinstance(m, nn.BatchNorm2d))
    after = folded(x)
    rel = ((after - before).abs().max() / before.abs().max()).item()
    assert rel <= 1e-5


def test_fold_gate_into_conv_without_batchnorm():
    conv = nn.Conv2d(4, 6, 3, bias=True)
    gate = torch.rand(6) * 2
    x = torch.randn(2, 4, 8, 8)
    expected = conv(x) * gate.view(1, -1, 1, 1)
    torch.testing.assert_close(fold_gate_into_conv(conv, gate)(x), expected)


def test_l1_term_moves_gates_toward_zero(resnet18_10):
    gated = insert_gates(resnet18_10)
    gates = [m.gate for _, m in iter_gates(gated)]
    opt = torch.optim.SGD(gates, lr=1.0)
    before = gate_l1(gated).item()
    for _ in range(3):
        opt.zero_grad()
        gate_l1(gated).backward()
        opt.step()
    assert before == pytest.approx(1.0)
    assert gate_l1(gated).item() < before - 1e-4


def test_gated_batchnorm_keeps_statistics():
    bn = randomize_batchnorm(nn.Sequential(nn.BatchNorm2d(8)))[0]
    gated = GatedBatchNorm2d.from_batchnorm(bn)
    torch.testing.assert_close(gated.running_var, bn.running_var)
    assert gated.gate.shape == (8,) and torch.all(gated.gate == 1)


def test_ranking_orders_channels_and_counts_noise(resnet18_10):
    gated = insert_gates(resnet18_10)
    name, first = next(iter_gates(gated))
    with torch.no_grad():
        first.gate.copy_(torch.linspace(0, 1.5, first.num_features))
    rankings = gate_ranking(gated, img_size=64)
    r = rankings[0]
    assert r.layer == name and r.channels == first.num_features
    assert list(r.gates) == sorted(r.gates, reverse=True)
    assert r.order[0] == first.num_features - 1
    assert r.amplified == int((first.gate > 1).sum()) and r.noise == int((first.gate < 0.1).sum())
    assert r.stage.startswith("stride 2")
