"""How many optimizer steps one fine-tuning phase takes: its own length (one epoch of the images; in a `head`
phase on cached features, `head_feature_epochs` passes over them), but never fewer than a floor:
`TrainConfig.min_phase_steps`, or `FLOOR_STEPS` where that is None. On a small dataset an epoch is a handful
of steps, too few for the classifier and the gates to learn (docs/decisions/finetune-steps.md); on a large one
the phase's own length is above the floor and nothing changes.

>>> budget = phase_steps(own_steps=4, own="one epoch", floor=None)
>>> budget.steps, budget.rule, budget.describe()
(100, 'floor', '100 steps (floor; one epoch is 4)')
>>> phase_steps(own_steps=188, own="one epoch", floor=None).describe()      # the default task: unchanged
'188 steps (one epoch)'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import ConfigError

FLOOR_STEPS = 100  # the fewest optimizer steps a phase takes by default (docs/decisions/finetune-steps.md)
RULES = ("own length", "floor")  # the phase's own length, or raised to the floor


@dataclass(frozen=True)
class PhaseSteps:
    """The optimizer steps one phase took, and the rule that chose them."""

    steps: int
    rule: str         # one of RULES
    own_steps: int    # the phase's own length in steps (what it takes without the floor)
    own: str          # what that length is: "one epoch", "2 passes over cached features"
    floor_steps: int  # the floor it was held to (0: none)

    def describe(self) -> str:
        """One line: "100 steps (floor; one epoch is 4)", "188 steps (one epoch)"."""
        if self.rule == "floor":
            verb = "are" if self.own.split()[0] not in ("1", "one") else "is"
            return f"{self.steps} steps (floor; {self.own} {verb} {self.own_steps})"
        return f"{self.steps} steps ({self.own})"

    def to_dict(self) -> dict:
        return asdict(self)


def check_min_phase_steps(value: int | None) -> None:
    """Refuse a floor that is not None or a whole number >= 0."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ConfigError(f"min_phase_steps must be a whole number >= 0 (got {value!r})")


def phase_steps(*, own_steps: int, own: str, floor: int | None) -> PhaseSteps:
    """max(`own_steps`, `floor`) with the rule that chose it (the phase's own length wins ties);
    `floor` None: `FLOOR_STEPS`."""
    floor = FLOOR_STEPS if floor is None else floor
    if own_steps >= floor:
        return PhaseSteps(own_steps, "own length", own_steps, own, floor)
    return PhaseSteps(floor, "floor", own_steps, own, floor)
