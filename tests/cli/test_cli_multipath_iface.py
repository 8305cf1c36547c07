"""``tquic client --path LOCAL_ADDR%IFACE`` really sends over IFACE (SO_BINDTODEVICE).

The test builds its own little network (root only; skipped cleanly otherwise):
two network namespaces, a client and a server, joined by two veth pairs, link 1
(10.99.1.0/24) and link 2 (10.99.2.0/24).  The server listens on its link-1
address only.  The client's second path is ``10.99.2.2%<link 2 veth>``: without
the interface pin its packets to the server's link-1 address would follow the
routing table over link 1; pinned, they must leave over link 2 (the client
namespace has a default route on link 2 that only a socket bound to that device
can use, the server answers ARP for its link-1 address on link 2 -- Linux's weak
host model).  The veth byte counters then show each link carried its path.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_run import running_server

# Long enough to outlast path 1's validation on unshaped veths (the request goes
# out at once, the second path opens alongside).
SIZE = 8_000_000
SERVER_ADDR = "10.99.1.1"

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0 or shutil.which("ip") is None,
    reason="needs Linux, root and iproute2 to create network namespaces and veth pairs")


@dataclass(frozen=True)
class Net:
    client_ns: str
    server_ns: str
    client_if: tuple[str, str]  # (link 1, link 2) veth ends in the client namespace


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10,
                            check=False)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")


@pytest.fixture(scope="module")
def net() -> Iterator[Net]:
    tag = f"tq{os.getpid() % 10_000_000}"
    cns, sns = f"{tag}c", f"{tag}s"
    c1, c2, s1, s2 = f"{tag}c1", f"{tag}c2", f"{tag}s1", f"{tag}s2"
    created: list[str] = []
    try:
        for ns in (cns, sns):
            _ip("netns", "add", ns)
            created.append(ns)
        for client_end, server_end, subnet in ((c1, s1, 1), (c2, s2, 2)):
            _ip("link", "add", client_end, "netns", cns, "type", "veth",
                "peer", "name", server_end, "netns", sns)
            _ip("-n", cns, "addr", "add", f"10.99.{subnet}.2/24", "dev", client_end)
            _ip("-n", sns, "addr", "add", f"10.99.{subnet}.1/24", "dev", server_end)
            _ip("-n", cns, "link", "set", client_end, "up")
            _ip("-n", sns, "link", "set", server_end, "up")
        for ns in (cns, sns):
            _ip("-n", ns, "link", "set", "lo", "up")
        # Only a socket bound to link 2 can use this route (the /24 of link 1 is more
        # specific for everybody else).
        _ip("-n", cns, "route", "add", "default", "dev", c2)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        for ns in created:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        pytest.skip(f"cannot build the test network: {exc}")
    try:
        yield Net(cns, sns, (c1, c2))
    finally:
        for ns in created:  # deleting a namespace deletes its veth ends too
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def _in_ns(ns: str, *args: str) -> list[str]:
    return ["ip", "netns", "exec", ns, sys.executable, "-m", "tquic", *args]


def _tx_bytes(ns: str, dev: str) -> int:
    out = subprocess.run(["ip", "netns", "exec", ns, "cat",
                          f"/sys/class/net/{dev}/statistics/tx_bytes"],
                         capture_output=True, text=True, timeout=10, check=True)
    return int(out.stdout)


@pytest.fixture(scope="module")
def served(net: Net, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    certs = tmp_path_factory.mktemp("certs")
    made = subprocess.run([sys.executable, "-m", "tquic", "certs", str(certs)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert made.returncode == 0, made.stderr
    root = tmp_path_factory.mktemp("root")
    (root / "big.bin").write_bytes(os.urandom(SIZE))
    with running_server(_in_ns(net.server_ns, "server", "--listen", f"{SERVER_ADDR}:0", "--cert",
                               str(certs / "cert.pem"), "--key", str(certs / "key.pem"),
                               "--root", str(root))) as port:
        yield port, root


def test_a_path_pinned_to_an_interface_carries_its_traffic_over_that_interface(
        net: Net, served: tuple[int, Path]) -> None:
    port, root = served
    link1, link2 = net.client_if
    before = (_tx_bytes(net.client_ns, link1), _tx_bytes(net.client_ns, link2))
    result = subprocess.run(
        _in_ns(net.client_ns, "client", f"https://{SERVER_ADDR}:{port}/big.bin", "--insecure",
               "--json", "--timeout", "10", "--path", f"10.99.1.2%{link1}",
               "--path", f"10.99.2.2%{link2}"),
        capture_output=True, text=True, timeout=90, check=False)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    (fetched,) = report["results"]
    assert fetched["error"] is None and fetched["bytes"] == SIZE
    assert fetched["sha256"] == hashlib.sha256((root / "big.bin").read_bytes()).hexdigest()
    paths = {p["path_id"]: p for p in report["paths"]}
    assert set(paths) == {0, 1}, report
    assert paths[1]["local"].startswith("10.99.2.2:")
    assert paths[1]["state"] == "validated"
    assert paths[1]["bytes_received"] > SIZE // 100, paths
    sent = (_tx_bytes(net.client_ns, link1) - before[0],
            _tx_bytes(net.client_ns, link2) - before[1])
    # Path 1's packets (ACKs, PATH_CHALLENGE/RESPONSE, ...) left over link 2, as pinned:
    # its bytes sent are on link 2's counter, not on link 1's route to the server.
    assert sent[1] >= paths[1]["bytes_sent"] > 0, (sent, paths)
    assert sent[0] >= paths[0]["bytes_sent"] > 0, (sent, paths)
