"""Phase schedules: what each phase of fine-tuning trains and what it freezes.

| phase   | trains                         | BatchNorm statistics |
|---------|--------------------------------|----------------------|
| `head`  | the classifier                 | frozen (eval)        |
| `gates` | the attention gates + head     | frozen (eval)        |
| `bn`    | BatchNorm affine + head        | frozen (eval)        |
| `all`   | everything (the conventional baseline) | updated (train) |
"""

from __future__ import annotations

from torch import nn

from ..errors import ConfigError
from ..gates import ChannelGate, has_gates

PHASES = ("head", "gates", "bn", "all")


def parse_schedule(text: str) -> tuple[str, ...]:
    """`"head,gates,gates"` -> ("head", "gates", "gates"); unknown phases are a ConfigError."""
    phases = tuple(p.strip() for p in text.split(",") if p.strip())
    if not phases:
        raise ConfigError(f"schedule {text!r} is empty; give phases from {', '.join(PHASES)}, e.g. head,gates,gates")
    bad = [p for p in phases if p not in PHASES]
    if bad:
        raise ConfigError(f"unknown phase {bad[0]!r} in schedule; phases are {', '.join(PHASES)}")
    return phases


def _bn_modules(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def configure_phase(model: nn.Module, head: nn.Module, phase: str) -> list[nn.Parameter]:
    """Set `requires_grad` and train/eval modes for `phase`; return the parameters to optimise."""
    if phase not in PHASES:
        raise ConfigError(f"unknown phase {phase!r}; phases are {', '.join(PHASES)}")
    if phase == "gates" and not has_gates(model):
        raise ConfigError("phase 'gates' needs a gated model; insert gates or use head/bn/all")
    for p in model.parameters():
        p.requires_grad_(phase == "all")
    model.train(phase == "all")  # frozen phases also switch dropout off
    trainable: list[nn.Parameter] = []
    if phase == "gates":
        trainable += [m.gate for m in model.modules() if isinstance(m, ChannelGate)]
    elif phase == "bn":
        for bn in _bn_modules(model):
            trainable += [p for p in (bn.weight, bn.bias) if p is not None]
    elif phase == "all":
        trainable = [p for n, p in model.named_parameters() if not n.endswith(".gate")]
        trainable += [m.gate for m in model.modules() if isinstance(m, ChannelGate)]
    head_params = list(head.parameters())
    ids = {id(p) for p in trainable}
    trainable += [p for p in head_params if id(p) not in ids]
    for p in trainable:
        p.requires_grad_(True)
    return trainable


def phase_trains_backbone(phase: str) -> bool:
    """True when a phase changes what the backbone computes (so cached features go stale)."""
    return phase != "head"
