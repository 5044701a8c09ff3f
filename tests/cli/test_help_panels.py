"""Every command with more than a handful of options groups them in `--help` panels."""

from __future__ import annotations

import re

import pytest

from fa_compress.cli.app import command

COMMANDS = {name: command(name) for name in ("finetune", "prune", "export", "bench", "compress")}


@pytest.mark.parametrize("name", ["finetune", "prune", "export", "bench", "compress"])
def test_every_option_of_a_long_command_sits_in_a_named_panel(name):
    params = [p for p in COMMANDS[name].params if not getattr(p, "hidden", False) and p.name != "help"]
    assert len(params) > 8
    loose = [p.name for p in params if not getattr(p, "rich_help_panel", None)]
    assert loose == []
    assert len({p.rich_help_panel for p in params}) >= 3


@pytest.mark.parametrize("name", ["finetune", "prune", "export", "bench", "compress"])
def test_help_strings_carry_no_measurements(name):
    measured = [p.name for p in COMMANDS[name].params
                if re.search(r"\d+(\.\d+)?\s*(%|points|ms\b|x faster|× )", getattr(p, "help", None) or "")]
    assert measured == []
