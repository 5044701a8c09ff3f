"""describe_structure / apply_structure: a pruned model's weights load into a fresh model."""

import json

import pytest
import torch
from torch import nn

from fa_compress.errors import CheckpointError
from fa_compress.models import apply_structure, build_model, describe_structure


def _keep(n: int, count: int) -> torch.Tensor:
    return torch.randperm(n)[:count].sort().values


def _shrink_out(conv: nn.Conv2d, keep: torch.Tensor) -> None:
    conv.weight = nn.Parameter(conv.weight.detach()[keep].clone())  # (O, I, k, k) -> (O', I, k, k)
    if conv.bias is not None:
        conv.bias = nn.Parameter(conv.bias.detach()[keep].clone())
    conv.out_channels = len(keep)


def _shrink_in(conv: nn.Conv2d, keep: torch.Tensor) -> None:
    conv.weight = nn.Parameter(conv.weight.detach()[:, keep].clone())  # (O, I, k, k) -> (O, I', k, k)
    conv.in_channels = len(keep)


def _shrink_depthwise(conv: nn.Conv2d, keep: torch.Tensor) -> None:
    _shrink_out(conv, keep)  # (C, 1, k, k) -> (C', 1, k, k)
    conv.in_channels = conv.groups = len(keep)


def _shrink_bn(bn: nn.BatchNorm2d, keep: torch.Tensor) -> None:
    bn.weight = nn.Parameter(bn.weight.detach()[keep].clone())
    bn.bias = nn.Parameter(bn.bias.detach()[keep].clone())
    bn.running_mean = bn.running_mean[keep].clone()
    bn.running_var = bn.running_var[keep].clone()
    bn.num_features = len(keep)


def _randomise_bn_stats(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)


def _rebuild_and_compare(name: str, pruned: nn.Module, img_size: int) -> nn.Module:
    structure = json.loads(json.dumps(describe_structure(pruned)))  # as stored in a model file
    fresh = build_model(name, num_classes=5, weights="none")
    apply_structure(fresh, structure)
    fresh.load_state_dict(pruned.state_dict(), strict=True)
    x = torch.randn(2, 3, img_size, img_size)  # (B, 3, H, W)
    with torch.inference_mode():
        torch.testing.assert_close(fresh.eval()(x), pruned.eval()(x))
    return fresh


def test_describe_structure_records_channel_counts_as_ints():
    model = build_model("resnet18", num_classes=5, weights="none")
    structure = describe_structure(model)
    assert structure["conv1"] == {"kind": "conv", "in": 3, "out": 64, "groups": 1}
    assert structure["layer2.0.bn1"] == {"kind": "bn", "features": 128}
    assert structure["fc"] == {"kind": "linear", "in": 512, "out": 5}
    assert sum(1 for e in structure.values() if e["kind"] == "conv") == 20
    assert all(type(v) in (int, str) for entry in structure.values() for v in entry.values())


def test_pruned_resnet18_loads_strictly_into_fresh_model():
    torch.manual_seed(0)
    pruned = build_model("resnet18", num_classes=5, weights="none")
    _randomise_bn_stats(pruned)
    for block, width in ((pruned.layer1[0], 40), (pruned.layer3[1], 100), (pruned.layer4[0], 300)):
        keep = _keep(block.conv1.out_channels, width)
        _shrink_out(block.conv1, keep)
        _shrink_bn(block.bn1, keep)
        _shrink_in(block.conv2, keep)
    fresh = _rebuild_and_compare("resnet18", pruned, 64)
    assert fresh.layer3[1].conv1.weight.shape == (100, 256, 3, 3)
    assert fresh.layer3[1].bn1.running_var.shape == (100,)
    assert fresh.layer3[1].conv2.in_channels == 100


def test_pruned_lite0_depthwise_block_keeps_subclasses_and_groups():
    torch.manual_seed(0)
    pruned = build_model("efficientnet_lite0", num_classes=5, weights="none")
    _randomise_bn_stats(pruned)
    block = pruned._blocks[1]  # expand 16 -> 96, depthwise 96, project 96 -> 24
    keep = _keep(96, 64)
    _shrink_out(block._expand_conv, keep)
    _shrink_bn(block._bn0, keep)
    _shrink_depthwise(block._depthwise_conv, keep)
    _shrink_bn(block._bn1, keep)
    _shrink_in(block._project_conv, keep)
    fresh = _rebuild_and_compare("efficientnet_lite0", pruned, 64)
    depthwise = fresh._blocks[1]._depthwise_conv
    assert type(depthwise).__name__ == "Conv2dStaticSamePadding"
    assert (depthwise.in_channels, depthwise.out_channels, depthwise.groups) == (64, 64, 64)
    assert describe_structure(fresh)["_blocks.1._depthwise_conv"] == {"kind": "conv", "in": 64, "out": 64, "groups": 64}


class _GatedBN(nn.BatchNorm2d):
    """A BatchNorm2d subclass with one more per-channel parameter, like the gated BatchNorm."""

    def __init__(self, features: int):
        super().__init__(features)
        self.gate = nn.Parameter(torch.ones(features))


def test_batchnorm_subclass_extra_per_channel_tensors_are_resized():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), _GatedBN(8))
    apply_structure(model, {"0": {"kind": "conv", "in": 3, "out": 5, "groups": 1}, "1": {"kind": "bn", "features": 5}})
    assert isinstance(model[1], _GatedBN)
    assert model[1].gate.shape == (5,)
    assert isinstance(model[1].gate, nn.Parameter)
    torch.testing.assert_close(model[1].gate.detach(), torch.ones(5))  # the kept part of the old values
    assert model[1].num_batches_tracked.shape == ()
    assert model(torch.randn(1, 3, 6, 6)).shape == (1, 5, 4, 4)


def test_apply_structure_rejects_unknown_layers_wrong_kinds_and_bad_groups():
    model = nn.Sequential(nn.Conv2d(4, 8, 3), nn.BatchNorm2d(8))
    with pytest.raises(CheckpointError, match="does not have"):
        apply_structure(model, {"7": {"kind": "bn", "features": 4}})
    with pytest.raises(CheckpointError, match="is a bn"):
        apply_structure(model, {"0": {"kind": "bn", "features": 4}})
    with pytest.raises(CheckpointError, match="do not split into 3 groups"):
        apply_structure(model, {"0": {"kind": "conv", "in": 4, "out": 8, "groups": 3}})
