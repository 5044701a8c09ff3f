"""Parameters and multiply-accumulates, counted by PyTorch's own FLOP counter.

`torch.utils.flop_counter.FlopCounterMode` counts at the aten level, so it sees every convolution,
including subclasses such as EfficientNet-Lite0's `Conv2dStaticSamePadding` that torch-pruning's
`count_ops_and_params` misses.
"""

from __future__ import annotations

import torch
from torch import nn


def count_params(model: nn.Module) -> int:
    """Number of parameters (gates included, if any)."""
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_macs(model: nn.Module, img_size: int, batch_size: int = 1) -> int:
    """Multiply-accumulates of one forward pass at `img_size` (FLOPs / 2), per batch of `batch_size`."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    counter = FlopCounterMode(display=False)
    try:
        with counter:
            model(torch.zeros(batch_size, 3, img_size, img_size, device=device))
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2
