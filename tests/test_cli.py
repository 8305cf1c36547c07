"""The ``tquic`` command answers --help and --version."""

from __future__ import annotations

import argparse
import subprocess
import sys

from tquic import __version__
from tquic.cli.main import COMMANDS, build_parser


def run_tquic(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tquic", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_version_prints_package_version() -> None:
    result = run_tquic("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"tquic {__version__}"


def test_help_describes_the_command() -> None:
    result = run_tquic("--help")
    assert result.returncode == 0
    assert "usage: tquic" in result.stdout
    assert "multipath" in result.stdout


def test_bad_flag_is_a_usage_error() -> None:
    result = run_tquic("--no-such-flag")
    assert result.returncode == 2
    assert "unrecognized arguments" in result.stderr


def _choices(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("the tquic parser has no subcommands")


def test_help_lists_every_command_module_registers() -> None:
    # The full parser (``tquic --help``) is built from COMMANDS; every command a
    # module registers must be a key there, or it could not be run lazily.
    assert list(_choices(build_parser())) == list(COMMANDS)
    result = run_tquic("--help")
    for name in COMMANDS:
        assert f"    {name}" in result.stdout


def test_one_command_parser_teaches_what_the_full_parser_does() -> None:
    full = _choices(build_parser())
    for name in COMMANDS:
        alone = _choices(build_parser(name))
        assert name in alone
        assert alone[name].format_help() == full[name].format_help()


def test_running_a_command_imports_only_its_module() -> None:
    probe = ("import sys\n"
             "from tquic.cli.main import build_parser\n"
             "build_parser('certs').parse_args(['certs', '.'])\n"
             "print(sorted(m for m in sys.modules if m.startswith('tquic.cli.')))\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=60, check=True)
    loaded = result.stdout
    assert "tquic.cli.certs" in loaded
    for other in ("client", "server", "bond", "proxy", "netem_cmd", "demo"):
        assert f"'tquic.cli.{other}'" not in loaded
