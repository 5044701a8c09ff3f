"""Recovery after pruning: fine-tune the smaller model for a number of optimizer steps of one phase."""

from __future__ import annotations

import time
from dataclasses import replace

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..errors import ConfigError, unknown_name
from ..gates import fold_gates, insert_gates
from ..train.config import FinetuneResult, PhaseResult, TrainConfig
from ..train.distributed import Context
from ..train.evaluate import evaluate_detailed
from ..train.loop import LossFn, run_image_phase
from ..train.memory_format import prepare, to_format
from ..train.progress import PhaseBar
from .steps import check_steps, epoch_steps


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, dataset: Dataset, ctx: Context, *, images: int = 1024,
                          batch_size: int = 128, memory_format: str = "auto") -> None:
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
    fmt = prepare(model, memory_format, ctx.device)
    for x, _ in loader:
        model(to_format(x.to(ctx.device), fmt))  # (B, 3, H, W) in `fmt`
    for m, (momentum, training) in zip(bns, saved):
        m.momentum = momentum
        m.train(training)
    model.train(was_training)


# `gates` recovers a cut of near-noise channels best, at batch 8 (an epoch of a small task is only a few steps
# at 32); `all` is for cuts that leave features to relearn. docs/decisions/recovery.md has the measurements.
RECOVER_PHASES = ("all", "gates", "bn")
DEFAULT_RECOVER_PHASE = "gates"
DEFAULT_RECOVER_LR = 3e-3  # the backbone's, in `all`: a pruned network has features to relearn
DEFAULT_RECOVER_BATCH = 8


def recover(model: nn.Module, head: nn.Module, train_ds: Dataset, val_loader: DataLoader | None,
            epochs: int | None, cfg: TrainConfig, ctx: Context, bar: PhaseBar, *, phase: str = DEFAULT_RECOVER_PHASE,
            lr: float = DEFAULT_RECOVER_LR, batch_size: int | None = DEFAULT_RECOVER_BATCH,
            loss_fn: LossFn | None = None, steps: int | None = None) -> FinetuneResult | None:
    """Exactly `steps` optimizer steps of `phase` on the pruned (gate-free) model, in place, in batches
    of `batch_size` images (None: `cfg.batch_size`, the fine-tuning's); or, with `steps` None, `epochs`
    whole epochs' worth of steps. None when epochs is 0. `val_loader`, when given, is scored after.

    `all`: BatchNorm statistics re-estimated, then everything trains (backbone at `lr`).
    `gates`: fresh gates (at 1) train with the classifier, BatchNorm frozen; then they fold away.
    `bn`: the affine terms of the normalisation layers (BatchNorm, LayerNorm, GroupNorm) and the classifier train.
    `loss_fn`: the loss in place of the cross-entropy (a `train.distill.Distillation` from the dense model).
    """
    if phase not in RECOVER_PHASES:
        raise unknown_name("recovery phase", phase, RECOVER_PHASES)
    check_steps("recover_steps", steps)
    if (steps is None) == (epochs is None):
        raise ConfigError(f"recover takes epochs or steps, one of them (got epochs {epochs}, steps {steps})")
    batch_size = batch_size or cfg.batch_size
    steps = steps or max(epochs, 0) * epoch_steps(len(train_ds), batch_size, ctx)
    if steps == 0:
        return None
    if phase == "all":
        recalibrate_batchnorm(model, train_ds, ctx, memory_format=cfg.memory_format)
    if phase == "gates":
        insert_gates(model)
    # The pruned model's classifier is already fitted: tune it at lr_head_tuning from the first step.
    recovery_cfg = replace(cfg, schedule=(phase,), gate_l1=0.0, lr_head=cfg.lr_head_tuning, lr_all=lr,
                           batch_size=batch_size)
    t0 = time.perf_counter()
    try:
        loss, acc, rate = run_image_phase(model, head, phase, 0, train_ds, recovery_cfg, ctx, bar, loss_fn=loss_fn,
                                          steps=steps, label="recover")
    finally:
        fold_gates(model)
    seconds = time.perf_counter() - t0
    val = evaluate_detailed(model, val_loader, ctx, recovery_cfg).accuracy if val_loader is not None else None
    return FinetuneResult((PhaseResult(0, phase, loss, acc, None, seconds, rate, None, val),), 0, None, seconds, val)
