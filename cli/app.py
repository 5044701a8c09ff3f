"""The `facompress` typer app: one module per command, each thin over one library call.

Bad input ends as one line on stderr (`error: ...`) and exit code 2, usage errors included. Anything
else that escapes a command is a bug: one line saying so and how to report it, exit code 1, and the
traceback only with `--debug` (anywhere on the command line) or `FACOMPRESS_DEBUG=1`.

A command's module (and torch, which most of them need) is imported only when that command runs or shows
its own help: `facompress --help` lists `COMMANDS` with the first paragraph of each command's docstring, read from
its source file.
"""

from __future__ import annotations

import ast
import importlib
import os
import sys
from pathlib import Path

# OpenMP spins while waiting (fast on a quiet machine) unless other jobs keep a core busy, when it
# sleeps instead (fa_compress/machine.py; docs/decisions/openmp-wait.md). Decided before torch is imported;
# an explicit OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
from fa_compress.machine import choose_wait_policy  # noqa: E402 - imports neither torch nor numpy

choose_wait_policy()

import typer

from fa_compress.errors import UserError

COMMANDS = ("finetune", "gates", "prune", "export", "bench", "report", "compress", "sweep", "check", "models", "env")


def summary(name: str) -> str:
    """The first paragraph of command NAME's docstring, read from its source file without importing it."""
    tree = ast.parse((Path(__file__).resolve().parent / f"{name}.py").read_text(encoding="utf-8"))
    function = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    return " ".join(ast.get_docstring(function).split("\n\n")[0].split())


_SETTINGS = {"no_args_is_help": True, "pretty_exceptions_enable": False, "add_completion": False}


def command(name: str):  # noqa: ANN201 - typer's click command
    """The click command `facompress NAME` runs, its module imported now (import errors propagate)."""
    module = importlib.import_module(f"{__package__}.{name}")
    single = typer.Typer(**_SETTINGS)
    single.command(name)(getattr(module, name))
    single.callback()(lambda: None)  # a group, so that the command keeps its name
    return typer.main.get_group(single).commands[name]


class _LazyGroup(typer.core.TyperGroup):
    """Lists every command by its summary; imports a command's module when the command is resolved."""

    def __init__(self, **kwargs) -> None:  # noqa: ANN003 - typer's group settings
        super().__init__(**kwargs)
        self.commands = {name: typer.core.TyperCommand(name, help=summary(name)) for name in COMMANDS}

    def resolve_command(self, ctx, args):  # noqa: ANN001, ANN201 - click's signature
        name, found, rest = super().resolve_command(ctx, args)
        return name, (command(name) if name in COMMANDS else found), rest


app = typer.Typer(
    name="facompress",
    help="Attention-gated fine-tuning, gate-ranked pruning and deployment of pretrained CNNs.",
    cls=_LazyGroup,
    **_SETTINGS,
)

DEBUG_FLAG, DEBUG_ENV = "--debug", "FACOMPRESS_DEBUG"


@app.callback()
def _global_options(
    debug: bool = typer.Option(False, DEBUG_FLAG, help=f"Show the traceback of an unexpected error (or set "
                                                       f"{DEBUG_ENV}=1); accepted after the command too."),
) -> None:
    """Attention-gated fine-tuning, gate-ranked pruning and deployment of pretrained CNNs."""


# typer may bundle its own click: take the exception classes from typer's own hierarchy.
_UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: usage and user errors become one line on stderr and exit code 2; a bug
    becomes one line (and its traceback with --debug) and exit code 1."""
    from . import _common

    args = list(argv) if argv is not None else sys.argv[1:]
    _common.INVOCATION[:] = args
    debug = DEBUG_FLAG in args or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    args = [a for a in args if a != DEBUG_FLAG]
    try:
        code = app(args=args, standalone_mode=False)
    except _UsageError as exc:
        message = " ".join(exc.format_message().split())
        if message:  # no command at all: the help is already on screen, an empty error adds nothing
            print(f"error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        sys.exit(130)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    except UserError as exc:  # a command that does not wrap its own
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        sys.exit(2)
    except Exception as exc:  # noqa: BLE001 - every other exception is a bug in facompress
        _report_bug(exc, args, debug)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


def _report_bug(exc: Exception, args: list[str], debug: bool) -> None:
    """One line on stderr naming the bug and the command; the traceback first when debugging."""
    import shlex
    import traceback

    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    what = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
    how = "" if debug else f"; re-run with {DEBUG_FLAG} (or {DEBUG_ENV}=1) for the traceback"
    print(f"error: this is a bug in facompress, not in your input ({what}) while running "
          f"`facompress {shlex.join(args)}`; please report it with the output of `facompress env`{how}",
          file=sys.stderr)


if __name__ == "__main__":  # torchrun starts `python -m fa_compress.cli.app`
    from fa_compress.train.launch import torchrun_argv

    main(torchrun_argv())
