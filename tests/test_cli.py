"""The ``tquic`` command answers --help and --version."""

from __future__ import annotations

import subprocess
import sys

from tquic import __version__


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
