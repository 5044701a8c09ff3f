"""First-order Taylor scores of the gates: how much the loss would change if a channel's gate went to 0.

For a gate g on channel c, removing c is setting g = 0; to first order the loss changes by
`g * dL/dg`. Summing `|g * dL/dg|` over batches of training images (Molchanov et al., CVPR 2019,
scored exactly such gates after BatchNorm) gives a score in loss units that compares across layers,
which the gate *values* do not: a gate of 0.3 in a layer whose output the network barely uses
and a gate of 0.3 on a channel the classifier depends on look alike by value.

The images are a fixed, seeded sample of the training split, scored with the model in eval mode
(the BatchNorm statistics the deployed model will use), so the ranking is the same for the same
model and seed, whatever random augmentation the dataset applies (its RNG is forked and seeded).

>>> images = accumulate_gate_taylor(model, bundle.train, images=1024, seed=0)
>>> next(iter_gates(model))[1].taylor_score.shape        # (C,) float64, one per channel
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from ..errors import ConfigError
from ..gates import iter_gates

DEFAULT_SCORE_IMAGES = 1024  # 32 batches of 32; see benchmarks/prune_pareto.py for the stability check


def score_subset(dataset: Dataset, images: int, seed: int) -> Subset:
    """A fixed, seeded sample of `images` items of `dataset` (all of it when smaller)."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(dataset), generator=g)[: min(images, len(dataset))]
    return Subset(dataset, order.tolist())


def accumulate_gate_taylor(model: nn.Module, dataset: Dataset, *, images: int = DEFAULT_SCORE_IMAGES,
                           batch_size: int = 32, seed: int = 0, device: torch.device | str | None = None,
                           prepare=None) -> int:
    """Set `taylor_score` (float64, per channel) on every gate: sum over batches of |g * dL/dg|.

    `prepare(x)` may change a batch before the forward pass (e.g. its memory format). Returns the
    number of images scored. The model's parameter gradients are left zeroed.
    """
    gates = list(iter_gates(model))
    if not gates:
        raise ConfigError("gate scores need a gated model (one fine-tuned by `facompress finetune`)")
    if images < 1:
        raise ConfigError(f"the number of scoring images must be >= 1 (got {images})")
    device = device or next(model.parameters()).device
    frozen = [m.gate for _, m in gates if not m.gate.requires_grad]
    for _, m in gates:
        m.taylor_score = torch.zeros(m.num_features, dtype=torch.float64)
        m.gate.requires_grad_(True)  # only the gates' gradients are needed; the rest stays as it was
    was_training = model.training
    model.eval()
    seen = 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        loader = DataLoader(score_subset(dataset, images, seed), batch_size=batch_size, shuffle=False)
        for x, y in loader:
            x = x.to(device)
            x = prepare(x) if prepare is not None else x
            model.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y.to(device)).backward()  # (B, classes) -> scalar
            for _, m in gates:
                if m.gate.grad is not None:
                    m.taylor_score += (m.gate.detach() * m.gate.grad).abs().double().cpu()  # (C,)
            seen += int(y.numel())
    model.zero_grad(set_to_none=True)
    for gate in frozen:
        gate.requires_grad_(False)
    model.train(was_training)
    return seen


def has_taylor_scores(model: nn.Module) -> bool:
    """True when every gate carries a `taylor_score` of the right length."""
    gates = list(iter_gates(model))
    return bool(gates) and all(getattr(m, "taylor_score", None) is not None
                               and m.taylor_score.numel() == m.num_features for _, m in gates)
