"""What the datasets loaded during a command held and skipped, for the line the CLI ends with.

>>> with collect_loaded() as loaded:
...     bench_run(run)            # loads the run's dataset somewhere inside
>>> [b.skipped.summary() for b in loaded.values()]
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._bundle import DatasetBundle

_LOADED: contextvars.ContextVar[dict[str, DatasetBundle] | None] = contextvars.ContextVar("loaded", default=None)


@contextlib.contextmanager
def collect_loaded() -> Iterator[dict[str, DatasetBundle]]:
    """Collect every bundle `load_dataset` returns inside the block, the last one per dataset name."""
    loaded: dict[str, DatasetBundle] = {}
    token = _LOADED.set(loaded)
    try:
        yield loaded
    finally:
        _LOADED.reset(token)


def note_loaded(bundle: DatasetBundle) -> None:
    """Called by `load_dataset`: remember `bundle` when a `collect_loaded` block is open."""
    loaded = _LOADED.get()
    if loaded is not None:
        loaded[bundle.name] = bundle


def loaded_summary(bundle: DatasetBundle) -> str:
    """`images: fashion-mnist train 6000, validation 667, test 2000 images; none skipped`."""
    return f"images: {bundle.name} {bundle.sizes()}; {bundle.skipped.summary()}"
