"""How many optimizer steps the fade and the recovery take: given in steps, given in epochs, or by default
one epoch but never fewer than `FLOOR_STEPS` (a small dataset's epoch is too few steps to adapt to a deep
cut; docs/decisions/step-budgets.md). The default grows for cuts below half the dense MACs, up to
`factor` times at `DEEP_FULL` and below (`depth_factor`).

>>> budget = step_budget("fade_steps", None, None, epoch_steps=34)
>>> budget.steps, budget.rule, budget.describe()
(400, 'floor', '400 steps (floor; one epoch is 34)')
>>> step_budget("fade_steps", None, 2, epoch_steps=34).steps      # epochs become steps
68
>>> step_budget("fade_steps", None, None, epoch_steps=750, factor=depth_factor(0.25, 2.0), macs_fraction=0.25).describe()
'1500 steps (one epoch x2 for a cut to 0.25 of the MACs, above the floor of 400)'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import ConfigError
from ..train.distributed import Context, rank_batch_size

FLOOR_STEPS = 400  # the fewest steps a default fade or recovery takes (docs/decisions/step-budgets.md)
RULES = ("steps", "epochs", "floor", "one epoch")  # asked in steps, asked in epochs, the two defaults
DEEP_FROM = 0.5   # a cut to this fraction of the dense MACs or more trains the default budget as it is,
DEEP_FULL = 0.35  # one to this fraction or less trains it times the deep-cut factor; linear in between
MAX_DEEP_FACTOR = 10.0


def check_deep_factor(value: float) -> None:
    """Refuse a deep-cut factor outside [1, MAX_DEEP_FACTOR]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value <= MAX_DEEP_FACTOR:
        raise ConfigError(f"deep_cut_factor must be in [1, {MAX_DEEP_FACTOR:g}] (got {value!r})")


def depth_factor(macs_fraction: float | None, most: float) -> float:
    """How many times its default budget a cut to `macs_fraction` of the dense MACs trains: 1 at `DEEP_FROM`
    and above, `most` at `DEEP_FULL` and below, linear in between (None, an unknown depth: 1)."""
    if macs_fraction is None or macs_fraction >= DEEP_FROM:
        return 1.0
    share = min(1.0, (DEEP_FROM - macs_fraction) / (DEEP_FROM - DEEP_FULL))
    return round(1.0 + share * (most - 1.0), 3)


@dataclass(frozen=True)
class StepBudget:
    """The optimizer steps one training around the cut takes, and the rule that chose them."""

    steps: int
    rule: str         # one of RULES
    epoch_steps: int  # one epoch of the training data at the fade's and recovery's batch size
    floor_steps: int = FLOOR_STEPS
    factor: float = 1.0                # the default rules' growth for a deep cut (depth_factor)
    macs_fraction: float | None = None  # the depth it grew for

    def describe(self) -> str:
        """One line: "400 steps (floor; one epoch is 34)"."""
        depth = "" if self.macs_fraction is None else f" for a cut to {self.macs_fraction:.2f} of the MACs"
        grown = f" x{self.factor:g}{depth}" if self.factor != 1 else ""
        why = {"steps": "as asked", "epochs": f"{self.steps // max(self.epoch_steps, 1)} epoch(s) as asked",
               "floor": f"floor{grown}",
               "one epoch": f"one epoch{grown}, above the floor of {self.floor_steps}"}[self.rule]
        tail = "" if self.rule == "one epoch" else f"; one epoch is {self.epoch_steps}"
        return f"{self.steps} steps ({why}{tail})"

    def to_dict(self) -> dict:
        return asdict(self)


def check_steps(name: str, value: int | None) -> None:
    """Refuse a step count that is not a whole number >= 1 (None: not given)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"{name} must be a whole number >= 1 (got {value!r})")


def epoch_steps(images: int, batch_size: int, ctx: Context) -> int:
    """Optimizer steps in one epoch of `images` at `batch_size` (all ranks together)."""
    per_rank_images = -(-images // ctx.world)
    return -(-per_rank_images // rank_batch_size(batch_size, ctx))


def step_budget(name: str, steps: int | None, epochs: int | None, *, epoch_steps: int,
                floor: int | None = None, factor: float = 1.0, macs_fraction: float | None = None) -> StepBudget:
    """`steps` if given, else `epochs` whole epochs if given, else max(one epoch, `floor`) (None:
    `FLOOR_STEPS`) times `factor` (a deep cut's growth, `depth_factor(macs_fraction, ...)`). `name` is the
    steps parameter, named in the error when both are given."""
    floor = FLOOR_STEPS if floor is None else floor
    check_steps(name, steps)
    if steps is not None and epochs is not None:
        raise ConfigError(f"{name} and {name.replace('_steps', '_epochs')} both set the same training; give one")
    if epoch_steps < 1:
        raise ConfigError("the training data has no images to take steps on")
    if steps is not None:
        return StepBudget(steps, "steps", epoch_steps, floor)
    if epochs is not None:
        return StepBudget(epochs * epoch_steps, "epochs", epoch_steps, floor)
    rule = "one epoch" if epoch_steps >= floor else "floor"
    return StepBudget(round(max(epoch_steps, floor) * factor), rule, epoch_steps, floor, factor,
                      macs_fraction if factor != 1 else None)
