"""``tquic bond server --workers 2`` in network namespaces (root only; skipped with the
reason): two sites on distinct workers reach the internet behind the server, a
multipath download of several MB stays on its worker (a packet steered to the other
worker would be answered with a stateless reset or dropped), a killed worker is
reported and restarted and its site comes back at once (the new worker resets the old
connection) while the other worker's site carries on, and SIGTERM leaves no TUN,
route or nftables table behind."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tquic.control.client import ControlClient, ControlClientError
from tquic.testing.bond_lab import INTERNET, INTERNET2, TOKEN2, BondLab
from tquic.testing.netns import LinkSpec, unavailable_reason

pytestmark = pytest.mark.timeout(240)

BLOB = 6 << 20


def _skip_reason() -> str | None:
    reason = unavailable_reason()
    if reason is not None:
        return reason
    for tool in ("curl", "nft"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian package {'nftables' if tool == 'nft' else tool})"
    if not Path("/dev/net/tun").exists():
        return "/dev/net/tun is missing (no TUN support)"
    return None


def _until(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.2)


class Rig:
    def __init__(self, lab: BondLab) -> None:
        self.lab = lab
        self.control = ControlClient(str(lab.workdir / "control.sock"), timeout=5.0)
        self.server: subprocess.Popen[Any] | None = None
        self.clients: dict[str, subprocess.Popen[Any]] = {}

    def status(self) -> dict[str, Any]:
        try:
            value: dict[str, Any] = self.control.get("/status")
        except ControlClientError:
            return {}
        return value

    def worker_of(self, client: str) -> int | None:
        for row in self.status().get("workers", []):
            if client in row["clients"] and row["state"] == "up":
                return int(row["index"])
        return None

    def log(self, name: str) -> str:
        return (self.lab.workdir / name).read_text(errors="replace")


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    reason = _skip_reason()
    if reason is not None:
        pytest.skip(reason)
    workdir = tmp_path_factory.mktemp("bondworkers")
    with BondLab([LinkSpec(40), LinkSpec(40)], workdir) as lab:
        (workdir / "www").mkdir()
        (workdir / "www" / "blob").write_bytes(os.urandom(BLOB))
        lab.spawn(lab.internet_ns, [sys.executable, "-m", "http.server", "--bind", "0.0.0.0",
                                    "--directory", str(workdir / "www"), "8080"],
                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rig = Rig(lab)
        rig.server = lab.start_server("--workers", "2", "--control", str(workdir / "control.sock"))
        assert lab.wait_for(workdir / "server.log", "server listening", 40), rig.log("server.log")
        yield rig


def _placed(rig: Rig, client: str, timeout: float = 20.0) -> int:
    """The worker that holds ``client``'s session, once the status shows it."""
    found: list[int] = _until(f"{client} in a worker's status", lambda: (
        (w := rig.worker_of(client)) is not None and [w]), timeout)
    return found[0]


def _start_site2(rig: Rig, attempt: str) -> subprocess.Popen[Any]:
    return rig.lab.start_client(links=("%wan2",), tun="bond1", routes=(f"{INTERNET2}/32",),
                                token=TOKEN2, log=rig.lab.workdir / f"client-bond1-{attempt}.log")


def _download(rig: Rig, address: str, name: str) -> subprocess.Popen[Any]:
    return subprocess.Popen(rig.lab.argv(rig.lab.site_ns, [
        "curl", "-sS", "--max-time", "60", "-o", str(rig.lab.workdir / name),
        f"http://{address}:8080/blob"]), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _check_download(rig: Rig, proc: subprocess.Popen[Any], name: str) -> None:
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    got = (rig.lab.workdir / name).read_bytes()
    want = (rig.lab.workdir / "www" / "blob").read_bytes()
    assert len(got) == BLOB and hashlib.sha256(got).digest() == hashlib.sha256(want).digest()


def _site2_on(rig: Rig, accept: Callable[[int], bool], tag: str) -> tuple[int, str]:
    """Start site2 until its session lands on a worker ``accept`` takes: a new
    connection's Initial goes where the kernel's 4-tuple hash puts it, so each start
    (a new source port) has a 1/2 chance with two workers.  Returns (worker, log)."""
    lab = rig.lab
    for attempt in range(30):
        site2 = _start_site2(rig, f"{tag}{attempt}")
        log = f"client-bond1-{tag}{attempt}.log"
        assert lab.wait_for(lab.workdir / log, "tunnel up", 30), rig.log(log)
        worker = _placed(rig, "site2")
        if accept(worker):
            rig.clients["site2"] = site2
            return worker, log
        site2.send_signal(signal.SIGTERM)
        site2.wait(timeout=20)
        _until("site2's tunnel closed", lambda: rig.worker_of("site2") is None, 20)
    raise AssertionError("30 connections of site2 all landed on the same worker")


def test_two_sites_on_distinct_workers_download_through_their_own_worker(rig: Rig) -> None:
    lab = rig.lab
    rig.clients["site1"] = lab.start_client()  # wan1 + wan2: a multipath connection
    assert lab.wait_for(lab.workdir / "client-bond0.log", "tunnel up", 30), \
        rig.log("client-bond0.log")
    assert lab.wait_for(lab.workdir / "client-bond0.log", "link wan2 (%wan2): up", 15)
    first = _placed(rig, "site1")
    second, log = _site2_on(rig, lambda w: w != first, "a")
    rig.second_log = log  # type: ignore[attr-defined]
    ups = rig.log("client-bond0.log").count("tunnel up"), rig.log(log).count("tunnel up")
    # Both tunnels carry several MB at once, site1's over both of its links.
    one = _download(rig, INTERNET, "one")
    two = _download(rig, INTERNET2, "two")
    _check_download(rig, one, "one")
    _check_download(rig, two, "two")
    assert rig.worker_of("site1") == first and rig.worker_of("site2") == second

    def counted() -> dict[str, Any] | None:  # the workers' snapshots are up to 1 s old
        clients = {c["name"]: c for c in rig.control.get("/clients")["clients"]}
        return clients if all(clients.get(name, {}).get("bytes_sent", 0) > BLOB
                              for name in ("site1", "site2")) else None

    clients = _until("both downloads in the workers' counters", counted, 10)
    assert clients["site1"]["paths"] == 2, clients["site1"]
    # No packet reached the wrong worker: a stray one would have been answered with a
    # stateless reset (the workers share the key) or dropped, and the transfer or the
    # tunnel would have broken.
    assert (rig.log("client-bond0.log").count("tunnel up"),
            rig.log(log).count("tunnel up")) == ups
    rows = rig.status()["workers"]
    assert [r["tun"] for r in rows] == ["bondsrv0", "bondsrv1"]
    assert all(r["state"] == "up" and r["restarts"] == 0 for r in rows)


def test_a_killed_worker_is_restarted_and_its_site_comes_back_at_once(rig: Rig) -> None:
    if "site2" not in rig.clients:
        pytest.skip("needs the sites of the previous test")
    lab = rig.lab
    index = rig.worker_of("site2")
    assert index is not None
    row = rig.status()["workers"][index]
    killed = time.monotonic()
    os.kill(int(row["pid"]), signal.SIGKILL)
    assert lab.wait_for(lab.workdir / "server.log", f"worker {index} (pid {row['pid']}, tun "
                        f"bondsrv{index}) was killed by signal 9", 20), rig.log("server.log")
    assert lab.wait_for(lab.workdir / "server.log", f"worker {index} restarted", 40), \
        rig.log("server.log")[-3000:]
    # The site's next packet reaches the new worker (the parent kept the socket), which
    # answers with a stateless reset under the shared key: the site reconnects at once
    # instead of after its 30 s idle timeout.  (Its address may change with the worker:
    # the TCP connection that sent that packet does not survive; a new one works.)
    nudge = _download(rig, INTERNET2, "nudge")
    log = lab.workdir / rig.second_log  # type: ignore[attr-defined]
    _until("site2's second tunnel", lambda: log.read_text().count("tunnel up") >= 2, 60)
    assert time.monotonic() - killed < 25.0, "the site waited for its idle timeout"
    nudge.kill()
    nudge.wait(timeout=10)
    _placed(rig, "site2")
    _check_download(rig, _download(rig, INTERNET2, "again"), "again")
    rows = _until("the restart in the status (sampled each second)", lambda: (
        (r := rig.status()["workers"])[index]["restarts"] == 1 and r), 10)
    assert rows[index]["state"] == "up"
    assert rig.worker_of("site1") is not None  # the other worker's site is still served
    if _placed(rig, "site2") != index:  # the restarted worker serves a site too
        old = rig.clients.pop("site2")
        old.send_signal(signal.SIGTERM)
        old.wait(timeout=30)
        _site2_on(rig, lambda w: w == index, "b")
        _check_download(rig, _download(rig, INTERNET2, "third"), "third")


def test_zz_sigterm_removes_every_tun_route_and_nft_table(rig: Rig) -> None:
    assert rig.server is not None
    rig.server.send_signal(signal.SIGTERM)
    assert rig.server.wait(timeout=30) == 0
    lab = rig.lab
    links = lab.run(lab.server_ns, ["ip", "-o", "link"], 10).stdout
    routes = lab.run(lab.server_ns, ["ip", "route"], 10).stdout
    tables = lab.run(lab.server_ns, ["nft", "list", "tables"], 10).stdout
    assert "bondsrv" not in links and "10.99." not in routes and "tquic_bond" not in tables
    assert "server stopped" in rig.log("server.log")
