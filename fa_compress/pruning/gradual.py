"""Deep cuts in steps (`facompress prune --prune-steps N`): N planned cuts whose targets fall
geometrically from the dense model to the budget (0.35 of the MACs in 3 steps: 0.705 -> 0.497 -> 0.35),
each planned on the model the previous step left, faded in and cut exactly, with the fade's training
split evenly between the steps. The last step plans the budget itself, so the result meets it as a
one-shot cut does (within the budget's tolerance of the dense model).

Between two steps the cut model's gates are folded into BatchNorm and fresh gates (at 1) put back: the
Taylor score of a gate, |g * dL/dg|, is the same before and after folding, so the next plan ranks the
channels as it would have with the trained gates. Each step may cut up to `PruneSettings.max_layer_prune`
of a layer's channels as it stands then, so a layer can lose more over N steps than one cut allows.

>>> targets = step_fractions(0.35, 3)                # [0.705, 0.497, 0.35] of the dense model
>>> pruned, found, masks, fades, plan_cut_s = fade_and_cut_in_steps(
...     model, head_name, settings, example, Budget(target_macs=0.35), scorers, steps=3, seed=0,
...     fade_budget=120, fade_step=lambda model, head, masks, share: {...})
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .._seed import seed_everything
from ..errors import ConfigError
from ..gates import insert_gates
from .budget import Budget, BudgetResult, BudgetStep
from .fade import plan_cut
from .pruner import PruneSettings, cut_channels_exactly

DEFAULT_PRUNE_STEPS = 1  # one cut; more is a choice for deep cuts (docs/decisions/distillation-and-gradual-cuts.md)

# (model, head, masks, share of the fade's training) -> what the fade did (`chain._fade`'s record)
FadeStep = Callable[[nn.Module, nn.Module, dict[str, torch.Tensor], int], dict[str, Any]]


def check_prune_steps(steps: int) -> None:
    """Refuse a number of cuts that is not a whole number >= 1."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"prune_steps must be a whole number >= 1 (got {steps!r})")


def check_gradual(steps: int, budget: Budget, fades: bool) -> None:
    """Refuse cuts in steps where they cannot run: they need a MAC or params target (the steps fall
    towards it) and the fade (each step is faded in before its cut)."""
    check_prune_steps(steps)
    if steps == 1:
        return
    if budget.mode not in ("macs", "params"):
        raise ConfigError(f"prune_steps {steps} needs a target_macs or target_params budget (got {budget.mode})")
    if not fades:
        raise ConfigError(f"prune_steps {steps} fades each cut in before it is made, so it needs importance gate "
                          f"and a fade; set prune_steps to 1")


def step_fractions(target: float, steps: int) -> list[float]:
    """The fraction of the dense model each step plans to: target ** (k / steps), k = 1 .. steps."""
    return [target ** (k / steps) for k in range(1, steps)] + [target]


def split_evenly(total: int, parts: int) -> list[int]:
    """`total` in `parts` whole shares that differ by at most one, the larger ones first."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _step_budget(budget: Budget, fraction: float, scale: float) -> Budget:
    """`fraction` of the dense model as a budget on the current one, `scale` times smaller than dense
    (its tolerance scaled alike, so the step lands within `budget.tolerance` of the dense model)."""
    key = "target_macs" if budget.mode == "macs" else "target_params"
    return Budget(**{key: min(fraction * scale, 1 - 1e-6)}, tolerance=min(budget.tolerance * scale, 0.49),
                  max_steps=budget.max_steps)


def fade_and_cut_in_steps(model: nn.Module, head_name: str, settings: PruneSettings, example: torch.Tensor,
                          budget: Budget, scorers: tuple[Callable | None, Callable | None], *, steps: int,
                          seed: int, fade_budget: int, fade_step: FadeStep,
                          ) -> tuple[nn.Module, BudgetResult, dict[str, torch.Tensor], list[dict], float]:
    """Cut `model` (gated; in place) to `budget` in `steps` planned, faded and exact cuts; returns
    (the pruned, folded model; what it reached against the dense model, one `BudgetStep` per cut;
    the last cut's masks; each fade's record with the cut's fractions; seconds planning and cutting).
    `fade_budget` (the fade's training, in whatever unit `fade_step` takes) is split evenly."""
    shares = split_evenly(fade_budget, steps)
    if min(shares) < 1:
        raise ConfigError(f"prune_steps {steps} splits the fade's training between the cuts, and "
                          f"{fade_budget} cannot give each at least 1; lower prune_steps")
    target = budget.target_macs if budget.mode == "macs" else budget.target_params
    which = 0 if budget.mode == "macs" else 1
    dense = current = None
    cut_s, found_steps, fades, keep = 0.0, [], [], 1.0
    masks: dict[str, torch.Tensor] = {}
    for k, (fraction, share) in enumerate(zip(step_fractions(target, steps), shares)):
        head = model.get_submodule(head_name) if head_name else model
        seed_everything(seed, f"fade plan {k + 1}")
        t0 = time.perf_counter()
        scale = 1.0 if dense is None else dense[which] / current[which]  # dense / current size
        masks, found = plan_cut(model, head, settings, example, _step_budget(budget, fraction, scale), *scorers)
        cut_s += time.perf_counter() - t0
        dense = dense or (found.macs_before, found.params_before)
        fades.append(fade_step(model, head, masks, share))
        seed_everything(seed, f"prune scores {k + 1}")
        t0 = time.perf_counter()
        cut_channels_exactly(model, example, masks)  # folds the gates
        if k < steps - 1:
            insert_gates(model)  # fresh gates at 1 for the next plan and fade
        cut_s += time.perf_counter() - t0
        current, keep = (found.macs_after, found.params_after), keep * found.keep
        found_steps.append(BudgetStep(found.keep, found.macs_after / dense[0], found.params_after / dense[1]))
        fades[-1] = {**fades[-1], "macs_fraction": found_steps[-1].macs_fraction,
                     "params_fraction": found_steps[-1].params_fraction}
    reached = BudgetResult(budget.mode, keep, target, dense[0], current[0], dense[1], current[1], budget.tolerance,
                           tuple(found_steps))
    return model, reached, masks, fades, cut_s
