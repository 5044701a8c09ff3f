"""Blocks torch-pruning cannot follow (ShuffleNetV2's channel shuffle, MaxViT's partitions) prune with the
layers `keep_whole` names left whole: the pruned model computes what the gated one did, and rebuilds exactly."""

from pathlib import Path

import pytest
import torch
from torch import nn

from fa_compress.gates import has_gates, insert_gates, iter_gates
from fa_compress.models import build_model, get_head, trust_code
from fa_compress.models._discover import build_on_meta
from fa_compress.models.complexity import count_macs
from fa_compress.models.keep_whole import keep_whole
from fa_compress.pruning.pruner import PruneSettings, channel_counts, prune_model
from fa_compress.models.saved import load_model, model_meta, save_model

TINY_MAXVIT = f"{Path(__file__).with_name('user_nets.py').resolve()}:tiny_maxvit"
IMG = 32
SIZES = {"shufflenet_v2_x0_5": 32, TINY_MAXVIT: 64}  # MaxViT's grids are fixed by the input size it is built for


@pytest.fixture(autouse=True)
def _trusted():
    with trust_code():  # the tiny MaxViT is a test factory (`file.py:factory`)
        yield


def test_rules_name_the_layers_that_write_shuffled_or_partitioned_channels():
    shuffle = keep_whole(build_on_meta(lambda: build_model("shufflenet_v2_x1_0", 4, weights="none")))
    assert shuffle[:3] == ["stage2.0.branch1.2", "stage2.0.branch2.5", "stage2.1.branch2.5"]
    assert len(shuffle) == 16 + 3  # every block's branch2.5, and branch1.2 of the three stride-2 blocks
    maxvit = keep_whole(build_on_meta(lambda: build_model("maxvit_t", 4, weights="none")))
    assert maxvit[0] == "stem.1.0"
    assert len(maxvit) == 1 + 11 * (1 + 2 * 3) + 4  # stem; 11 layers: MBConv, 2 attentions; 4 stage shortcuts
    assert keep_whole(build_on_meta(lambda: build_model("resnet18", 4, weights="none"))) == []


def test_traceable_shufflenet_computes_torchvisions_values_and_gradients():
    import torchvision

    torch.manual_seed(0)
    reference = torchvision.models.shufflenet_v2_x0_5(num_classes=4)
    model = build_model("shufflenet_v2_x0_5", num_classes=4, weights="none")
    model.load_state_dict(reference.state_dict())
    images = torch.randn(2, 3, IMG, IMG)  # (B, 3, H, W)
    torch.testing.assert_close(model(images), reference(images), rtol=0, atol=0)
    model(images).square().sum().backward()
    reference(images).square().sum().backward()
    torch.testing.assert_close(model.conv1[0].weight.grad, reference.conv1[0].weight.grad)


def _gated_half_off(model: nn.Module, img: int) -> nn.Module:
    """Gates in, BatchNorm statistics from random batches (so the output depends on the input), and the
    first half of every gate at 0: a cut of fewer channels than that removes only silent ones."""
    model.train()
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.reset_running_stats()
        bn.momentum = None  # a plain average over the batches below
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, 3, img, img))  # (B, 3, H, W)
    model = insert_gates(model).eval()
    for _, gated in iter_gates(model):
        gated.gate.data.uniform_(0.5, 1.0)
        gated.gate.data[: gated.num_features // 2] = 0.0
    return model


@pytest.mark.parametrize("name", sorted(SIZES))
def test_pruned_inside_the_blocks_computes_the_same_and_rebuilds_exactly(name, tmp_path):
    torch.manual_seed(0)
    img = SIZES[name]
    model = _gated_half_off(build_model(name, num_classes=4, weights="none"), img)
    whole = keep_whole(model)
    before, macs_before = channel_counts(model), count_macs(model, img)
    images = torch.randn(4, 3, img, img)  # (B, 3, H, W)
    with torch.no_grad():
        gated_out = model(images)
    # the rule given as --ignore names; round_to 1: no cut beyond the ranking (rounding could take a live channel)
    settings = PruneSettings(keep=0.6, gate_score="value", round_to=1, ignore=tuple(whole))
    pruned = prune_model(model, get_head(model, name), settings, torch.zeros(1, 3, img, img))

    assert not has_gates(pruned)
    after = channel_counts(pruned)
    assert all(after[n] == before[n] for n in whole if n in before)  # what the blocks hand on stays
    assert count_macs(pruned, img) < 0.8 * macs_before
    with torch.no_grad():
        torch.testing.assert_close(pruned(images), gated_out, rtol=1e-4, atol=1e-5)  # only silent channels went
    path = tmp_path / "pruned.safetensors"
    save_model(path, pruned, model_meta(pruned, arch=name, classes=["a", "b", "c", "d"], img_size=img,
                                        normalization={"mean": [0.5] * 3, "std": [0.5] * 3}))
    rebuilt, _ = load_model(path)
    assert channel_counts(rebuilt) == after
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(images), pruned(images), rtol=0, atol=0)


def test_shufflenet_pruned_across_its_shuffle_fails_loudly():
    torch.manual_seed(0)
    model = build_model("shufflenet_v2_x0_5", num_classes=4, weights="none").eval()
    block = model.stage2[1]
    keep = torch.arange(block.branch2[5].out_channels - 8)  # what a pruner ignoring the rule would cut
    conv, bn = block.branch2[5], block.branch2[6]
    conv.weight.data, conv.out_channels = conv.weight.data[keep], len(keep)
    for key in ("weight", "bias", "running_mean", "running_var"):
        getattr(bn, key).data = getattr(bn, key).data[keep]
    with pytest.raises(RuntimeError, match="must keep its 48 output channels"):
        model(torch.randn(1, 3, IMG, IMG))
