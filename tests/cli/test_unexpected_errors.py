"""A bug (an exception that is not a user error) exits 1 with one line saying it is a bug, the command and
`facompress env`; the traceback only with --debug or FACOMPRESS_DEBUG=1. No command: just the help."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli


@pytest.fixture
def buggy_check(monkeypatch):
    def boom(*args, **kwargs):
        raise ZeroDivisionError("division by zero in a helper")

    monkeypatch.setattr("fa_compress.api.check_run", boom)



def test_bug_is_one_line_without_traceback(buggy_check, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("FACOMPRESS_DEBUG", raising=False)
    code, out, err = run_cli(["check", "--run", str(tmp_path)], capsys)
    assert code == 1
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: this is a bug in facompress"), err
    assert "ZeroDivisionError: division by zero in a helper" in lines[0]
    assert f"`facompress check --run {tmp_path}`" in lines[0] and "`facompress env`" in lines[0]
    assert "--debug" in lines[0]


@pytest.mark.parametrize("argv", [["--debug", "check"], ["check", "--debug"]])
def test_debug_flag_shows_the_traceback(argv, buggy_check, capsys, monkeypatch):
    monkeypatch.delenv("FACOMPRESS_DEBUG", raising=False)
    code, _, err = run_cli(argv, capsys)
    assert code == 1
    assert err.startswith("Traceback (most recent call last)") and "ZeroDivisionError" in err
    assert err.strip().splitlines()[-1].startswith("error: this is a bug in facompress")


def test_debug_env_shows_the_traceback(buggy_check, capsys, monkeypatch):
    monkeypatch.setenv("FACOMPRESS_DEBUG", "1")
    code, _, err = run_cli(["check"], capsys)
    assert code == 1 and "Traceback" in err and "in boom" in err


def test_no_command_shows_help_without_an_empty_error(capsys):
    code, out, err = run_cli([], capsys)
    assert code == 2
    assert "Usage" in out and "check" in out and "--debug" in out
    assert err == ""


def test_user_errors_still_exit_2(tmp_path, capsys):
    code, _, err = run_cli(["check", "--run", str(tmp_path / "missing"), "--debug"], capsys)
    assert code == 2 and "Traceback" not in err and err.startswith("error: run directory")
