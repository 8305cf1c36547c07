"""A bond lab in network namespaces: a site with shaped links, the bond server, an internet.

::

    site ns (tquic bond client, bond0)  ══ wan1/lan1 (tbf) ══  server ns (tquic bond server,
                                        ══ wan2/lan2 (tbf) ══   bondsrv0, --nat)  ── inet0 ── internet ns
                                                                                   10.88.0.1   10.88.0.2, .3

The site and server namespaces and their links are a :class:`tquic.testing.netns.Topology`
(``10.77.k.1`` ↔ ``10.77.k.2``); this adds the internet namespace behind the
server (``10.88.0.0/24`` and ``fd88::/64``, no route back to the pools: the
server's ``--nat`` must masquerade) and runs the daemons.  Everything is removed by
:meth:`BondLab.close` (also on errors).  Root only: tests and benchmarks check
:func:`tquic.testing.netns.unavailable_reason` first.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from tquic.testing.netns import LinkSpec, Topology, _run, _stop, tquic_argv

INTERNET = "10.88.0.2"
INTERNET2 = "10.88.0.3"
SERVER_INET = "10.88.0.1"
INTERNET6 = "fd88::2"  # the internet over IPv6 (``nodad``: usable at once)
SERVER_INET6 = "fd88::1"
POOL = "10.99.0.0/24"
POOL6 = "fd99::/64"
TOKEN = "lab-token-5f2c9a"
TOKEN2 = "lab-token-second-site-77e1"


class BondLab:
    """Namespaces, the internet behind the server, and helpers to run the daemons."""

    def __init__(self, links: Sequence[LinkSpec | float], workdir: Path | str) -> None:
        self.topology = Topology(links)
        self.workdir = Path(workdir)
        self.internet_ns = self.topology.server_ns[:-1] + "i"
        self._processes: list[subprocess.Popen[Any]] = []
        self._built = False
        self.cert = self.workdir / "cert.pem"
        self.key = self.workdir / "key.pem"

    def __enter__(self) -> BondLab:
        self.build()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def site_ns(self) -> str:
        return self.topology.client_ns

    @property
    def server_ns(self) -> str:
        return self.topology.server_ns

    def build(self) -> None:
        from tquic.crypto.tls.certs import generate_self_signed

        self.workdir.mkdir(parents=True, exist_ok=True)
        cert, key = generate_self_signed(("localhost", "10.77.1.2"), key_type="ec")
        self.cert.write_bytes(cert)
        self.key.write_bytes(key)
        self.topology.build()
        self._built = True
        try:
            ns, srv = self.internet_ns, self.server_ns
            _run(["ip", "netns", "add", ns])
            _run(["ip", "-n", ns, "link", "set", "lo", "up"])
            _run(["ip", "link", "add", "inet0", "netns", srv, "type", "veth", "peer", "name",
                  "up0", "netns", ns])
            _run(["ip", "-n", srv, "addr", "add", f"{SERVER_INET}/24", "dev", "inet0"])
            _run(["ip", "-n", ns, "addr", "add", f"{INTERNET}/24", "dev", "up0"])
            _run(["ip", "-n", ns, "addr", "add", f"{INTERNET2}/24", "dev", "up0"])
            _run(["ip", "-n", srv, "addr", "add", f"{SERVER_INET6}/64", "dev", "inet0", "nodad"])
            _run(["ip", "-n", ns, "addr", "add", f"{INTERNET6}/64", "dev", "up0", "nodad"])
            _run(["ip", "-n", srv, "link", "set", "inet0", "up"])
            _run(["ip", "-n", ns, "link", "set", "up0", "up"])
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for proc in self._processes:
            _stop(proc, grace=5.0)
        self._processes.clear()
        if self._built:
            self.topology.close()
            with contextlib.suppress(Exception):
                for pid in _run(["ip", "netns", "pids", self.internet_ns], check=False).stdout.split():
                    with contextlib.suppress(ProcessLookupError, ValueError):
                        os.kill(int(pid), 9)
                _run(["ip", "netns", "del", self.internet_ns], check=False)
            self._built = False

    # -- running things ------------------------------------------------------------------

    def argv(self, ns: str, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", ns, *argv]

    def spawn(self, ns: str, argv: Sequence[str], *, stdout: int | IO[Any] | None = None,
              stderr: int | IO[Any] | None = None) -> subprocess.Popen[Any]:
        proc = subprocess.Popen(self.argv(ns, argv), stdout=stdout, stderr=stderr,
                                start_new_session=True)
        self._processes.append(proc)
        return proc

    def run(self, ns: str, argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(ns, argv), capture_output=True, text=True,
                              timeout=timeout, check=False)

    def start_server(self, *extra: str, log: Path | None = None) -> subprocess.Popen[Any]:
        from tquic.bond.auth import hash_token

        clients = self.workdir / "clients.toml"
        clients.write_text(f'[[client]]\nname = "site1"\ntoken_sha256 = "{hash_token(TOKEN)}"\n'
                           f'[[client]]\nname = "site2"\ntoken_sha256 = "{hash_token(TOKEN2)}"\n')
        out = open(log or self.workdir / "server.log", "wb")  # noqa: SIM115 - kept by the child
        return self.spawn(self.server_ns, tquic_argv(
            "bond", "server", "--listen", "0.0.0.0:4433", "--cert", str(self.cert), "--key",
            str(self.key), "--pool", POOL, "--clients", str(clients), "--nat", *extra),
            stdout=out, stderr=out)

    def start_client(self, *extra: str, links: Sequence[str] = ("%wan1", "%wan2"),
                     tun: str = "bond0", token: str = TOKEN, routes: Sequence[str] = ("10.88.0.0/24",),
                     log: Path | None = None) -> subprocess.Popen[Any]:
        out = open(log or self.workdir / f"client-{tun}.log", "wb")  # noqa: SIM115
        argv = ["bond", "client", "--server", "10.77.1.2:4433", "--insecure", "--token", token,
                "--tun", tun, "--state-dir", str(self.workdir / f"state-{tun}")]
        for link in links:
            argv += ["--link", link]
        for route in routes:
            argv += ["--route", route]
        return self.spawn(self.site_ns, tquic_argv(*argv, *extra), stdout=out, stderr=out)

    def wait_for(self, path: Path, text: str, timeout: float = 15.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if text in path.read_text(errors="replace"):
                    return True
            time.sleep(0.1)
        return False
