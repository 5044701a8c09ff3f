"""Launching torchrun for the user: `facompress finetune --nproc N` on one machine."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence

from ..errors import ConfigError


def under_torchrun() -> bool:
    """True inside a process started by torchrun."""
    return "TORCHELASTIC_RUN_ID" in os.environ or int(os.environ.get("WORLD_SIZE", "1")) > 1


def strip_option(argv: Sequence[str], option: str) -> list[str]:
    """`argv` without `option VALUE` / `option=VALUE`."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        elif not arg.startswith(option + "="):
            out.append(arg)
    return out


ARGV_ENV = "FACOMPRESS_TORCHRUN_ARGV"


def launch_torchrun(command_argv: Sequence[str], nproc: int) -> int:
    """Run `python -m fa_compress.cli.app <command_argv>` under torchrun with `nproc` processes.

    The command's arguments travel in an environment variable: torchrun's argparse would
    otherwise take options such as `--run` for abbreviations of its own (`--run-path`).
    """
    import json

    if nproc < 1:
        raise ConfigError(f"--nproc must be >= 1 (got {nproc})")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "fa_compress.cli.app"]
    return subprocess.call(cmd, env={**os.environ, ARGV_ENV: json.dumps(list(command_argv))})


def torchrun_argv() -> list[str] | None:
    """The arguments `launch_torchrun` handed to this process, if it was started that way."""
    import json

    raw = os.environ.get(ARGV_ENV)
    return json.loads(raw) if raw and under_torchrun() else None
