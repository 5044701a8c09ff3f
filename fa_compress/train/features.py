"""`head` phases on cached features: the backbone is frozen, so its features are computed once and
the classifier trains on them for several cheap passes instead of re-running the backbone."""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .config import TrainConfig
from .distributed import Context, all_gather_rows, rank_batch_size
from .memory_format import prepare, to_format
from .phases import configure_phase
from .progress import PhaseBar
from ..data import make_loader
from .sampler import ResumableSampler


@torch.no_grad()
def extract_features(model: nn.Module, head: nn.Module, dataset: Dataset, cfg: TrainConfig,
                     ctx: Context, bar: PhaseBar, label: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The inputs the head sees for every image: ((N, F), (N,)), identical on every rank.

    Each rank computes its shard; the shards are gathered, so all ranks then train the same head
    on the same features with the same seed and need no gradient exchange.
    """
    per_rank = rank_batch_size(cfg.batch_size, ctx)
    sampler = ResumableSampler(len(dataset), batch_size=per_rank, seed=cfg.seed, epoch=0,
                               shuffle=False, rank=ctx.rank, world=ctx.world)
    loader = make_loader(dataset, per_rank, shuffle=False, sampler=sampler, device=ctx.device.type)
    fmt = prepare(model, cfg.memory_format, ctx.device)
    captured: list[torch.Tensor] = []
    hook = head.register_forward_pre_hook(lambda _m, args: captured.append(args[0].detach().float()))
    labels: list[torch.Tensor] = []
    bar.start(label, total=sampler.batches_per_epoch())
    t0, seen = time.perf_counter(), 0
    try:
        for images, y in loader:
            model(to_format(images.to(ctx.device), fmt))  # (B, 3, H, W) in `fmt`
            labels.append(y)
            seen += y.numel()
            bar.update(loss=float("nan"), acc=float("nan"), images_per_s=seen / (time.perf_counter() - t0))
    finally:
        hook.remove()
    index = torch.tensor(sampler.indices(), device=ctx.device)
    feats = torch.cat([c.flatten(1) for c in captured])  # (N_rank, F)
    y = torch.cat(labels).to(ctx.device)
    n = len(dataset)
    return all_gather_rows(ctx, feats, index, n), all_gather_rows(ctx, y, index, n)


def head_feature_steps(images: int, cfg: TrainConfig) -> int:
    """Optimizer steps of one `head` phase on the cached features of `images` images without a floor:
    `cfg.head_feature_epochs` passes at `cfg.batch_size` (every rank trains on all features)."""
    return -(-images // cfg.batch_size) * cfg.head_feature_epochs


def train_head_on_features(model: nn.Module, head: nn.Module, dataset: Dataset, cfg: TrainConfig,
                           ctx: Context, bar: PhaseBar, index: int, cache: dict | None = None,
                           steps: int | None = None) -> tuple[float, float, float]:
    """One `head` phase: features once (or from `cache`), then `cfg.head_feature_epochs` passes, or
    exactly `steps` optimizer steps (passes continue the same seeded orders; one learning-rate cycle)."""
    configure_phase(model, head, "head")
    t0 = time.perf_counter()
    if cache is not None and "features" in cache:
        feats, labels = cache["features"]
    else:
        feats, labels = extract_features(model, head, dataset, cfg, ctx, bar, f"{index + 1}:features")
        if cache is not None:
            cache["features"] = (feats, labels)
    head.train()
    net = head  # every rank holds all features and trains the same head deterministically
    n = feats.shape[0]
    steps_per_pass = -(-n // cfg.batch_size)
    total = steps if steps is not None else head_feature_steps(n, cfg)
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr_head, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr_head, pct_start=0.15, total_steps=total)
    g = torch.Generator().manual_seed(cfg.seed * 7919 + index)
    passes = -(-total // steps_per_pass)
    bar.start(f"{index + 1}:head", total=passes)
    taken = 0
    for _ in range(passes):
        loss_sum = correct = seen = 0.0
        for idx in torch.randperm(n, generator=g).split(cfg.batch_size)[:total - taken]:
            logits = net(feats[idx.to(feats.device)])  # (B, classes)
            loss = F.cross_entropy(logits, labels[idx.to(labels.device)])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += float(loss.detach()) * idx.numel()
            correct += float((logits.argmax(1) == labels[idx.to(labels.device)]).sum())
            seen += idx.numel()
            taken += 1
        bar.update(loss=loss_sum / seen, acc=correct / seen, images_per_s=n / (time.perf_counter() - t0))
    head.eval()
    return loss_sum / seen, correct / seen, n / (time.perf_counter() - t0)
