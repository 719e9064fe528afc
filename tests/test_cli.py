"""The `t4dm` entry point: help, unknown commands, a subcommand whose extra is missing."""

from __future__ import annotations

import pytest

from t4dm_core import cli


def test_no_command_prints_help_and_fails(capsys) -> None:
    assert cli.main([]) == 2
    assert "migrate" in capsys.readouterr().err


def test_help_lists_the_commands(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    assert "migrate" in capsys.readouterr().out


def test_unknown_command_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["frobnicate"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_missing_extra_names_the_package_to_install(monkeypatch, capsys) -> None:
    monkeypatch.setitem(cli.SUBCOMMANDS, "ghost", ("t4dm_no_such_module.cli", "a command", "ghost-extra"))
    assert cli.main(["ghost"]) == 2
    err = capsys.readouterr().err
    assert "t4dm_no_such_module" in err and "pip install 't4dm[ghost-extra]'" in err
