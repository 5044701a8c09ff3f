"""The `facompress` typer app: one module per command, each thin over one library call.

Bad input ends as one line on stderr (`error: ...`) and exit code 2, usage errors included. Anything
else that escapes a command is a bug: one line saying so and how to report it, exit code 1, and the
traceback only with `--debug` (anywhere on the command line) or `FACOMPRESS_DEBUG=1`.
"""

from __future__ import annotations

import os
import sys

# OpenMP spins while waiting (fast on a quiet machine) unless other jobs keep a core busy, when it
# sleeps instead (fa_compress/machine.py; docs/decisions/openmp-wait.md). Decided before torch is imported;
# an explicit OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
from fa_compress.machine import choose_wait_policy  # noqa: E402 - imports neither torch nor numpy

choose_wait_policy()

import typer

from fa_compress.errors import UserError

from . import finetune, gates, env

app = typer.Typer(
    name="facompress",
    help="Attention-gated fine-tuning, gate-ranked pruning and deployment of pretrained CNNs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("finetune")(finetune.finetune)
app.command("gates")(gates.gates)


def _register_optional() -> None:
    """Commands whose modules may be absent in a partial checkout stay out of the app."""
    import importlib

    for name in ("prune", "export", "bench", "report", "compress", "sweep", "check", "models"):
        try:
            module = importlib.import_module(f"{__package__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.{name}":
                raise
            continue
        app.command(name)(getattr(module, name))


_register_optional()
app.command("env")(env.env)

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
