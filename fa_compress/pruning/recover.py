"""Recovery after pruning: fine-tune the smaller model for a few epochs of one phase."""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..errors import unknown_name
from ..gates import fold_gates, insert_gates
from ..train.config import FinetuneResult, TrainConfig
from ..train.distributed import Context
from ..train.loop import finetune
from ..train.memory_format import prepare, to_format
from ..train.progress import PhaseBar


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


# One recovery epoch over Lite0 + Fashion-MNIST (6,000 images, 64 px; dense fine-tuned 87.85%),
# benchmarks/results/prune_recovery_keep{0.6,0.9}.threads1.md, one run each on 2,000 test images
# (about +-1 point; the same runs repeated at 2 threads moved by up to 2.2 points, so 1e-3 vs 3e-3
# is not settled; 3e-4, the fine-tuning rate, is clearly worse):
#   keep 0.6 (50.15% right after): `all` at lr 3e-4 81.50%, 1e-3 85.35%, 3e-3 85.70%; 3e-3 distilled
#     from the dense model 85.30%; `gates` 84.95%; fading the gates out during the epoch 84.85%.
#   keep 0.9 (84.30% right after): `all` at 1e-3 83.70%, 3e-3 86.60%; `gates` 87.30%.
# Re-estimating BatchNorm statistics first hurts `gates` (82.95% / 82.60%): a gate-tuned model
# learned on ImageNet statistics, which `all` moves anyway. `all` recovers more where pruning cut
# deep, `gates` keeps more where it cut lightly.
# Then, on a cut that removes near-zero-score channels (gate Taylor scores, pruned to 0.5 of dense MACs;
# benchmarks/results/calib_tops4_rec.json: tops4, 1,080 training images, 48 px, 4,000 test images,
# dense 75.88%), one epoch of each recovery from 61.55% right after the cut: `gates` 73.88%, `bn`
# 72.95%, `all` at 5e-4 47.63%, at 3e-3 39.52%; re-estimating BatchNorm statistics alone 30.78%.
# The re-estimation is what breaks a model whose gates were tuned on ImageNet statistics; `gates`
# was also best after torch-pruning's taylor cut (24.98% -> 60.95%, `all` 5e-4: 51.38%). So `gates`
# is the default; `all` stays for cuts that leave features to relearn.
# Then the batch, at one epoch (benchmarks/results/calib_recbatch.{md,json}: gate-Taylor and torch-pruning
# taylor cuts at 0.5 of dense MACs, `gates` recovery, 3 seeds on the small tasks, 1 on the default): an
# epoch of a small task is only a few steps at batch 32 (shoes3: 13), too few for the fresh gates to
# move. Batch 8 made the same epoch (same images, same compute, about the same time) recover tops4
# 71.14% -> 73.83% (taylor cut 57.27% -> 64.98%) and shoes3 87.57% -> 91.54% (taylor 36.28% -> 44.62%),
# best on the validation split too; on the default task gate 87.73% -> 87.51% (noise at n=10,000),
# taylor 84.21% -> 85.87%. Batch 16 and 4 fell between.
RECOVER_PHASES = ("all", "gates", "bn")
DEFAULT_RECOVER_PHASE = "gates"
DEFAULT_RECOVER_LR = 3e-3  # the backbone's, in `all`: a pruned network has features to relearn
DEFAULT_RECOVER_BATCH = 8


def recover(model: nn.Module, head: nn.Module, train_ds: Dataset, test_loader: DataLoader | None,
            epochs: int, cfg: TrainConfig, ctx: Context, bar: PhaseBar, *, phase: str = DEFAULT_RECOVER_PHASE,
            lr: float = DEFAULT_RECOVER_LR, batch_size: int | None = DEFAULT_RECOVER_BATCH) -> FinetuneResult | None:
    """`epochs` of `phase` on the pruned (gate-free) model, in place, in batches of `batch_size`
    images (None: `cfg.batch_size`, the fine-tuning's); None when epochs is 0.

    `all`: BatchNorm statistics re-estimated, then everything trains (backbone at `lr`).
    `gates`: fresh gates (at 1) train with the classifier, BatchNorm frozen; then they fold away.
    `bn`: BatchNorm affine terms and the classifier train.
    """
    if phase not in RECOVER_PHASES:
        raise unknown_name("recovery phase", phase, RECOVER_PHASES)
    if epochs <= 0:
        return None
    if phase == "all":
        recalibrate_batchnorm(model, train_ds, ctx, memory_format=cfg.memory_format)
    if phase == "gates":
        insert_gates(model)
    # The pruned model's classifier is already fitted: tune it at lr_head_tuning from the first epoch.
    recovery_cfg = replace(cfg, schedule=(phase,) * epochs, gate_l1=0.0, lr_head=cfg.lr_head_tuning, lr_all=lr,
                           batch_size=batch_size or cfg.batch_size)
    try:
        return finetune(model, head, train_ds, test_loader, recovery_cfg, ctx, bar)
    finally:
        fold_gates(model)
