"""The rich progress display used by fine-tuning and recovery (only rank 0 shows it)."""

from __future__ import annotations

from contextlib import contextmanager
from collections.abc import Iterator

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)


class PhaseBar:
    """One bar per phase with loss, accuracy and images/s in its description."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self._task = None

    def start(self, label: str, total: int, completed: int = 0) -> None:
        if self._progress is not None:
            self._task = self._progress.add_task(label, total=total, completed=completed, stats="")

    def update(self, *, loss: float, acc: float, images_per_s: float) -> None:
        if self._progress is not None and self._task is not None:
            stats = f"loss {loss:.3f}  acc {acc * 100:5.1f}%  {images_per_s:7.0f} img/s"
            self._progress.update(self._task, advance=1, stats=stats)

    def log(self, message: str) -> None:
        if self._progress is not None:
            self._progress.console.print(message)


@contextmanager
def phase_bar(show: bool, console: Console | None = None) -> Iterator[PhaseBar]:
    """A `PhaseBar` drawing on stderr when `show`, else a silent one."""
    if not show:
        yield PhaseBar(None)
        return
    columns = (TextColumn("{task.description:<18}"), BarColumn(bar_width=28), MofNCompleteColumn(),
               TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console or Console(stderr=True), transient=False) as progress:
        yield PhaseBar(progress)
