"""The model registry: names, specs, errors."""

import subprocess
import sys

import pytest

from fa_compress.errors import NotFoundError
from fa_compress.models import IMAGENET_NORMALIZATION, Normalization, get_spec, model_names, registered_names

REGISTERED = {"efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"}
BEFORE_THE_ZOO = {"efficientnet_b0", "mobilenet_v2", "mobilenet_v3_large", "resnet101", "resnet18", "resnet34",
                  "resnet50"}  # the names of the hand-written list the zoo replaced: all still work


def test_model_names_lists_packaged_models_and_the_torchvision_zoo_sorted():
    names = model_names()
    assert REGISTERED | BEFORE_THE_ZOO <= set(names)
    assert {"regnet_x_400mf", "resnext50_32x4d", "densenet121", "mobilenet_v3_small", "wide_resnet50_2",
            "mnasnet0_5", "efficientnet_b1", "googlenet", "inception_v3", "vgg11_bn"} <= set(names)
    assert {"alexnet", "convnext_tiny", "vgg16", "squeezenet1_1"} <= set(names)  # gated without BatchNorm2d
    assert not {"vit_b_16", "swin_t", "swin_v2_b"} & set(names)  # vision transformers
    assert names == sorted(names)
    assert set(registered_names()) == REGISTERED


def test_unknown_model_error_suggests_close_names_and_the_models_command():
    with pytest.raises(NotFoundError) as info:
        get_spec("resnet19")
    message = str(info.value)
    assert "unknown model 'resnet19'" in message
    assert "Did you mean resnet18" in message
    assert "`facompress models` lists all" in message
    assert "timm:NAME" in message and "file.py:factory" in message
    assert "\n" not in message


def test_specs_carry_head_path_and_normalisation():
    assert get_spec("resnet50").head == "fc"
    assert get_spec("mobilenet_v3_large").head == "classifier.3"
    assert get_spec("resnet18").normalization == IMAGENET_NORMALIZATION
    lite = get_spec("efficientnet_lite0")
    assert lite.normalization == Normalization((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert lite.offline_weights is True
    assert get_spec("resnet18").offline_weights is False
    assert all(get_spec(n).default_img_size == 224 for n in BEFORE_THE_ZOO | {"efficientnet_lite0"})
    assert (get_spec("efficientnet_lite1").default_img_size, get_spec("efficientnet_lite2").default_img_size) == (240, 260)


def test_normalization_is_frozen_and_serialises():
    norm = Normalization((0.1, 0.2, 0.3), (0.4, 0.5, 0.6))
    assert norm.to_json() == {"mean": [0.1, 0.2, 0.3], "std": [0.4, 0.5, 0.6]}
    with pytest.raises(AttributeError):
        norm.mean = (0.0, 0.0, 0.0)


def test_importing_models_and_data_does_not_load_torch():
    code = (
        "import sys, fa_compress.models, fa_compress.data; "
        "print(sorted(m for m in ('torch', 'torchvision') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
