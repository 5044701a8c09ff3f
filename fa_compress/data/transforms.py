"""PIL image transforms for file-based datasets (image folders, torchvision sets)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..models import Normalization

if TYPE_CHECKING:
    from collections.abc import Callable

    from PIL import Image

# RandomResizedCrop's default lower scale (0.08) suits training from scratch on ImageNet; fine-tuning
# on small, often object-centred images keeps more of the object.
_TRAIN_MIN_SCALE = 0.25
_CENTER_CROP_FRACTION = 0.875  # resize to size / 0.875 then centre-crop `size`: the ImageNet habit


class ToRGB:
    """Convert any PIL mode (L, P, RGBA, CMYK, I;16) to RGB, so grayscale gives 3 channels."""

    def __call__(self, image: Image.Image) -> Image.Image:
        return image if image.mode == "RGB" else image.convert("RGB")


def train_transform(img_size: int, normalization: Normalization) -> Callable[[Any], Any]:
    """PIL image -> float (3, img_size, img_size): random resized crop, random flip, normalise."""
    from torchvision import transforms as T

    return T.Compose(
        [
            ToRGB(),
            T.RandomResizedCrop(img_size, scale=(_TRAIN_MIN_SCALE, 1.0), antialias=True),
            T.RandomHorizontalFlip(),
            T.ToTensor(),  # (H, W, 3) uint8 -> (3, H, W) float in [0, 1]
            T.Normalize(normalization.mean, normalization.std),
        ]
    )


def eval_transform(img_size: int, normalization: Normalization) -> Callable[[Any], Any]:
    """PIL image -> float (3, img_size, img_size): resize the short side, centre crop, normalise."""
    from torchvision import transforms as T

    return T.Compose(
        [
            ToRGB(),
            T.Resize(round(img_size / _CENTER_CROP_FRACTION), antialias=True),
            T.CenterCrop(img_size),
            T.ToTensor(),  # (H, W, 3) uint8 -> (3, H, W) float in [0, 1]
            T.Normalize(normalization.mean, normalization.std),
        ]
    )
