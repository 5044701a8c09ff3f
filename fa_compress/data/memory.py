"""An in-memory uint8 image dataset: the fast path for Fashion-MNIST and the fake set."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from ..errors import InternalError
from ..models import Normalization


class InMemoryImageDataset(Dataset):
    """Items `(float (3, H, W) normalised, int label)` from uint8 images held in one tensor.

    Images are stored resized already, so an item costs one fused multiply-add: grayscale is
    broadcast to 3 channels by the same operation that normalises it.
    """

    in_memory = True  # make_loader uses no worker processes for these

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, normalization: Normalization, *, flip: bool):
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] not in (1, 3):
            raise InternalError(f"images must be uint8 (N, 1|3, H, W), got {images.dtype} {tuple(images.shape)}")
        self.images = images  # (N, C, H, W) uint8
        self.labels = labels.to(torch.long)  # (N,)
        self.flip = flip  # random horizontal flip (training split)
        mean = torch.tensor(normalization.mean, dtype=torch.float32).view(3, 1, 1)  # (3,) -> (3, 1, 1)
        std = torch.tensor(normalization.std, dtype=torch.float32).view(3, 1, 1)  # (3,) -> (3, 1, 1)
        # (x / 255 - mean) / std == x * scale + shift
        self._scale = 1.0 / (255.0 * std)  # (3, 1, 1)
        self._shift = -mean / std  # (3, 1, 1)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        flip = self.flip and bool(torch.rand(()) < 0.5)
        return self._convert(index, flip), int(self.labels[index])

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, int]]:
        """A whole batch at once (DataLoader calls this instead of __getitem__ when it exists).

        Items are converted one by one into one output tensor: up to ~100 px an item stays under
        torch's parallel grain (32768 elements), so each operation runs on one thread. Batch-wide
        operations were 1.8x faster on 2 idle cores but ~20x slower when other processes kept
        the cores busy (OpenMP threads wait on each other).
        """
        flips = (torch.rand(len(indices)) < 0.5).tolist() if self.flip else [False] * len(indices)
        out = torch.empty((len(indices), 3, *self.images.shape[-2:]))  # (B, 3, H, W)
        for row, (index, flip) in enumerate(zip(indices, flips)):
            self._convert(index, flip, out=out[row])
        return list(zip(out.unbind(0), self.labels[indices].tolist()))

    def _convert(self, index: int, flip: bool, out: torch.Tensor | None = None) -> torch.Tensor:
        image = self.images[index]  # (C, H, W) uint8, C = 1 or 3
        if flip:
            image = image.flip(-1)
        return torch.addcmul(self._shift, image.float(), self._scale, out=out)  # (C, H, W) -> (3, H, W)
