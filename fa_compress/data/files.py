"""A dataset of image files on disk, decoded with PIL on every access."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from ..errors import UserError


class ImageFileDataset(Dataset):
    """Items `(transform(PIL image), label)` for a list of `(path, label)` samples."""

    in_memory = False  # make_loader decodes these in worker processes

    def __init__(self, samples: Sequence[tuple[Path, int]], transform: Callable[[Any], Any]):
        self.samples = list(samples)
        self.labels = [label for _, label in self.samples]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        from PIL import Image

        path, label = self.samples[index]
        try:
            with Image.open(path) as image:
                image.load()
                return self.transform(image), label
        except OSError as exc:  # passed the header check at load time but the pixel data is broken
            raise UserError(f"image {path} could not be decoded ({exc}); delete or replace it") from exc
