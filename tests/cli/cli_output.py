"""Run the `facompress` command line in-process and return what it printed (it must exit 0)."""

import pytest

from fa_compress.cli.app import main


def cli_output(argv: list[str], capsys) -> str:
    """stdout of `facompress ARGV`; fails the test (with stderr) unless it exits 0."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    assert exit_info.value.code == 0, err
    return out
