"""Gate Taylor scores: deterministic for a seed, in loss units, and a frozen backbone still prunes right."""

import copy

import torch

from fa_compress.gates import insert_gates, iter_gates
from fa_compress.models import build_model, get_head
from fa_compress.pruning.gate_scores import accumulate_gate_taylor
from fa_compress.pruning.pruner import PruneSettings, prune_model
from tests.conftest import random_gates, randomize_batchnorm


def _data(n: int = 48):
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(3, 32, 32, generator=g), i % 3) for i in range(n)]


def _model(arch="resnet18"):
    torch.manual_seed(0)
    return random_gates(insert_gates(randomize_batchnorm(build_model(arch, num_classes=3, weights="none"))))


def test_scores_are_the_same_for_the_same_seed_and_differ_for_another():
    a, b, c = _model(), _model(), _model()
    for m, seed in ((a, 0), (b, 0), (c, 5)):
        assert accumulate_gate_taylor(m, _data(), images=32, batch_size=8, seed=seed) == 32
    sa = torch.cat([m.taylor_score for _, m in iter_gates(a)])
    sb = torch.cat([m.taylor_score for _, m in iter_gates(b)])
    sc = torch.cat([m.taylor_score for _, m in iter_gates(c)])
    torch.testing.assert_close(sa, sb, rtol=1e-6, atol=1e-12)
    assert not torch.allclose(sa, sc)
    assert (sa >= 0).all() and sa.sum() > 0


def test_a_zero_gate_scores_zero():
    model = _model()
    name, first = next(iter_gates(model))
    with torch.no_grad():
        first.gate[:5] = 0.0
    accumulate_gate_taylor(model, _data(), images=16)
    assert torch.equal(first.taylor_score[:5], torch.zeros(5, dtype=torch.float64))


def test_frozen_backbone_prunes_conv_and_batchnorm_together():
    """A `gates` phase freezes the convs; torch-pruning's trace must still couple each conv with its
    BatchNorm (it once pruned Lite0's stem BatchNorm to 16 channels and left its conv at 32)."""
    model = _model("efficientnet_lite0")
    for name, p in model.named_parameters():
        p.requires_grad_(name.endswith("gate"))
    with torch.no_grad():
        model._bn0.gate[:16] = 0.001  # make the stem the cheapest group to cut
    settings = PruneSettings(keep=0.3, gate_score="value")
    pruned = prune_model(copy.deepcopy(model), get_head(model, "efficientnet_lite0"), settings,
                         torch.zeros(1, 3, 32, 32))
    assert pruned._conv_stem.out_channels == pruned._bn0.num_features
    assert pruned(torch.randn(2, 3, 32, 32)).shape == (2, 3)
    assert [p.requires_grad for p in model.parameters()] == [n.endswith("gate") for n, _ in model.named_parameters()]
