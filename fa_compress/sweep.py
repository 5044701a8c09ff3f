"""Moved to `fa_compress.search.sweep`; this name stays importable for existing scripts."""

from __future__ import annotations

from .search.sweep import SweepPoint, SweepResult, model_name_for, parse_keeps, sweep_run

__all__ = ["SweepPoint", "SweepResult", "model_name_for", "parse_keeps", "sweep_run"]
