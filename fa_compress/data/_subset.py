"""Seeded, class-balanced subsets for `limit_train` / `limit_test`."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..errors import ConfigError


def balanced_subset(labels: Sequence[int] | torch.Tensor, limit: int | None, seed: int) -> torch.Tensor | None:
    """Indices of `limit` items drawn at random (seeded) so classes take turns; None = keep all.

    Classes are interleaved: every class gives its first random pick before any gives its second,
    so 100 items out of 10 balanced classes are exactly 10 per class. Indices come back sorted.
    """
    if limit is None:
        return None
    check_limit(limit)
    labels = torch.as_tensor(labels, dtype=torch.long)  # (N,)
    if limit >= labels.numel():
        return None
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(labels.numel(), generator=generator)  # (N,) random order
    shuffled = labels[order]
    # rank of each item within its class, in the random order: 0 for a class's first pick, ...
    one_hot = torch.nn.functional.one_hot(shuffled - shuffled.min())  # (N, K)
    rank = (one_hot.cumsum(0) * one_hot).sum(1) - 1  # (N,)
    by_rank = torch.sort(rank, stable=True).indices  # rank 0 of all classes first, then rank 1, ...
    return torch.sort(order[by_rank[:limit]]).values


def check_limit(limit: int | None) -> None:
    """`ConfigError` unless `limit` is None or a positive integer."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"dataset limit must be a positive integer or None, got {limit!r}")
