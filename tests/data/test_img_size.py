"""The input size a fine-tuning uses when none is asked for: the model's pretrained resolution, unless the
dataset declares one (Fashion-MNIST: 64 px for its 28-px images); one rule, `choose_img_size`."""

import pytest

from fa_compress.data import choose_img_size, declared_img_size
from fa_compress.errors import ConfigError
from fa_compress.models import get_spec
from fa_compress.models.efficientnet_lite import LITE_IMG_SIZES


@pytest.mark.parametrize("model, pretrained_px", [
    ("resnet18", 224),                       # torchvision: the DEFAULT weights' crop size
    ("efficientnet_lite1", LITE_IMG_SIZES[1]),  # 240, the TensorFlow release's resolution
    ("inception_v3", 299),
])
def test_the_default_is_the_models_pretrained_resolution(model, pretrained_px):
    choice = choose_img_size(None, get_spec(model), "imagefolder:/photos")
    assert (choice.size_px, choice.rule) == (pretrained_px, "model")
    assert choice.describe() == f"{pretrained_px}: {model}'s pretrained resolution"


def test_a_timm_models_default_is_its_pretrained_cfg_size():
    timm = pytest.importorskip("timm")
    expected = timm.get_pretrained_cfg("efficientnet_b2").input_size[-1]
    choice = choose_img_size(None, get_spec("timm:efficientnet_b2"), "fake")
    assert expected == 256 and (choice.size_px, choice.rule) == (expected, "model")


def test_fashion_mnist_declares_its_own_size_and_wins_over_the_models():
    declared = declared_img_size("fashion-mnist")
    assert (declared.image_px, declared.img_size) == (28, 64)
    choice = choose_img_size(None, get_spec("efficientnet_lite0"), "fashion-mnist")
    assert (choice.size_px, choice.rule) == (64, "dataset")
    assert choice.reason == "fashion-mnist declares 64 px for its 28-px images"
    assert declared_img_size("fake") is None and declared_img_size("imagefolder:/x") is None


def test_a_declared_size_is_raised_to_the_models_smallest_input():
    choice = choose_img_size(None, get_spec("vgg11_bn"), "fashion-mnist")  # VGG's ONNX needs 224 px
    assert (choice.size_px, choice.rule) == (224, "dataset")
    assert "raised to vgg11_bn's smallest working input" in choice.reason


def test_an_asked_size_wins_and_one_below_the_models_smallest_is_refused():
    assert choose_img_size(96, get_spec("efficientnet_lite0"), "fashion-mnist").describe() == "96: asked for"
    with pytest.raises(ConfigError, match=r"inception_v3 needs inputs of at least 75 px; raise img_size \(got 64"):
        choose_img_size(64, get_spec("inception_v3"), "fake")
