"""The `facompress` typer app: one module per command, each thin over one library call.

Bad input ends as one line on stderr (`error: ...`) and exit code 2, usage errors included.
"""

from __future__ import annotations

import os
import sys

# OpenMP's default busy-wait makes PyTorch CPU ops stall whenever another job holds a core
# (measured on a shared 2-core machine: 4-11 images/s instead of ~300). Passive waiting costs
# little when the machine is quiet. Set before torch is imported; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import typer

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

    for name in ("prune", "export", "bench", "report", "sweep"):
        try:
            module = importlib.import_module(f"{__package__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.{name}":
                raise
            continue
        app.command(name)(getattr(module, name))


_register_optional()
app.command("env")(env.env)


# typer may bundle its own click: take the exception classes from typer's own hierarchy.
_UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: usage errors become one line on stderr and exit code 2."""
    from . import _common

    _common.INVOCATION[:] = list(argv) if argv is not None else sys.argv[1:]
    try:
        code = app(args=argv, standalone_mode=False)
    except _UsageError as exc:
        message = " ".join(exc.format_message().split())
        print(f"error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # torchrun starts `python -m fa_compress.cli.app`
    from fa_compress.train.launch import torchrun_argv

    main(torchrun_argv())
