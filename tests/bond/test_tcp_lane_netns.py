"""The redirect listener for real (root): a LAN host's curl to an "internet" web server
is REDIRECTed by nftables on the router into ``tquic bond client --redirect``, crosses
the bond to ``tquic bond server`` and reaches the web server; at SIGTERM the client
removes its nftables table.

Three namespaces made for this run (``tqlane-<pid>-lan|rtr|inet``)::

    lan host 10.88.1.2 ──veth── 10.88.1.1 (lan0) router 10.88.2.1 ──veth── 10.88.2.2 web
                                 bond client + bond server (loopback)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tquic.testing.netns import tquic_argv, unavailable_reason

pytestmark = pytest.mark.timeout(90)

TOKEN = "netns-lane-token"


def _skip_reason() -> str | None:
    reason = unavailable_reason()
    if reason is not None:
        return f"needs network namespaces: {reason}"
    for tool in ("nft", "curl"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed"
    return None


def _run(*argv: str) -> str:
    result = subprocess.run(list(argv), capture_output=True, text=True, timeout=15, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {result.stderr.strip()}")
    return result.stdout


class Site:
    def __init__(self) -> None:
        base = f"tqlane-{os.getpid()}"
        self.lan, self.rtr, self.inet = f"{base}-lan", f"{base}-rtr", f"{base}-inet"
        self.procs: list[subprocess.Popen[bytes]] = []

    def build(self) -> None:
        for ns in (self.lan, self.rtr, self.inet):
            _run("ip", "netns", "add", ns)
            _run("ip", "-n", ns, "link", "set", "lo", "up")
        _run("ip", "-n", self.rtr, "link", "add", "lan0", "type", "veth", "peer", "name",
             "eth0", "netns", self.lan)
        _run("ip", "-n", self.rtr, "link", "add", "wan0", "type", "veth", "peer", "name",
             "eth0", "netns", self.inet)
        for ns, dev, addr in ((self.lan, "eth0", "10.88.1.2/24"),
                              (self.rtr, "lan0", "10.88.1.1/24"),
                              (self.rtr, "wan0", "10.88.2.1/24"),
                              (self.inet, "eth0", "10.88.2.2/24")):
            _run("ip", "-n", ns, "addr", "add", addr, "dev", dev)
            _run("ip", "-n", ns, "link", "set", dev, "up")
        _run("ip", "-n", self.lan, "route", "add", "default", "via", "10.88.1.1")
        _run("ip", "-n", self.inet, "route", "add", "default", "via", "10.88.2.1")

    def spawn(self, ns: str, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        with open(log, "wb") as out:
            proc = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=out,
                                    stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
        for ns in (self.lan, self.rtr, self.inet):
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True,
                                  check=False).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


@pytest.fixture
def site() -> Iterator[Site]:
    reason = _skip_reason()
    if reason is not None:
        pytest.skip(reason)
    site = Site()
    try:
        site.build()
        yield site
    finally:
        site.close()


def _wait_for(predicate: object, what: str, logs: list[Path], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    detail = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}" for p in logs)
    raise AssertionError(f"timed out waiting for {what}\n{detail}")


def test_lan_curl_is_redirected_through_the_bond(site: Site, tmp_path: Path) -> None:
    from tquic.crypto.tls.certs import generate_self_signed

    cert, key = generate_self_signed(("localhost",), key_type="ec")
    (tmp_path / "cert.pem").write_bytes(cert)
    (tmp_path / "key.pem").write_bytes(key)
    www = tmp_path / "www"
    www.mkdir()
    body = os.urandom(2_000_000)
    (www / "file.bin").write_bytes(body)
    logs = [tmp_path / n for n in ("web.log", "server.log", "client.log")]

    site.spawn(site.inet, [sys.executable, "-u", "-m", "http.server", "8080", "--bind", "10.88.2.2",
                           "--directory", str(www)], logs[0])
    site.spawn(site.rtr, tquic_argv(
        "bond", "server", "--listen", "127.0.0.1:4433", "--cert", str(tmp_path / "cert.pem"),
        "--key", str(tmp_path / "key.pem"), "--pool", "10.98.0.0/24", "--token", TOKEN,
        "--lane-allow", "10.88.2.0/24"), logs[1])
    client = site.spawn(site.rtr, tquic_argv(
        "bond", "client", "--server", "127.0.0.1:4433", "--insecure", "--token", TOKEN,
        "--link", "127.0.0.1", "--tun", "none", "--state-dir", str(tmp_path),
        "--redirect", "0.0.0.0:12345", "--redirect-interface", "lan0"), logs[2])
    _wait_for(lambda: "Serving HTTP" in logs[0].read_text(errors="replace"), "the web server",
              logs)
    _wait_for(lambda: "tunnel up" in logs[2].read_text(errors="replace"), "the bond", logs)
    tables = _run("ip", "netns", "exec", site.rtr, "nft", "list", "tables")
    assert "tquic_lane_12345" in tables

    result = subprocess.run(
        ["ip", "netns", "exec", site.lan, "curl", "--silent", "--show-error", "--max-time", "30",
         "http://10.88.2.2:8080/file.bin"], capture_output=True, timeout=40, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace") + "\n" + "\n".join(
        p.read_text(errors="replace")[-2000:] for p in logs)
    assert hashlib.sha256(result.stdout).digest() == hashlib.sha256(body).digest()
    # The web server saw the router (the bond server's onward connection), not the LAN host.
    assert "10.88.2.1" in logs[0].read_text(errors="replace")

    client.send_signal(signal.SIGTERM)
    client.wait(10)
    tables = _run("ip", "netns", "exec", site.rtr, "nft", "list", "tables")
    assert "tquic_lane_12345" not in tables, "the redirect rule was left behind"
