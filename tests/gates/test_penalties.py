"""Gate penalties: the cost-weighted L1 pulls expensive channels' gates harder than cheap ones'."""

import pytest
import torch

from fa_compress.errors import NotFoundError
from fa_compress.gates import insert_gates, iter_gates
from fa_compress.gates.costs import gate_costs
from fa_compress.gates.penalties import POLAR_T, make_gate_penalty
from fa_compress.models import build_model


def _gated():
    torch.manual_seed(0)
    return insert_gates(build_model("resnet18", num_classes=3, weights="none")).eval()


def test_costs_follow_the_convs_the_channel_feeds():
    model = _gated()
    costs = gate_costs(model, 32)
    # layer1 runs at 8x8 with 64 channels, layer4 at 1x1 with 512: a layer1.0.bn1 channel costs
    # conv1 (64*9 MACs x 64 px) + conv2's input slice (64*9 x 64 px) = 73,728 MACs
    assert float(costs["layer1.0.bn1"][0]) == pytest.approx(2 * 64 * 9 * 64)
    assert float(costs["layer4.0.bn1"][0]) == pytest.approx(256 * 9 * 1 + 512 * 9 * 1)


def test_cost_weighted_penalty_moves_expensive_gates_more():
    model = _gated()
    penalty = make_gate_penalty("cost-l1", model, img_size=32)
    penalty(model).backward()
    grads = {n: m.gate.grad.abs().mean().item() for n, m in iter_gates(model)}
    costs = {n: c.mean().item() for n, c in gate_costs(model, 32).items()}
    cheap, dear = min(costs, key=costs.get), max(costs, key=costs.get)
    assert grads[dear] > 3 * grads[cheap]
    plain = make_gate_penalty("l1", model)
    model.zero_grad()
    plain(model).backward()
    flat = torch.cat([m.gate.grad for _, m in iter_gates(model)])
    assert torch.allclose(flat, flat[0].expand_as(flat))  # plain L1: every gate pulled alike


def test_polarisation_pushes_gates_away_from_their_mean():
    model = _gated()
    with torch.no_grad():
        for _, m in iter_gates(model):
            m.gate.copy_(torch.linspace(0.2, 1.4, m.num_features))
    make_gate_penalty("polar", model)(model).backward()
    _, m = next(iter_gates(model))
    # gradient of t|g| - |g - mean|: below the mean t + 1 (pushed down), above it t - 1
    assert m.gate.grad[0] > m.gate.grad[-1] > 0
    assert POLAR_T > 1


def test_unknown_penalty():
    with pytest.raises(NotFoundError, match="unknown gate penalty"):
        make_gate_penalty("l3", _gated())
