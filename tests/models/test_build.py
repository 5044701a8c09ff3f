"""build_model: heads, weights from ImageNet, none, or a file."""

import urllib.error

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from fa_compress.run import load_state_dict_file, save_torch_file
from fa_compress.errors import CheckpointError, ConfigError, NotFoundError
from fa_compress.models import build_model, get_head, get_spec, replace_head
from fa_compress.models.efficientnet_lite import lite0_weights_path

HEAD_IN_FEATURES = {
    "resnet18": 512,
    "mobilenet_v2": 1280,
    "mobilenet_v3_large": 1280,
    "efficientnet_b0": 1280,
}


@pytest.mark.parametrize("name", sorted(HEAD_IN_FEATURES))
def test_head_is_replaced_and_model_runs_at_64px(name):
    torch.manual_seed(0)
    model = build_model(name, num_classes=7, weights="none").eval()
    head = get_head(model, name)
    assert isinstance(head, nn.Linear)
    assert (head.in_features, head.out_features) == (HEAD_IN_FEATURES[name], 7)
    with torch.inference_mode():
        out = model(torch.randn(2, 3, 64, 64))  # (B, 3, H, W) -> (B, classes)
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()


def test_lite0_imagenet_weights_load_offline_and_head_is_fresh():
    torch.manual_seed(0)
    model = build_model("efficientnet_lite0", num_classes=10).eval()
    reference = load_state_dict_file(lite0_weights_path())
    state = model.state_dict()
    torch.testing.assert_close(state["_conv_stem.weight"], reference["_conv_stem.weight"])
    torch.testing.assert_close(state["_bn1.running_var"], reference["_bn1.running_var"])
    assert state["_fc.weight"].shape == (10, 1280)
    assert reference["_fc.weight"].shape == (1000, 1280)
    image = torch.linspace(-1, 1, 3 * 64 * 64).view(1, 3, 64, 64)  # (1, 3, H, W), already in [-1, 1]
    with torch.inference_mode():
        out = model(image)
    assert out.shape == (1, 10)
    assert torch.isfinite(out).all()


def test_num_classes_below_two_is_a_config_error():
    with pytest.raises(ConfigError, match="num_classes"):
        build_model("resnet18", num_classes=1, weights="none")


def test_offline_imagenet_download_becomes_not_found_error(monkeypatch):
    import torchvision

    real = torchvision.models.resnet34

    def offline(weights=None, **kwargs):
        if weights is None:
            return real(weights=None, **kwargs)  # the architecture alone builds offline
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torchvision.models, "resnet34", offline)
    with pytest.raises(NotFoundError) as info:
        build_model("resnet34", num_classes=10)
    message = str(info.value)
    assert "ImageNet weights for resnet34" in message
    assert "weights PATH" in message
    assert "efficientnet_lite0" in message


def test_weights_file_round_trip_keeps_every_tensor(tmp_path):
    torch.manual_seed(0)
    source = build_model("resnet18", num_classes=10, weights="none")
    path = tmp_path / "r18.pt"
    save_torch_file(path, source.state_dict())
    loaded = build_model("resnet18", num_classes=10, weights=str(path))
    for key, value in source.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)


def test_weights_file_with_other_class_count_keeps_backbone_and_fresh_head(tmp_path):
    torch.manual_seed(0)
    source = build_model("resnet18", num_classes=10, weights="none")
    path = tmp_path / "r18.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    loaded = build_model("resnet18", num_classes=4, weights=str(path))
    torch.testing.assert_close(loaded.conv1.weight, source.conv1.weight)
    torch.testing.assert_close(loaded.layer4[1].bn2.running_mean, source.layer4[1].bn2.running_mean)
    assert loaded.fc.weight.shape == (4, 512)


def test_weights_file_of_another_architecture_names_the_keys(tmp_path):
    path = tmp_path / "mnv2.pt"
    save_torch_file(path, build_model("mobilenet_v2", num_classes=10, weights="none").state_dict())
    with pytest.raises(CheckpointError) as info:
        build_model("resnet18", num_classes=10, weights=str(path))
    message = str(info.value)
    assert "not a state dict of resnet18" in message
    assert "missing keys [" in message and "conv1.weight" in message
    assert "unexpected keys [" in message and "features.0.0.weight" in message


def test_weights_file_with_pruned_shapes_reports_shape_mismatch(tmp_path):
    state = build_model("resnet18", num_classes=10, weights="none").state_dict()
    state["conv1.weight"] = state["conv1.weight"][:32]  # (64, 3, 7, 7) -> (32, 3, 7, 7)
    path = tmp_path / "pruned.pt"
    save_torch_file(path, state)
    expected = r"1 shape mismatches \(conv1.weight \(32, 3, 7, 7\) vs \(64, 3, 7, 7\)\)"
    with pytest.raises(CheckpointError, match=expected):
        build_model("resnet18", num_classes=10, weights=str(path))


def test_missing_weights_file_is_not_found(tmp_path):
    with pytest.raises(NotFoundError, match="does not exist"):
        build_model("resnet18", num_classes=10, weights=str(tmp_path / "nope.pt"))


def test_replace_head_returns_the_new_linear():
    model = build_model("mobilenet_v2", num_classes=10, weights="none")
    head = replace_head(model, get_spec("mobilenet_v2"), 3)
    assert model.classifier[1] is head
    assert (head.in_features, head.out_features) == (1280, 3)
