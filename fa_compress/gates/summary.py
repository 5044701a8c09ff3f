"""Summaries of a stored gate ranking (what `facompress gates` prints)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import NotFoundError
from .ranking import LayerRanking
from ..run import Run


@dataclass(frozen=True)
class StageSummary:
    stage: str
    layers: int
    channels: int
    mean_gate: float
    amplified: int
    noise: int


def load_ranking(run_path: Path | None) -> list[LayerRanking]:
    """The ranking stored by `finetune` in a run (default: the latest run)."""

    run = Run.resolve(run_path)
    if not (run.path / "gates.json").is_file():
        raise NotFoundError(f"run {run.path} has no gates.json; fine-tune with a `gates` phase first")
    rows = run.read_json("gates.json")
    if not rows:
        raise NotFoundError(f"run {run.path} has no gated layers (it was fine-tuned without gates)")
    return [LayerRanking(**{**r, "order": tuple(r["order"]), "gates": tuple(r["gates"])}) for r in rows]


def stage_summary(rankings: list[LayerRanking]) -> list[StageSummary]:
    """One row per stage, in network order."""
    stages: dict[str, list[LayerRanking]] = {}
    for r in rankings:
        stages.setdefault(r.stage, []).append(r)
    rows = []
    for stage, rs in stages.items():
        channels = sum(r.channels for r in rs)
        mean = sum(r.mean_gate * r.channels for r in rs) / channels
        rows.append(StageSummary(stage, len(rs), channels, mean, sum(r.amplified for r in rs),
                                 sum(r.noise for r in rs)))
    return rows
