"""Evaluation that keeps per-image correctness, so two models on the same images can be compared
with a paired test (`fa_compress.accuracy.compare_paired`).

>>> ev = evaluate_detailed(model, make_loader(bundle.val, 128, shuffle=False), ctx)
>>> ev.accuracy.format()        # '87.00% [84.79, 88.88] (n=1000)'
>>> ev.correct.shape            # (1000,) bool, in the loader's order
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..accuracy import Accuracy
from .config import TrainConfig
from .distributed import Context


@dataclass(frozen=True)
class Evaluation:
    """Top-1 accuracy with its interval, and which images the model got right."""

    accuracy: Accuracy
    correct: torch.Tensor  # (N,) bool on the CPU: dataset order when distributed, loader order otherwise


@torch.inference_mode()
def evaluate_detailed(model: nn.Module, loader: DataLoader, ctx: Context,
                      cfg: TrainConfig | None = None) -> Evaluation:
    """Score `model` on every image of `loader`; under torchrun the ranks' shards are gathered.

    A distributed loader must use a sampler with `indices()` (e.g. `ResumableSampler(pad=False)`),
    so each rank's rows land at their dataset positions.
    """
    from .loop import _autocast, _to_device  # the same device and memory-format handling as training
    from .memory_format import prepare

    cfg = cfg or TrainConfig()
    cfg = replace(cfg, memory_format=prepare(model, cfg.memory_format, ctx.device).chosen)  # batches follow
    was_training = model.training
    model.eval()
    rows: list[torch.Tensor] = []
    try:
        for images, labels in loader:
            with _autocast(ctx, cfg):
                logits = model(_to_device(images, ctx, cfg))  # (B, classes)
            rows.append(logits.argmax(1).cpu() == labels)  # (B,) bool
    finally:
        model.train(was_training)
    correct = torch.cat(rows) if rows else torch.zeros(0, dtype=torch.bool)  # (N_rank,)
    if ctx.distributed:
        correct = _gather(ctx, correct, torch.tensor(loader.sampler.indices()), len(loader.dataset))  # (N,)
    return Evaluation(Accuracy.of(int(correct.sum()), correct.numel()), correct)


def _gather(ctx: Context, correct: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    """Every rank's (N_rank,) correctness at its dataset positions: (N,) bool on every rank.

    Shards differ in length by up to one image and gloo gathers no bool, so each rank sends a
    uint8 vector padded to the longest shard, with index -1 on the padding.
    """
    import torch.distributed as dist

    size = -(-n // ctx.world)
    pad = size - correct.numel()
    values = torch.cat([correct.to(torch.uint8), torch.zeros(pad, dtype=torch.uint8)]).to(ctx.device)  # (S,)
    where = torch.cat([index.to(torch.long), torch.full((pad,), -1, dtype=torch.long)]).to(ctx.device)  # (S,)
    all_values = [torch.empty_like(values) for _ in range(ctx.world)]
    all_where = [torch.empty_like(where) for _ in range(ctx.world)]
    dist.all_gather(all_values, values)
    dist.all_gather(all_where, where)
    out = torch.zeros(n, dtype=torch.bool)
    for v, i in zip(all_values, all_where):
        real = i >= 0
        out[i[real].cpu()] = v[real].cpu().bool()
    return out
