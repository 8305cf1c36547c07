"""Running the ``tquic`` command in a child process, as a user would (shared by tests/cli)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


def tquic(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m tquic ARGS``: output captured as text, never raises on a failure."""
    return subprocess.run([sys.executable, "-m", "tquic", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


def server_argv(cert_dir: Path, *extra: str, listen: str = "127.0.0.1:0") -> list[str]:
    """``tquic server`` on ``listen`` with the certificate of ``cert_dir``."""
    return [sys.executable, "-m", "tquic", "server", "--listen", listen,
            "--cert", str(cert_dir / "cert.pem"), "--key", str(cert_dir / "key.pem"), *extra]


@contextmanager
def running_server(argv: Sequence[str]) -> Iterator[int]:
    """Start a ``tquic server`` command line, yield the UDP port it announced on its first
    stderr line ("... [ADDR]:PORT ..."), stop it afterwards."""
    proc = subprocess.Popen(list(argv), stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        match = re.search(r"\]:(\d+)", line)
        assert match is not None, line
        yield int(match.group(1))
    finally:
        proc.terminate()
        proc.wait(10)
