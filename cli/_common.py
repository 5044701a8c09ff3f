"""What every command shares: turning user errors into one line on stderr and exit code 2, notes into
`note:` lines, and ending with a line per dataset read: images per split and the files skipped, with reasons."""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Annotated, TypeVar

import typer

from fa_compress.data import collect_loaded, loaded_summary
from fa_compress.errors import FacompressWarning, UserError

F = TypeVar("F", bound=Callable)

# The arguments the app was started with (set by `app.main`), so a command can re-launch itself
# (e.g. `finetune --nproc N` under torchrun) whether it came from the shell or from `main(argv)`.
INVOCATION: list[str] = []


# one-word parameters that library messages name as such; others ("model", "run") are ordinary words there
WORD_FLAGS = ("keep", "importance", "scope", "schedule", "rounds", "warmup", "weights")


def as_flags(message: str, options: list[str]) -> str:
    """A library message that names parameters (`recover_lr must be ...`), with each parameter the
    command has as an option named by its flag (`--recover-lr must be ...`)."""
    for name in sorted(options, key=len, reverse=True):
        flag = "--" + name.replace("_", "-")
        # a one-word name is an ordinary word too: only where it reads as the parameter (`keep 0.05`, `rounds (`,
        # `weights PATH`)
        after = r"(?![\w'-])" if "_" in name else r"(?=\s(?:\(|must\b|takes\b|[0-9]|gate\b|PATH\b|none\b)|[;.]?$)"
        # a name in backticks is always the parameter
        message = re.sub(rf"(?<![\w'-])(?:`{re.escape(name)}`|{re.escape(name)}{after})", flag, message)
    return message


def user_errors_exit_2(fn: F) -> F:
    """Wrap a command so a `UserError` prints `error: <message>` on stderr and exits with 2; the
    parameter names in the library's message become the command's flags."""
    options = [name for name in inspect.signature(fn).parameters if "_" in name or name in WORD_FLAGS]

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with collect_loaded() as loaded, notes_on_stderr():
                result = fn(*args, **kwargs)
        except UserError as exc:
            message = as_flags(" ".join(str(exc).split()), options)  # one line, whatever the message held
            print(f"error: {message}", file=sys.stderr)
            raise typer.Exit(code=2) from None
        print_loaded(loaded.values())
        return result

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def notes_on_stderr() -> Iterator[None]:
    """Show facompress's own warnings (a stale run lock taken over, ...) as one `note: <message>` line on
    stderr, every time; other warnings as Python shows them."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", FacompressWarning)
        python_way = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001 - warnings' hook
            if issubclass(category, FacompressWarning):
                print(f"note: {' '.join(str(message).split())}", file=sys.stderr)
            else:
                python_way(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


def print_loaded(bundles) -> None:
    """End a command that read images with how many it read per split and how many it skipped, why."""
    if os.environ.get("RANK", "0") != "0":
        return  # under torchrun, rank 0 reports
    for bundle in bundles:
        typer.echo(loaded_summary(bundle))


# `--trust-code` on every command that rebuilds a run's model: one whose architecture is user code
# (file.py:factory) is imported only with it, so a run someone sent you never runs code by default.
TrustCode = Annotated[bool, typer.Option(rich_help_panel="Run and device",
    help="Allow rebuilding a model the run says comes from user code (file.py:factory): imports and runs it.")]


def trusting_code(fn: F) -> F:
    """Run a command that takes `trust_code: TrustCode` inside `fa_compress.models.trust_code(trust_code)`."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from fa_compress.models import trust_code

        with trust_code(bool(kwargs.get("trust_code", False))):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
