"""Phase schedules: what each phase of fine-tuning trains and what it freezes.

| phase   | trains                                    | BatchNorm statistics |
|---------|-------------------------------------------|----------------------|
| `head`  | the classifier                            | frozen (eval)        |
| `gates` | the attention gates + head                | frozen (eval)        |
| `bn`    | normalisation-layer affine + head         | frozen (eval)        |
| `all`   | everything (the conventional baseline)    | updated (train)      |

`bn` trains the scale and shift of every BatchNorm, LayerNorm and GroupNorm (gated ones included, their
gates not): ConvNeXt's LayerNorms, a ResNet's BatchNorms. A model with none (VGG) is refused.
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


# Normalisation layers whose affine terms the `bn` phase trains (InstanceNorm shares BatchNorm's base).
_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm)


def _norm_affine(model: nn.Module) -> list[nn.Parameter]:
    """Scale and shift of every normalisation layer, in module order (a BatchNorm model: its BatchNorms')."""
    return [p for m in model.modules() if isinstance(m, _NORMS)
            for p in (getattr(m, "weight", None), getattr(m, "bias", None)) if isinstance(p, nn.Parameter)]


def check_phase(model: nn.Module, phase: str) -> None:
    """`ConfigError` unless `model` can train `phase` (a caller may check a whole schedule before any work)."""
    if phase not in PHASES:
        raise ConfigError(f"unknown phase {phase!r}; phases are {', '.join(PHASES)}")
    if phase == "gates" and not has_gates(model):
        raise ConfigError("phase 'gates' needs a gated model; insert gates or use head/bn/all")
    if phase == "bn" and not _norm_affine(model):
        raise ConfigError("phase 'bn' trains normalisation layers (BatchNorm, LayerNorm, GroupNorm), and this "
                          "model has none with affine terms; use head, gates or all")


def configure_phase(model: nn.Module, head: nn.Module, phase: str) -> list[nn.Parameter]:
    """Set `requires_grad` and train/eval modes for `phase`; return the parameters to optimise."""
    check_phase(model, phase)
    for p in model.parameters():
        p.requires_grad_(phase == "all")
    model.train(phase == "all")  # frozen phases also switch dropout off
    trainable: list[nn.Parameter] = []
    if phase == "gates":
        trainable += [m.gate for m in model.modules() if isinstance(m, ChannelGate)]
    elif phase == "bn":
        trainable += _norm_affine(model)
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
