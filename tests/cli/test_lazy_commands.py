"""`facompress --help` lists every command without importing any command's module (nor torch); the list
it shows is each command's own docstring, read from its source, and each command still loads, runs its own
help and refuses a typo with a suggestion."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest

from fa_compress.cli.app import COMMANDS, command, main, summary


@pytest.mark.parametrize("name", COMMANDS)
def test_the_listed_summary_is_the_first_paragraph_of_the_commands_docstring(name):
    function = getattr(importlib.import_module(f"fa_compress.cli.{name}"), name)
    assert " ".join(inspect.getdoc(function).split("\n\n")[0].split()) == summary(name)
    assert command(name).name == name


def test_the_top_level_help_imports_no_command_and_not_torch():
    probe = ("import sys\nfrom fa_compress.cli.app import main\ntry:\n    main(['--help'])\nexcept SystemExit as e:\n"
             "    code = e.code\nloaded = sorted(m for m in sys.modules if m == 'torch' or m.startswith('fa_compress.cli.')"
             " and m.rsplit('.', 1)[1] in {" + ", ".join(repr(n) for n in COMMANDS) + "})\n"
             "print('LOADED', code, loaded)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                         env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    for name in COMMANDS:
        assert name in out.stdout and summary(name) in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "LOADED 0 []"


def test_a_command_still_shows_its_own_help_and_a_typo_is_refused_with_the_suggestion(capsys):
    with pytest.raises(SystemExit) as done:
        main(["prune", "--help"])
    assert done.value.code == 0 and "--target-macs" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        main(["prun"])
    err = capsys.readouterr().err
    assert done.value.code == 2 and err.strip() == "error: No such command 'prun'. Did you mean 'prune'? (see --help)"
