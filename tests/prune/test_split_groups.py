"""A channel group spanning the convs of a split (MixNet's mixed depthwise conv) prunes with tied gates.

torch-pruning skips a whole group, silently, when its cut would empty one conv of the split. Tied gates
divided by each channel's MAC cost rank every channel of the 9x9 slice below the 3x3 slice's, so the
global threshold (and its rounding to 16) took the whole 9x9 slice: timm:mixnet_s lost no channel at
keep 0.6. `FlooredImportance` now keeps a floor in every slice, and the group prunes.
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fa_compress.gates import insert_gates, iter_gates
from fa_compress.models.timm_traceable import TraceableMixedConv2d
from fa_compress.pruning.importance import FlooredImportance, split_slices
from fa_compress.pruning.pruner import PruneSettings, channel_counts, prune_model

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
    assert int(lifted.sum()) % 16 == 0 and int(lifted.sum()) <= imp.kept(group)
    assert all(int(lifted[s].sum()) >= imp.slice_floor(len(s)) for s in slices)


def test_a_cut_torch_pruning_refuses_everywhere_is_an_error_naming_the_layer(tied, monkeypatch):
    from fa_compress.errors import ConfigError
    from fa_compress.pruning import importance

    monkeypatch.setattr(importance, "split_slices", lambda group, n: [])  # the floors as before the fix
    settings = PruneSettings(keep=0.6, gate_score="value", gate_per_mac=0.5, ignore=("project.0",))
    with pytest.raises(ConfigError, match=r"keep 0.6 removed no channel: .*would empty a layer \(mixed.1\)"):
        prune_model(tied, tied.head, settings, EXAMPLE)  # only the excitation's group is ranked, and refused
