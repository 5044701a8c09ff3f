"""`make_loader`: a DataLoader with the worker, pinning and seeding choices made once."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from torch.utils.data import DataLoader, Dataset, Sampler

_MAX_WORKERS = 8


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int = 0,
    device: str = "cpu",
    workers: int | None = None,
    sampler: Sampler[Any] | None = None,
    drop_last: bool = False,
) -> DataLoader:
    """A DataLoader over `dataset`; `workers=None` picks the count from the dataset kind.

    In-memory datasets (Fashion-MNIST, fake) get no worker processes: an item costs a few
    microseconds of tensor arithmetic, less than sending it from another process. Datasets that
    decode image files get min(8, CPU count) persistent workers. Memory is pinned only for CUDA.
    Shuffling and the workers' random augmentations follow a generator seeded with `seed`.

    >>> loader = make_loader(bundle.train, 64, shuffle=True, seed=0, device="cuda")
    """
    import torch
    from torch.utils.data import DataLoader

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    if sampler is not None and shuffle:
        raise ConfigError("pass either shuffle=True or a sampler, not both (the sampler decides the order)")
    if workers is None:
        workers = 0 if is_in_memory(dataset) else min(_MAX_WORKERS, os.cpu_count() or 1)
    if workers < 0:
        raise ConfigError(f"workers must be >= 0, got {workers}")
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        sampler=sampler,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=str(device).startswith("cuda"),
        drop_last=drop_last,
        generator=torch.Generator().manual_seed(seed),
    )


def is_in_memory(dataset: Dataset) -> bool:
    """True for datasets held as tensors in memory, looking through Subset and ConcatDataset."""
    from torch.utils.data import ConcatDataset, Subset

    if isinstance(dataset, Subset):
        return is_in_memory(dataset.dataset)
    if isinstance(dataset, ConcatDataset):
        return all(is_in_memory(d) for d in dataset.datasets)
    return bool(getattr(dataset, "in_memory", False))
