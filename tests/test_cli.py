"""The command line itself: help, version, entry points, and staying fast."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import SRC, assert_python_runs, invoke, subprocess_env

from dlcli import __version__
from dlcli.cli import cli

COMMANDS = ["xor", "mnist", "compare", "resume", "board"]


@pytest.mark.parametrize("command", [[]] + [[c] for c in COMMANDS])
def test_help_on_every_command(runner, command):
    result = invoke(runner, *command, "--help")
    assert "Usage: " in result.stdout
    assert "--help" in result.stdout


@pytest.mark.parametrize("command", ["xor", "mnist"])
def test_help_shows_defaults(runner, command):
    out = invoke(runner, command, "--help").stdout
    assert "[default:" in out
    for option in ("--layers", "--activation", "--init", "--optimizer", "--lr", "--epochs", "--seed", "--json"):
        assert option in out


def test_version(runner):
    assert __version__ in invoke(runner, "--version").stdout


def test_python_dash_m():
    out = subprocess.run(
        [sys.executable, "-m", "dlcli", "--version"], capture_output=True, text=True, env=subprocess_env(), cwd=SRC
    )
    assert out.returncode == 0, out.stderr
    assert __version__ in out.stdout


def test_help_never_imports_tensorflow():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from dlcli.cli import cli\n"
        "for args in (['--help'], ['xor', '--help'], ['mnist', '--help'], ['resume', '--help'], ['compare', '--help'],\n"
        "             ['board', '--help'], ['compare', '--vary', 'lr=0.1,0.01', '--vary', 'units=8,16', '--dry-run']):\n"
        "    result = CliRunner().invoke(cli, args)\n"
        "    assert result.exit_code == 0, (args, result.output)\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported by --help or a dry run'\n"
    )
    assert_python_runs(code)


def test_usage_errors_exit_2(runner):
    result = runner.invoke(cli, ["xor", "--no-such-option"])
    assert result.exit_code == 2
