"""Structural pruning with torch-pruning's dependency graph, ranked by any criterion."""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch_pruning as tp
from torch import nn

from ..errors import ConfigError, NotFoundError, unknown_name
from ..gates import fold_gates, has_gates
from .importance import GATE_PRUNERS, IMPORTANCES, NEEDS_GATES, NEEDS_GRADIENTS, REDUCTIONS, make_importance

SCOPES = ("global", "layer")


@dataclass(frozen=True)
class PruneSettings:
    """How to prune. `keep` is the fraction of prunable channels that stays."""

    keep: float = 0.6
    importance: str = "gate"
    scope: str = "global"
    round_to: int = 8            # channel counts in multiples of 8 suit tensor cores and SIMD widths
    max_layer_prune: float = 0.9  # no layer loses more than 90% of its channels
    ignore: tuple[str, ...] = ()
    gate_reduction: str = "mean"
    gate_score: str = "gate"

    def __post_init__(self) -> None:
        if not 0 < self.keep <= 1:
            raise ConfigError(f"--keep must be in (0, 1] (got {self.keep}); e.g. --keep 0.6 keeps 60% of channels")
        if self.importance not in IMPORTANCES:
            raise unknown_name("importance", self.importance, IMPORTANCES)
        if self.gate_reduction not in REDUCTIONS:
            raise unknown_name("gate reduction", self.gate_reduction, REDUCTIONS)
        if self.scope not in SCOPES:
            raise ConfigError(f"--scope must be one of {', '.join(SCOPES)} (got {self.scope!r})")
        if self.round_to < 1:
            raise ConfigError(f"--round-to must be >= 1 (got {self.round_to})")
        if not 0 < self.max_layer_prune < 1:
            raise ConfigError(f"max_layer_prune must be in (0, 1) (got {self.max_layer_prune})")


def channel_counts(model: nn.Module) -> dict[str, int]:
    """Output channels of every conv (subclasses included), by module name."""
    return {name: m.out_channels for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}


def _resolve_ignored(model: nn.Module, names: Sequence[str], head: nn.Module) -> list[nn.Module]:
    modules = dict(model.named_modules())
    ignored = [head]
    for name in names:
        if name not in modules:
            close = difflib.get_close_matches(name, [n for n in modules if n], n=4, cutoff=0.5)
            hint = f"; close matches: {', '.join(close)}" if close else ""
            raise NotFoundError(f"--ignore {name!r}: no such layer in the model{hint}")
        ignored.append(modules[name])
    return ignored


def check_fits(model: nn.Module, head: nn.Module, settings: PruneSettings) -> None:
    """Raise for settings this model cannot take (a gate criterion without gates, an `--ignore` name it
    lacks), so callers can fail before any work is done."""
    if settings.importance in NEEDS_GATES and not has_gates(model):
        without = ", ".join(i for i in IMPORTANCES if i not in NEEDS_GATES)
        raise ConfigError(f"--importance {settings.importance} needs a gated model, and this one has no gates; "
                          f"criteria that work without gates: {without}")
    _resolve_ignored(model, settings.ignore, head)


def prune_model(model: nn.Module, head: nn.Module, settings: PruneSettings, example: torch.Tensor,
                gradient_fn: Callable[[nn.Module], None] | None = None) -> nn.Module:
    """Remove the lowest-ranked channels of `model` in place and fold its gates; return it.

    `gradient_fn(model)` must run forward+backward on training data when the criterion needs
    gradients (`taylor`). Raises `ConfigError` when the keep ratio would empty a layer.
    """
    check_fits(model, head, settings)
    if settings.importance != "gate" and has_gates(model):
        fold_gates(model)  # exact; torch-pruning's own criteria then see plain BatchNorms
    ignored = _resolve_ignored(model, settings.ignore, head)  # after folding: it replaces the BatchNorms
    importance = make_importance(settings.importance, reduction=settings.gate_reduction, score=settings.gate_score)
    pruner = tp.pruner.MetaPruner(
        model, example, importance=importance, pruning_ratio=1 - settings.keep,
        global_pruning=settings.scope == "global", max_pruning_ratio=settings.max_layer_prune,
        round_to=settings.round_to if settings.round_to > 1 else None, ignored_layers=ignored,
        customized_pruners=GATE_PRUNERS if settings.importance == "gate" else None)
    if settings.importance in NEEDS_GRADIENTS:
        if gradient_fn is None:
            raise ConfigError(f"--importance {settings.importance} needs gradients from training data")
        model.zero_grad()
        gradient_fn(model)
    if settings.keep < 1:
        pruner.step()
    fold_gates(model)
    _check_runs(model, example)
    return model


def _check_runs(model: nn.Module, example: torch.Tensor) -> None:
    empty = [n for n, c in channel_counts(model).items() if c < 1]
    if empty:
        raise ConfigError(f"the keep ratio leaves layer {empty[0]} with no channel; raise --keep")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(example)
    except RuntimeError as exc:  # a pruned model that does not run is our bug, not the user's
        from ..errors import InternalError

        raise InternalError(f"the pruned model does not run: {exc}") from exc
    finally:
        model.train(was_training)


def taylor_gradients(dataset, device: torch.device | str = "cpu", batches: int = 8,
                     batch_size: int = 32) -> Callable[[nn.Module], None]:
    """A `gradient_fn` for `prune_model`: forward + backward of the cross-entropy over the first
    `batches` batches of `dataset` (what the `taylor` criterion scores from)."""
    from torch.utils.data import DataLoader

    def run(model: nn.Module) -> None:
        model.eval()
        for i, (x, y) in enumerate(DataLoader(dataset, batch_size=batch_size, shuffle=False)):
            if i >= batches:
                break
            torch.nn.functional.cross_entropy(model(x.to(device)), y.to(device)).backward()

    return run


def timed_prune(model: nn.Module, head: nn.Module, settings: PruneSettings, example: torch.Tensor,
                gradient_fn: Callable[[nn.Module], None] | None = None) -> tuple[nn.Module, float]:
    """`prune_model` plus its wall time in seconds."""
    t0 = time.perf_counter()
    model = prune_model(model, head, settings, example, gradient_fn)
    return model, time.perf_counter() - t0
