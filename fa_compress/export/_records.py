"""The one place where export results become JSON-ready dicts (for `run.json` and reports)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any


def to_record(obj: Any) -> Any:
    """A JSON-serialisable copy of a frozen result dataclass: paths become strings, tuples lists."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_record(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (list, tuple)):
        return [to_record(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_record(v) for k, v in obj.items()}
    if isinstance(obj, float):
        return float(f"{obj:.7g}")  # 7 significant digits: float32 precision, no 0.30000000000000004
    return obj


def size_mb(path: Path) -> float:
    """File size in MiB (2**20 bytes), rounded to 1 KiB-ish precision."""
    return round(Path(path).stat().st_size / 2**20, 4)
