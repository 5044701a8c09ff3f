"""Which fine-tuning phase to keep, by the rule every validation choice follows (`fa_compress.selection`).

A schedule is written to end on its last phase, so each new phase is the designed one: it replaces the
phase kept so far unless that phase is better on the same validation images beyond noise. On a small
validation split a phase one image ahead therefore never holds back the phases after it.

The state is a plain dict so that checkpoints (`run/`'s training state) can carry it:

>>> kept = first_kept()
>>> kept = next_kept(kept, 0, head_phase_evaluation)
>>> kept = next_kept(kept, 1, gates_phase_evaluation)
>>> kept["index"], kept["decisions"][0]["kept"]      # (1, 'designed') unless phase 0 was clearly better
"""

from __future__ import annotations

from typing import Any

from ..selection import RULE, RULE_TEXT, prefer
from .evaluate import Evaluation

DESIGNED = "the newest phase, against the phase kept so far (the schedule ends on its last phase)"


def first_kept() -> dict[str, Any]:
    """The state before any phase: nothing kept yet."""
    return {"index": -1, "acc": -1.0, "correct": None, "decisions": []}


def next_kept(kept: dict[str, Any], index: int, scored: Evaluation | None) -> dict[str, Any]:
    """The state after phase `index` scored `scored` on the validation split (None: no validation split,
    so the newest phase is kept). `kept["correct"]` holds the kept phase's per-image validation results;
    a state checkpointed before they were recorded has none, and the newest phase is then kept."""
    if scored is None:
        return {**first_kept(), "index": index}
    newest = {"index": index, "acc": scored.accuracy.value, "correct": scored.correct.tolist()}
    if kept["index"] < 0:
        return {**newest, "decisions": []}
    decision = prefer(scored.correct, kept.get("correct"))
    decisions = [*kept.get("decisions", []), {"phase": index, "against": kept["index"], **decision.to_dict()}]
    return {**(newest if decision.keep_designed else kept), "decisions": decisions}


def selection_record(kept: dict[str, Any]) -> dict[str, Any]:
    """What run.json records about the choice: the rule, what it treats as designed, each comparison."""
    return {"rule": RULE, "text": RULE_TEXT, "designed": DESIGNED, "decisions": list(kept.get("decisions", []))}
