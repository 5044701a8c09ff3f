"""Recovery after pruning: re-estimate BatchNorm statistics, then fine-tune the smaller model."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..train.config import FinetuneResult, TrainConfig
from ..train.distributed import Context
from ..train.loop import finetune
from ..train.progress import PhaseBar


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, dataset: Dataset, ctx: Context, *, images: int = 1024,
                          batch_size: int = 128) -> None:
    """Recompute every BatchNorm's running statistics as a plain average over `images` images.

    Pruning changes what each BatchNorm sees; EfficientNet-Lite0's momentum of 0.01 would take
    hundreds of steps to catch up, so the statistics are reset and averaged (momentum=None) instead.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.training) for m in bns]
    was_training = model.training
    model.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    g = torch.Generator().manual_seed(0)
    subset = torch.randperm(len(dataset), generator=g)[:images].tolist()
    loader = DataLoader(torch.utils.data.Subset(dataset, subset), batch_size=batch_size)
    for x, _ in loader:
        model(x.to(ctx.device))
    for m, (momentum, training) in zip(bns, saved):
        m.momentum = momentum
        m.train(training)
    model.train(was_training)


# One recovery epoch of Lite0 + Fashion-MNIST (6,000 images, 64 px) after keep 0.6 from 87.85%:
# backbone lr 3e-4 -> 80.9%, 1e-3 -> 85.15%, 2e-3 -> 84.05%, 3e-3 -> 86.3% (benchmarks/prune_recovery.py).
# A pruned network has lost features to relearn, not just to adjust: it wants more than lr_all.
DEFAULT_RECOVER_LR = 3e-3


def recover(model: nn.Module, head: nn.Module, train_ds: Dataset, test_loader: DataLoader | None,
            epochs: int, cfg: TrainConfig, ctx: Context, bar: PhaseBar, *,
            lr: float = DEFAULT_RECOVER_LR) -> FinetuneResult | None:
    """`epochs` of full fine-tuning (phase `all`, backbone at `lr`) of the pruned model; None when
    epochs is 0."""
    recalibrate_batchnorm(model, train_ds, ctx)
    if epochs <= 0:
        return None
    from dataclasses import replace

    # The pruned model's classifier is already fitted: tune it at lr_head_tuning from the first epoch.
    recovery_cfg = replace(cfg, schedule=("all",) * epochs, gate_l1=0.0, lr_head=cfg.lr_head_tuning, lr_all=lr)
    return finetune(model, head, train_ds, test_loader, recovery_cfg, ctx, bar)
