"""A real multipath transfer to watch: ``tquic server --control``, ``tquic netem`` with one
emulated link per client source address, and ``tquic client --path`` downloading through
it — three processes on loopback, stopped on exit."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

# Two links of different speed and delay, as a bond would have (no loss: the test is
# about what the control plane shows, not about recovery).
LINKS = ("127.0.0.2=rate=16mbit,delay=10ms", "127.0.0.3=rate=8mbit,delay=25ms")
SIZE = 400_000_000  # far more than a test lasts: the transfer is stopped, not finished


@dataclass(frozen=True, slots=True)
class LiveTransfer:
    control: str  # the control API's address (what --control prints)
    server: subprocess.Popen[str]
    client: subprocess.Popen[str]


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _line(proc: subprocess.Popen[str], pattern: str, timeout: float) -> re.Match[str]:
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return match
    raise AssertionError(f"no line matching {pattern!r}: {''.join(seen)}")


@contextmanager
def live_transfer(cert_dir: Path, control: Sequence[str],
                  links: Sequence[str] = LINKS) -> Iterator[LiveTransfer]:
    """``control``: the server's --control options, e.g. ("--control", "127.0.0.1:0",
    "--control-token", TOKEN)."""
    tquic = [sys.executable, "-m", "tquic"]
    with ExitStack() as stack:
        server = subprocess.Popen(
            [*tquic, "server", "--listen", "127.0.0.1:0", "--cert", str(cert_dir / "cert.pem"),
             "--key", str(cert_dir / "key.pem"), "--control-interval", "0.5", *control],
            stderr=subprocess.PIPE, text=True)
        stack.callback(_stop, server)
        port = int(_line(server, r"\]:(\d+)", 20).group(1))
        address = _line(server, r"control API on (\S+?)(?:;|$)", 20).group(1)
        relay = _free_udp_port()
        netem = subprocess.Popen(
            [*tquic, "netem", "--listen", f"127.0.0.1:{relay}", "--target", f"127.0.0.1:{port}",
             "--stats-interval", "0", *(arg for link in links for arg in ("--link", link))],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
        stack.callback(_stop, netem)
        (cert_dir / "download").mkdir(exist_ok=True)
        client = subprocess.Popen(
            [*tquic, "client", f"https://127.0.0.1:{relay}/{SIZE}", "--ca",
             str(cert_dir / "cert.pem"), "-o", str(cert_dir / "download"),
             *(arg for link in links for arg in ("--path", link.split("=", 1)[0]))],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        stack.callback(_stop, client)
        yield LiveTransfer(address, server, client)
