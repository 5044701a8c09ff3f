import copy

import pytest
import torch
from torch import nn

from fa_compress.errors import ConfigError, NotFoundError
from fa_compress.gates import has_gates, insert_gates, iter_gates
from fa_compress.models import build_model, get_head
from fa_compress.pruning.pruner import PruneSettings, channel_counts, prune_model
from fa_compress.models.saved import load_model, model_meta, save_model
from tests.conftest import random_gates

EXAMPLE = torch.zeros(1, 3, 32, 32)


@pytest.fixture
def gated18(resnet18_10):
    return random_gates(insert_gates(resnet18_10))


def test_prune_folds_gates_runs_and_rounds(gated18):
    before = channel_counts(gated18)
    pruned = prune_model(gated18, gated18.fc, PruneSettings(gate_score="value", keep=0.6, round_to=8), EXAMPLE)
    after = channel_counts(pruned)
    assert not has_gates(pruned)
    assert all(c % 8 == 0 and c > 0 for c in after.values())
    assert sum(after.values()) < 0.75 * sum(before.values())
    assert pruned.fc.out_features == 10  # the head's outputs are never pruned
    assert pruned(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_layer_scope_prunes_every_layer_by_the_same_ratio(gated18):
    before = channel_counts(gated18)
    pruned = prune_model(gated18, gated18.fc, PruneSettings(gate_score="value", keep=0.5, scope="layer", round_to=1), EXAMPLE)
    after = channel_counts(pruned)
    assert {after[k] / before[k] for k in before} == {0.5}


def test_zero_gate_channels_are_removed_without_changing_output(resnet18_10):
    model = insert_gates(resnet18_10)
    # block-internal BatchNorms (bn1 of each block) are not coupled to a residual stream
    internal = {n: m for n, m in iter_gates(model) if n.endswith(".bn1") and n != "bn1"}
    zeroed = 0
    with torch.no_grad():
        for m in internal.values():
            m.gate[: m.num_features // 4] = 0
            zeroed += m.num_features // 4
    x = torch.randn(2, 3, 32, 32)
    expected = model(x)
    before = channel_counts(model)
    # exactly the zeroed channels fall under the global threshold when only block convs can go
    keep = 1 - zeroed / sum(m.num_features for m in internal.values())
    others = [n for n, _ in model.named_modules() if isinstance(_, nn.Conv2d)
              and not (n.endswith(".conv1") and n != "conv1")]
    pruned = prune_model(model, model.fc, PruneSettings(gate_score="value", keep=keep, round_to=1, ignore=tuple(others)), EXAMPLE)
    after = channel_counts(pruned)
    for name, m in internal.items():
        conv = name.replace(".bn1", ".conv1")
        assert after[conv] == before[conv] - before[conv] // 4
    torch.testing.assert_close(pruned(x), expected, rtol=1e-5, atol=1e-5)


def test_residual_groups_stay_consistent_on_resnet50():
    model = random_gates(insert_gates(build_model("resnet50", 10, weights="none")))
    pruned = prune_model(model, model.fc, PruneSettings(gate_score="value", keep=0.6), EXAMPLE)
    c = channel_counts(pruned)
    for stage, blocks in (("layer1", 3), ("layer2", 4), ("layer3", 6), ("layer4", 3)):
        widths = {c[f"{stage}.{i}.conv3"] for i in range(blocks)} | {c[f"{stage}.0.downsample.0"]}
        assert len(widths) == 1, (stage, widths)
    assert pruned.fc.in_features == c["layer4.0.conv3"]
    assert pruned(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_lite0_prunes_through_depthwise_and_residual_groups():
    model = random_gates(insert_gates(build_model("efficientnet_lite0", 10, weights="imagenet")))
    pruned = prune_model(model, get_head(model, "efficientnet_lite0"), PruneSettings(gate_score="value", keep=0.6), EXAMPLE)
    for name, m in pruned.named_modules():
        if isinstance(m, nn.Conv2d) and m.groups > 1:  # depthwise: in == out == groups
            assert m.in_channels == m.out_channels == m.groups, name
        if isinstance(m, nn.BatchNorm2d):
            assert m.running_mean.numel() == m.num_features == m.weight.numel(), name
    assert sum(channel_counts(pruned).values()) < sum(channel_counts(build_model(
        "efficientnet_lite0", 10, weights="none")).values())
    assert pruned(torch.randn(2, 3, 64, 64)).shape == (2, 10)


def test_pruned_model_save_load_round_trip_is_exact(gated18, tmp_path):
    pruned = prune_model(gated18, gated18.fc, PruneSettings(gate_score="value", keep=0.5), EXAMPLE).eval()
    meta = model_meta(pruned, arch="resnet18", classes=[str(i) for i in range(10)], img_size=32,
                      normalization={"mean": [0.5] * 3, "std": [0.5] * 3})
    save_model(tmp_path / "p.safetensors", pruned, meta)
    loaded, loaded_meta = load_model(tmp_path / "p.safetensors")
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(loaded(x), pruned(x), rtol=0, atol=0)
    assert channel_counts(loaded) == channel_counts(pruned) and loaded_meta["arch"] == "resnet18"


@pytest.mark.parametrize("keep", [0, -0.1, 1.5])
def test_keep_out_of_range_is_a_config_error(keep):
    with pytest.raises(ConfigError, match="keep"):
        PruneSettings(gate_score="value", keep=keep)


def test_gate_importance_needs_gates(resnet18_10):
    with pytest.raises(ConfigError, match="l1, bn, taylor, random"):
        prune_model(resnet18_10, resnet18_10.fc, PruneSettings(importance="gate"), EXAMPLE)


def test_unknown_ignore_name_lists_close_matches(gated18):
    with pytest.raises(NotFoundError, match="layer1.0.conv1"):
        prune_model(gated18, gated18.fc, PruneSettings(ignore=("layer1.0.conv",)), EXAMPLE)


@pytest.mark.parametrize("criterion", ["l1", "bn", "random"])
def test_torch_pruning_criteria_work_on_gated_models(gated18, criterion):
    pruned = prune_model(gated18, gated18.fc, PruneSettings(gate_score="value", keep=0.6, importance=criterion), EXAMPLE)
    assert not has_gates(pruned) and pruned(EXAMPLE).shape == (1, 10)
