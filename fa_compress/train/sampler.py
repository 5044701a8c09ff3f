"""A resumable, shardable sampler: the order depends only on (seed, epoch), so a run killed at
step k of an epoch restarts at exactly the same batch, on one process or on many."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

from ..errors import ConfigError


class ResumableSampler(Sampler[int]):
    """Seeded permutation of `n` indices for one epoch, sharded over `world` ranks, from `start_batch`.

    Each rank gets every `world`-th index of the permutation (padded by wrapping so all ranks see
    the same number of batches, as DistributedSampler does).
    """

    def __init__(self, n: int, *, batch_size: int, seed: int, epoch: int, shuffle: bool = True,
                 rank: int = 0, world: int = 1, start_batch: int = 0, pad: bool = True) -> None:
        self.n, self.batch_size, self.seed, self.epoch = n, batch_size, seed, epoch
        self.shuffle, self.rank, self.world, self.start_batch = shuffle, rank, world, start_batch
        self.pad = pad  # evaluation shards without padding, so no image is counted twice
        self.per_rank = -(-n // world) if pad else len(range(rank, n, world))

    def _indices(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        if not self.pad:
            return order[self.rank::self.world]
        total = self.per_rank * self.world
        order += order[: total - len(order)]  # pad so every rank has per_rank indices
        return order[self.rank:total:self.world]

    def indices(self) -> list[int]:
        """This rank's dataset indices for the whole epoch, in order (start_batch ignored)."""
        return self._indices()

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices()[self.start_batch * self.batch_size:])

    def __len__(self) -> int:
        return max(0, self.per_rank - self.start_batch * self.batch_size)

    def batches_per_epoch(self) -> int:
        return -(-self.per_rank // self.batch_size)


class StepSampler(Sampler[int]):
    """This rank's indices for exactly `steps` batches of `batch_size`, taken from consecutive epochs of
    `ResumableSampler` (`epoch`, `epoch + 1`, ...): a budget in optimizer steps can end inside an epoch
    or run past one. Batches run across epoch boundaries, so every batch is full. `start_batch` skips
    the batches a resumed run already took."""

    def __init__(self, n: int, *, batch_size: int, steps: int, seed: int, epoch: int,
                 rank: int = 0, world: int = 1, start_batch: int = 0) -> None:
        if n < 1:
            raise ConfigError("the training data has no images to take steps on")
        self.n, self.batch_size, self.steps, self.seed, self.epoch = n, batch_size, steps, seed, epoch
        self.rank, self.world, self.start_batch = rank, world, start_batch

    def __iter__(self) -> Iterator[int]:
        wanted, epoch = self.steps * self.batch_size, self.epoch
        skip = self.start_batch * self.batch_size  # indices a resumed run already trained on
        while wanted > 0:
            chunk = ResumableSampler(self.n, batch_size=self.batch_size, seed=self.seed, epoch=epoch,
                                     rank=self.rank, world=self.world).indices()[:wanted]
            yield from chunk[skip:]
            skip = max(0, skip - len(chunk))
            wanted, epoch = wanted - len(chunk), epoch + 1

    def __len__(self) -> int:
        return max(0, self.steps - self.start_batch) * self.batch_size
