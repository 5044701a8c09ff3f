"""One seed per run, and a separate, stable stream of it for each thing that samples.

>>> derive_seed(0, "recovery") != derive_seed(0, "taylor")
True
"""

from __future__ import annotations

import zlib


def derive_seed(seed: int, purpose: str) -> int:
    """A seed for `purpose` (e.g. "validation", "recovery") derived from the run's `seed`.

    Stable across processes and Python versions (crc32, not `hash`), so a stage repeats exactly
    when run again on the same input; different purposes get unrelated streams.
    """
    return (int(seed) * 1_000_003 + zlib.crc32(purpose.encode())) % (2**63 - 1)


def seed_everything(seed: int, purpose: str) -> int:
    """Seed torch's global generator (and Python's `random`) for `purpose`; returns the seed used."""
    import random

    import torch

    derived = derive_seed(seed, purpose)
    torch.manual_seed(derived)
    random.seed(derived)
    return derived
