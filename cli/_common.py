"""What every command shares: turning user errors into one line on stderr and exit code 2."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

import typer

from fa_compress.errors import UserError

F = TypeVar("F", bound=Callable)

# The arguments the app was started with (set by `app.main`), so a command can re-launch itself
# (e.g. `finetune --nproc N` under torchrun) whether it came from the shell or from `main(argv)`.
INVOCATION: list[str] = []


def user_errors_exit_2(fn: F) -> F:
    """Wrap a command so a `UserError` prints `error: <message>` on stderr and exits with 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            message = " ".join(str(exc).split())  # one line, whatever the message held
            print(f"error: {message}", file=sys.stderr)
            raise typer.Exit(code=2) from None

    return wrapper  # type: ignore[return-value]
