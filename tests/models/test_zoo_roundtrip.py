"""One model per zoo family: gates in, prune, fold, save, rebuild from the file; outputs identical."""

import pytest
import torch

from fa_compress.gates import has_gates, insert_gates, iter_gates
from fa_compress.models import build_model, get_head
from fa_compress.pruning.pruner import PruneSettings, channel_counts, prune_model
from fa_compress.models.saved import load_model, model_meta, save_model

# The smallest member of each family; 32 px except where the architecture needs more.
FAMILIES = {
    "resnet18": 32, "resnext50_32x4d": 32, "regnet_x_400mf": 32, "regnet_y_400mf": 32, "mobilenet_v2": 32,
    "mobilenet_v3_small": 32, "mnasnet0_5": 32, "densenet121": 32, "efficientnet_b0": 32,
    "efficientnet_v2_s": 32, "googlenet": 32, "inception_v3": 75, "squeezenet1_1": 32, "convnext_tiny": 32,
}  # squeezenet: gates in its convs and a 1x1-conv classifier; convnext: LayerNorm gates and layer scales
# vgg*_bn (>128 M parameters, a 500 MB file) goes through the chain in benchmarks/zoo.py instead
SETTINGS = PruneSettings(keep=0.6, gate_score="value")  # random gates: the value ranks them, no data needed


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_pruned_model_saves_and_rebuilds_exactly(name, tmp_path):
    torch.manual_seed(0)
    img = FAMILIES[name]
    model = insert_gates(build_model(name, num_classes=4, weights="none")).eval()
    for _, gated in iter_gates(model):
        gated.gate.data.uniform_(0, 1)
    before = channel_counts(model)
    pruned = prune_model(model, get_head(model, name), SETTINGS, torch.zeros(1, 3, img, img))
    assert not has_gates(pruned)  # folded
    after = channel_counts(pruned)
    assert sum(after.values()) < sum(before.values())
    path = tmp_path / "pruned.safetensors"
    save_model(path, pruned, model_meta(pruned, arch=name, classes=["a", "b", "c", "d"], img_size=img,
                                        normalization={"mean": [0.5] * 3, "std": [0.5] * 3}))
    rebuilt, meta = load_model(path)
    assert channel_counts(rebuilt) == after
    images = torch.randn(2, 3, img, img)  # (B, 3, H, W)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(images), pruned.eval()(images), rtol=0, atol=0)
    assert meta["arch"] == name
