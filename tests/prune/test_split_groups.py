"""A channel group spanning the convs of a split (MixNet's mixed depthwise conv) prunes with tied gates.

torch-pruning skips a whole group, silently, when its cut would empty one conv of the split. Tied gates
divided by each channel's MAC cost rank every channel of the 9x9 slice below the 3x3 slice's, so the
global threshold (and its rounding to 16) took the whole 9x9 slice: timm:mixnet_s lost no channel at
keep 0.6. `FlooredImportance` now keeps a floor in every slice, and the group prunes.

The floors only hold while the global ratio leaves the lifted scores alone: `feasible_ratio` counts the
scores torch-pruning ranks, which leaves out a group with no gate (a conv and GroupNorm) and ranks a
GroupNorm's group by one score per position within its channel groups.
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fa_compress.gates import insert_gates, iter_gates
from fa_compress.models.timm_traceable import TraceableMixedConv2d
from fa_compress.pruning.importance import FlooredImportance, feasible_ratio, split_slices
from fa_compress.pruning.pruner import PruneSettings, channel_counts, prune_model
from tests.models.user_nets import NormZoo

EXAMPLE = torch.zeros(1, 3, 32, 32)
WIDTH = 64  # the mixed conv's channels: a 3x3 depthwise conv on the first half, a 9x9 one on the second


class MixedNet(nn.Module):
    """A conv, a MixNet-style mixed depthwise conv with squeeze-excitation, a projection, a classifier.

    The excitation's expanding conv writes all `WIDTH` channels, so torch-pruning roots their group
    there and the two depthwise convs each hold a slice of it, as in timm:mixnet_s."""

    def __init__(self) -> None:
        super().__init__()
        half = WIDTH // 2
        self.stem = nn.Sequential(nn.Conv2d(3, WIDTH, 1, bias=False), nn.BatchNorm2d(WIDTH))
        self.mixed = TraceableMixedConv2d({
            "0": nn.Conv2d(half, half, 3, padding=1, groups=half, bias=False),
            "1": nn.Conv2d(half, half, 9, padding=4, groups=half, bias=False)})
        self.bn = nn.BatchNorm2d(WIDTH)
        self.se_reduce, self.se_expand = nn.Conv2d(WIDTH, 8, 1), nn.Conv2d(8, WIDTH, 1)
        self.project = nn.Sequential(nn.Conv2d(WIDTH, 32, 1, bias=False), nn.BatchNorm2d(32))
        self.head = nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.mixed(F.relu(self.stem(x)))))  # (N, WIDTH, H, W)
        squeezed = F.relu(self.se_reduce(x.mean((2, 3), keepdim=True)))  # (N, WIDTH, H, W) -> (N, 8, 1, 1)
        x = x * torch.sigmoid(self.se_expand(squeezed))  # (N, WIDTH, 1, 1) broadcast over (N, WIDTH, H, W)
        x = F.relu(self.project(x))  # (N, 32, H, W)
        return self.head(x.mean((2, 3)))  # (N, 32, H, W) -> (N, 32) -> (N, 4)


@pytest.fixture
def tied() -> MixedNet:
    torch.manual_seed(0)
    model = insert_gates(MixedNet()).eval()
    for _, gate in iter_gates(model):
        gate.gate.data.fill_(1.0)  # what a few training steps on random weights leave
    return model


def test_a_group_across_a_split_prunes_with_tied_gates(tied):
    pruned = prune_model(tied, tied.head, PruneSettings(keep=0.6, gate_score="value", gate_per_mac=0.5), EXAMPLE)
    after = channel_counts(pruned)
    # before the floors per slice: 64 (the group skipped whole: its cut emptied the 9x9 slice)
    assert after["stem.0"] <= 0.6 * WIDTH
    assert after["stem.0"] % 16 == 0
    assert after["mixed.0"] >= 4 and after["mixed.1"] >= 4  # no slice loses more than max_layer_prune
    assert after["mixed.0"] + after["mixed.1"] == after["stem.0"]
    assert pruned(torch.randn(2, 3, 32, 32)).shape == (2, 4)


def test_each_slice_keeps_its_floor_and_the_lifted_count_rounds_to_a_multiple(tied):
    import torch_pruning as tp

    from fa_compress.gates.graph import GATE_PRUNERS, traceable
    from fa_compress.pruning.importance import LIFTED, make_importance

    with traceable(tied):
        graph = tp.DependencyGraph().build_dependency(tied, EXAMPLE, customized_pruners=GATE_PRUNERS)
    group = graph.get_pruning_group(tied.se_expand, tp.prune_conv_out_channels, list(range(WIDTH)))
    slices = split_slices(group, WIDTH)
    assert [s.tolist() for s in slices] == [list(range(32)), list(range(32, 64))]

    imp = make_importance("gate", score="value", max_prune=0.9, round_to=16)
    assert isinstance(imp, FlooredImportance)
    scores = imp(group)  # (WIDTH,)
    lifted = scores == LIFTED
    count = int(lifted.sum())
    at_most = -(-(imp.floor(WIDTH) + sum(imp.slice_floor(len(s)) for s in slices)) // 16) * 16  # rounded up
    assert count % 16 == 0 and imp.floor(WIDTH) <= count <= at_most
    assert all(int(lifted[s].sum()) >= imp.slice_floor(len(s)) for s in slices)


def test_a_cut_torch_pruning_refuses_everywhere_is_an_error_naming_the_layer(tied, monkeypatch):
    from fa_compress.errors import ConfigError
    from fa_compress.pruning import importance

    monkeypatch.setattr(importance, "split_slices", lambda group, n: [])  # the floors as before the fix
    settings = PruneSettings(keep=0.6, gate_score="value", gate_per_mac=0.5, ignore=("project.0",))
    with pytest.raises(ConfigError, match=r"keep 0.6 removed no channel: .*would empty a layer \(mixed.1\)"):
        prune_model(tied, tied.head, settings, EXAMPLE)  # only the excitation's group is ranked, and refused


def _norm_zoo(gates: str) -> NormZoo:
    """NormZoo gated, with distinct gates; its conv and GroupNorm (`mid`) carry no gate."""
    torch.manual_seed(0)
    model = insert_gates(NormZoo()).eval()
    g = torch.Generator().manual_seed(1)
    for _, gate in iter_gates(model):
        gate.gate.data.copy_(torch.rand(gate.num_features, generator=g) if gates == "random" else 1.0)
    return model


@pytest.mark.parametrize("gates", ["random", "tied"])
@pytest.mark.parametrize("keep", [0.3, 0.5, 0.6])
def test_a_net_with_an_ungated_group_norm_prunes_its_gated_groups(gates, keep):
    model = _norm_zoo(gates)
    pruned = prune_model(model, model.fc, PruneSettings(keep=keep, gate_score="value"), torch.zeros(1, 3, 32, 32))
    # before: the ratio counted the GroupNorm's 32 channels that are never ranked, the threshold reached
    # the lifted scores, every cut was refused and the net came back whole (stem.0 16, mid.0 32, last.0 32)
    assert channel_counts(pruned) == {"stem.0": 16, "mid.0": 32, "last.0": 16}
    assert pruned.mid[1].num_channels == 32 and pruned.norm.normalized_shape == (16,)


def test_the_ratio_counts_the_scores_torch_pruning_ranks():
    import torch_pruning as tp

    from fa_compress.gates.graph import GATE_PRUNERS, traceable
    from fa_compress.pruning.importance import make_importance

    model = _norm_zoo("random")
    imp = make_importance("gate", score="value", max_prune=0.9, round_to=16)
    with traceable(model):
        pruner = tp.pruner.MetaPruner(model, torch.zeros(1, 3, 32, 32), importance=imp, pruning_ratio=0.5,
                                      global_pruning=True, round_to=16, ignored_layers=[model.fc],
                                      customized_pruners=GATE_PRUNERS)
    # ranked: stem (16, all lifted: its floor is round_to) and last (32, 16 lifted); mid has no gate
    assert feasible_ratio(pruner, imp, 0.5) == pytest.approx(1 - 32 / 48 - 0.5 / 48)


@pytest.mark.parametrize("round_to", [1, 16])
def test_a_group_norm_group_ranked_per_position_keeps_its_channel_groups_whole(round_to):
    model = _norm_zoo("random")
    settings = PruneSettings(keep=0.5, importance="l1", round_to=round_to)
    pruned = prune_model(model, model.fc, settings, torch.zeros(1, 3, 32, 32))
    counts, norm = channel_counts(pruned), pruned.mid[1]
    # before, at round_to 16: the ratio counted the GroupNorm's 32 channels where torch-pruning ranks 8
    # positions, and every cut was refused
    assert counts["last.0"] < 32
    assert norm.num_channels == counts["mid.0"] and norm.num_channels % norm.num_groups == 0
    assert all(c >= 4 for c in counts.values())  # max_layer_prune 0.9 holds in every layer


def test_mixnet_s_with_tied_gates_loses_channels():
    pytest.importorskip("timm")
    from fa_compress.models import build_model

    torch.manual_seed(0)
    model = insert_gates(build_model("timm:mixnet_s", num_classes=3, weights="none")).eval()
    for _, gate in iter_gates(model):
        gate.gate.data.fill_(1.0)
    before = sum(channel_counts(model).values())
    pruned = prune_model(model, model.classifier, PruneSettings(keep=0.6, gate_score="value"), EXAMPLE)
    # before the floors per slice: 23022 -> 23022, every group across a mixed conv skipped
    assert before == 23022 and sum(channel_counts(pruned).values()) < 0.75 * before
