"""The `--val-fraction` default and its check (no torch here: the CLI checks it before loading anything)."""

from __future__ import annotations

from ..errors import ConfigError

# Measured on the default task only (benchmarks/val_fraction.py): see benchmarks/README.md.
DEFAULT_VAL_FRACTION = 0.1
MAX_VAL_FRACTION = 0.5


def check_val_fraction(fraction: float) -> None:
    """`ConfigError` unless `fraction` lies in (0, MAX_VAL_FRACTION]."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= MAX_VAL_FRACTION:
        raise ConfigError(f"--val-fraction must be in (0, {MAX_VAL_FRACTION}] (got {fraction!r}); "
                          f"e.g. {DEFAULT_VAL_FRACTION} holds out {DEFAULT_VAL_FRACTION:.0%} of each class")
