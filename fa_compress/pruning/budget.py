"""Pruning to a compute budget: a fraction of the dense model's MACs or parameters, a channel keep
ratio, or `auto` (cut exactly the channels whose gates the fine-tuning drove to noise).

torch-pruning takes a channel ratio, and the same ratio buys very different compute from one
criterion to the next (one that removes cheap channels keeps more MACs), so criteria can only be
compared at an equal budget. `prune_to_budget` finds, by bisection on the keep ratio, the largest
keep whose pruned model stays within the budget, scoring the channels once (gradients and gate
scores are computed on the dense model and reused by every trial).

>>> pruned, result = prune_to_budget(model, head, PruneSettings(), example, Budget(target_macs=0.5),
...                                  score_fn=gate_scorer(train_set))
>>> result.macs_fraction          # <= 0.5, within result.tolerance of it
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from ..errors import ConfigError
from ..gates import fold_gates, has_gates, iter_gates
from ..models.complexity import count_macs, count_params
from .importance import NEEDS_GRADIENTS
from ..gates.graph import traceable
from .pruner import PruneSettings, needs_gate_scores, prune_model

NOISE_GATE = 0.1  # the ranking's "noise" threshold (`facompress gates` uses the same)
MODES = ("keep", "macs", "params", "auto")


@dataclass(frozen=True)
class Budget:
    """What to prune to; exactly one of keep, target_macs, target_params, auto (default: keep 0.6)."""

    keep: float | None = None
    target_macs: float | None = None    # fraction of the dense model's MACs, in (0, 1)
    target_params: float | None = None  # fraction of the dense model's parameters, in (0, 1)
    auto: bool = False                  # keep the channels whose gate is at least `gate_threshold`
    gate_threshold: float = NOISE_GATE
    tolerance: float = 0.01             # a target is met within this fraction of the dense model
    max_steps: int = 14

    def __post_init__(self) -> None:
        given = [n for n, v in (("keep", self.keep), ("target_macs", self.target_macs),
                                ("target_params", self.target_params)) if v is not None]
        given += ["keep auto"] if self.auto else []
        if len(given) > 1:
            raise ConfigError(f"give one budget, not {' and '.join(f'`{g}`' for g in given)}")
        for name, value in (("target_macs", self.target_macs), ("target_params", self.target_params)):
            if value is not None and not 0 < value < 1:
                raise ConfigError(f"{name} must be a fraction of the dense model in (0, 1) (got {value})")
        if self.keep is not None and not 0 < self.keep <= 1:
            raise ConfigError(f"keep must be in (0, 1] (got {self.keep}); e.g. keep 0.6 keeps 60% of channels")
        if not 0 < self.gate_threshold < 1:
            raise ConfigError(f"gate_threshold must be in (0, 1) (got {self.gate_threshold})")
        if not 0 < self.tolerance < 0.5:
            raise ConfigError(f"the budget tolerance must be in (0, 0.5) (got {self.tolerance})")

    @property
    def mode(self) -> str:
        """keep, macs, params or auto."""
        if self.auto:
            return "auto"
        return "macs" if self.target_macs is not None else "params" if self.target_params is not None else "keep"

    def to_dict(self) -> dict:
        return {**asdict(self), "mode": self.mode}


@dataclass(frozen=True)
class BudgetStep:
    """One trial of the search: a keep ratio and what it reached (fractions of dense)."""

    keep: float
    macs_fraction: float | None   # None: this keep ratio emptied a layer
    params_fraction: float | None


@dataclass(frozen=True)
class BudgetResult:
    """The keep ratio pruned with and what it reached, with the search's steps."""

    mode: str
    keep: float
    target: float | None
    macs_before: int
    macs_after: int
    params_before: int
    params_after: int
    tolerance: float
    steps: tuple[BudgetStep, ...]

    @property
    def macs_fraction(self) -> float:
        return self.macs_after / self.macs_before

    @property
    def params_fraction(self) -> float:
        return self.params_after / self.params_before

    def to_dict(self) -> dict:
        return {**asdict(self), "macs_fraction": self.macs_fraction, "params_fraction": self.params_fraction}


def parse_budget(keep: str | float | None = None, target_macs: float | None = None,
                 target_params: float | None = None, target_latency_ms: float | None = None,
                 gate_threshold: float = NOISE_GATE, target_speedup: float | None = None) -> Budget:
    """The budget the command line asked for: `--keep F|auto`, `--target-macs`, `--target-params`
    (a latency or speed-up target is searched elsewhere, but counts as a budget here: one at a time)."""
    auto = isinstance(keep, str) and keep.strip().lower() == "auto"
    value = None
    if keep is not None and not auto:
        try:
            value = float(keep)
        except ValueError:
            raise ConfigError(f"keep takes a fraction in (0, 1] or `auto` (got {keep!r})") from None
    given = [n for n, v in (("keep", keep), ("target_macs", target_macs), ("target_params", target_params),
                            ("target_latency_ms", target_latency_ms), ("target_speedup", target_speedup))
             if v is not None]
    if len(given) > 1:
        raise ConfigError(f"give one budget, not {' and '.join(f'`{g}`' for g in given)}")
    return Budget(keep=value, target_macs=target_macs, target_params=target_params, auto=auto,
                  gate_threshold=gate_threshold)


def module_name(model: nn.Module, module: nn.Module) -> str:
    """The dotted name of `module` inside `model` ("" for the model itself)."""
    for name, m in model.named_modules():
        if m is module:
            return name
    raise ConfigError("the head given is not a module of the model")


def _sizes(model: nn.Module, img_size: int) -> tuple[int, int]:
    return count_macs(model, img_size), count_params(model)


def scored_base(model: nn.Module, settings: PruneSettings, gradient_fn: Callable | None,
                score_fn: Callable | None) -> nn.Module:
    """A copy of `model` ready for repeated pruning: folded for torch-pruning's criteria, with the
    gradients or gate scores its criterion needs computed once."""
    base = copy.deepcopy(model)
    if settings.importance != "gate" and has_gates(base):
        fold_gates(base)
    if settings.importance in NEEDS_GRADIENTS:
        if gradient_fn is None:
            raise ConfigError(f"importance {settings.importance} needs gradients from training data")
        base.zero_grad()
        with traceable(base):  # frozen layers would get no gradient, and torch-pruning's taylor fails
            gradient_fn(base)
    if needs_gate_scores(settings):
        if score_fn is None:
            raise ConfigError("the gate score `taylor` needs training images to score the gates from")
        score_fn(base)
    return base


def auto_keep(model: nn.Module, threshold: float = NOISE_GATE) -> float:
    """The fraction of gated channels whose |gate| is at least `threshold` (what `--keep auto` keeps)."""
    found = [m.gate.detach().abs().flatten() for _, m in iter_gates(model)]
    if not found:
        raise ConfigError("keep auto reads the gates, and this model has none; give keep F or target_macs F")
    gates = torch.cat(found)  # (all gated channels,)
    return max(float((gates >= threshold).float().mean()), 1e-3)


class _Trials:
    """Prune copies of a scored base at given keep ratios, remembering each result."""

    def __init__(self, base: nn.Module, head_name: str, settings: PruneSettings, example: torch.Tensor,
                 dense: tuple[int, int]) -> None:
        self.base, self.head_name, self.settings, self.example = base, head_name, settings, example
        self.dense, self.steps = dense, []
        self.models: dict[float, tuple[nn.Module, int, int]] = {}

    def __call__(self, keep: float) -> tuple[nn.Module, int, int] | None:
        keep = round(keep, 6)
        if keep in self.models:
            return self.models[keep]
        model = copy.deepcopy(self.base)
        for src, dst in zip(self.base.parameters(), model.parameters()):  # deepcopy drops .grad
            if src.grad is not None:
                dst.grad = src.grad.clone()
        head = model.get_submodule(self.head_name) if self.head_name else model
        try:
            pruned = prune_model(model, head, replace(self.settings, keep=keep), self.example)
        except ConfigError:
            self.steps.append(BudgetStep(keep, None, None))
            return None
        macs, params = _sizes(pruned, self.example.shape[-1])
        self.steps.append(BudgetStep(keep, macs / self.dense[0], params / self.dense[1]))
        self.models = {keep: (pruned, macs, params)}  # only the latest stays cached (callers hold the best)
        return pruned, macs, params


def prune_to_budget(model: nn.Module, head: nn.Module, settings: PruneSettings, example: torch.Tensor,
                    budget: Budget, gradient_fn: Callable | None = None,
                    score_fn: Callable | None = None) -> tuple[nn.Module, BudgetResult]:
    """Prune a copy of `model` to `budget`; returns the pruned (folded) model and what it reached.

    The dense model is left as it was. Raises `ConfigError` when the budget cannot be reached,
    naming the smallest fraction that can.
    """
    img = example.shape[-1]
    dense_model = fold_gates(copy.deepcopy(model)) if has_gates(model) else model
    dense = _sizes(dense_model, img)
    base = scored_base(model, settings, gradient_fn, score_fn)
    trials = _Trials(base, module_name(model, head), settings, example, dense)
    if budget.mode in ("keep", "auto"):
        keep = auto_keep(model, budget.gate_threshold) if budget.mode == "auto" else (budget.keep or settings.keep)
        out = trials(keep)
        if out is None:
            raise ConfigError(f"keep {keep:.3f} leaves a layer with no channel; raise keep")
        return out[0], BudgetResult(budget.mode, keep, None, *dense[:1], out[1], dense[1], out[2],
                                    budget.tolerance, tuple(trials.steps))
    return _search(trials, budget, dense)


def _search(trials: _Trials, budget: Budget, dense: tuple[int, int]) -> tuple[nn.Module, BudgetResult]:
    """Bisection on keep for the keep whose MACs (or params) fraction is nearest the target, within
    +- tolerance (under the target when both sides are as near)."""
    target = budget.target_macs if budget.mode == "macs" else budget.target_params
    which = 1 if budget.mode == "macs" else 2

    def fraction(out) -> float:
        return out[which] / dense[which - 1]

    lo_keep = 1 - trials.settings.max_layer_prune + 1e-3
    lo = trials(lo_keep)
    while lo is None and lo_keep < 0.95:
        lo_keep = min(lo_keep * 1.5, 0.95)
        lo = trials(lo_keep)
    flag = "target_macs" if budget.mode == "macs" else "target_params"
    if lo is None or fraction(lo) > target + budget.tolerance:
        smallest = f"{fraction(lo):.3f}" if lo is not None else "none"
        raise ConfigError(f"{flag} {target} cannot be reached with this model and settings; the smallest "
                          f"reachable is {smallest} (at keep {lo_keep:.3f}); raise the target or "
                          f"ignore fewer layers")
    best, best_keep, hi_keep = lo, lo_keep, 1.0
    above: tuple | None = None  # the closest trial over the target, taken when it is nearer and in tolerance
    for _ in range(budget.max_steps):
        if abs(fraction(best) - target) <= budget.tolerance / 2 or hi_keep - best_keep < 1e-3:
            break
        mid = (best_keep + hi_keep) / 2
        out = trials(mid)
        if out is not None and fraction(out) <= target:
            best, best_keep = out, mid
        else:
            hi_keep = mid
            if out is not None and fraction(out) <= target + budget.tolerance:
                above = (out, mid)
    if above is not None and abs(fraction(above[0]) - target) < abs(fraction(best) - target):
        best, best_keep = above  # channel counts move in steps of round_to: the nearer side wins
    return best[0], BudgetResult(budget.mode, best_keep, target, dense[0], best[1], dense[1], best[2],
                                 budget.tolerance, tuple(trials.steps))
