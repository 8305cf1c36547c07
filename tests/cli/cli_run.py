"""Running the ``tquic`` command in a child process, as a user would (shared by tests/cli)."""

from __future__ import annotations

import subprocess
import sys


def tquic(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m tquic ARGS``: output captured as text, never raises on a failure."""
    return subprocess.run([sys.executable, "-m", "tquic", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)
