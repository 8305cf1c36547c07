"""The bond client's links in the control plane: each link's retransmitted packets and
ECN state come from its path's PathStats (RFC 9000 §13.4.2 for ECN validation) into
``tquic bond status``, the JSON API and /metrics; ``POST /reopen`` opens the path of
every link that is down at once instead of after its backoff, and says which."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from bond_harness import Client, running_client, running_server, write_certs

from tquic.bond import links as bond_links
from tquic.cli.bond_view import BondView
from tquic.control.client import ControlClient, ControlClientError
from tquic.control.server import ControlPlane, start_control

pytestmark = pytest.mark.timeout(60)

ECN_STATES = ("testing", "unknown", "capable", "failed")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_certs(tmp_path_factory.mktemp("linkctl"))


class _Relay(asyncio.DatagramProtocol):
    """A UDP relay in front of the server that can black-hole both directions: what is
    sent meanwhile is lost for certain (no random loss)."""

    def __init__(self, server: tuple[str, int]) -> None:
        self.server = server
        self.blackhole = False
        self.transport: Any = None
        self._upstream: dict[tuple[str, int], Any] = {}
        self._opening: list[asyncio.Future[None]] = []

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.blackhole:
            return
        upstream = self._upstream.get(addr)
        if upstream is not None:
            upstream.sendto(data)
            return
        relay = self

        class Back(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, _from: tuple[str, int]) -> None:
                if not relay.blackhole:
                    relay.transport.sendto(data, addr)

        loop = asyncio.get_running_loop()
        pending: list[bytes] = [data]
        self._upstream[addr] = _Pending(pending)

        async def open_upstream() -> None:
            transport, _ = await loop.create_datagram_endpoint(Back, remote_addr=self.server)
            self._upstream[addr] = transport
            for queued in pending:
                transport.sendto(queued)

        self._opening.append(asyncio.ensure_future(open_upstream()))

    def close(self) -> None:
        for task in self._opening:
            task.cancel()
        for upstream in self._upstream.values():
            upstream.close()
        if self.transport is not None:
            self.transport.close()


class _Pending:
    """Datagrams of a new client address while its upstream socket is being opened."""

    def __init__(self, queue: list[bytes]) -> None:
        self.queue = queue

    def sendto(self, data: bytes) -> None:
        self.queue.append(data)

    def close(self) -> None:
        pass


@contextlib.asynccontextmanager
async def relay_to(port: int) -> AsyncIterator[tuple[_Relay, int]]:
    loop = asyncio.get_running_loop()
    relay = _Relay(("127.0.0.1", port))
    transport, _ = await loop.create_datagram_endpoint(lambda: relay,
                                                       local_addr=("127.0.0.1", 0))
    try:
        yield relay, int(transport.get_extra_info("sockname")[1])
    finally:
        relay.close()


@contextlib.asynccontextmanager
async def control_of(daemon: Any, path: Path) -> AsyncIterator[ControlClient]:
    view = BondView(daemon, lambda: daemon.config)
    plane: ControlPlane = await start_control(view, view, str(path), interval=0.2)
    try:
        yield ControlClient(str(path))
    finally:
        await plane.close()


async def off_loop(call: Callable[[], Any]) -> Any:
    """A blocking ControlClient call, off the loop that serves it."""
    return await asyncio.get_running_loop().run_in_executor(None, call)


async def wait_for(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.05)


def _row(client: Client, name: str) -> Any:
    return next(r for r in client.bond.status().links if r.name == name)


def test_retransmissions_and_ecn_reach_the_api_and_metrics(certs: Path, tmp_path: Path) -> None:
    async def main() -> None:
        async with running_server(certs) as server, relay_to(server.bond.port) as (
                relay, port), running_client(port, ["127.0.0.1,name=wan"]) as client, \
                control_of(client.bond, tmp_path / "c.sock") as api:
            h3 = await client.bond.h3()
            # Stream data sent into the black hole is lost for certain, and resent
            # once the path answers again (RFC 9002 §6).
            relay.blackhole = True
            upload = asyncio.ensure_future(h3.request(
                "POST", f"https://localhost:{port}/upload", body=bytes(200_000)))
            await asyncio.sleep(0.4)
            relay.blackhole = False
            await asyncio.wait_for(upload, 20)
            await wait_for(lambda: _row(client, "wan").packets_retransmitted > 0,
                           "no retransmission counted on the link")
            row = _row(client, "wan")
            assert 0 < row.packets_retransmitted <= row.packets_lost <= row.packets_sent
            assert row.ecn in ECN_STATES

            def shown() -> tuple[Any, str]:
                return api.get("/links/wan")["link"], api.get("/metrics")

            # The control plane samples every 0.2 s: wait for a sample after the loss.
            deadline = asyncio.get_running_loop().time() + 10
            while True:
                link, metrics = await off_loop(shown)
                if link["packets_retransmitted"] > 0:
                    break
                assert asyncio.get_running_loop().time() < deadline, link
                await asyncio.sleep(0.1)
            now = _row(client, "wan")  # counters only grow: the sample is between
            assert 0 < link["packets_retransmitted"] <= now.packets_retransmitted
            assert 0 < link["packets_sent"] <= now.packets_sent
            assert link["ecn"] == now.ecn
            value = next(line for line in metrics.splitlines() if line.startswith(
                'tquic_path_retransmitted_packets_total{client="",link="wan"}'))
            assert 0 < float(value.split()[-1]) <= now.packets_retransmitted
            # The server's view of the same connection's path: real counters too.
            (session,) = server.bond.status().clients
            assert session.paths[0].packets_sent > 0
            assert session.paths[0].ecn in ECN_STATES

    asyncio.run(asyncio.wait_for(main(), 50))


def test_reopen_opens_a_down_link_now_and_names_it(certs: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # A link whose path is lost waits its backoff before it is re-opened; a minute here,
    # so only /reopen can bring it back within the test.
    monkeypatch.setattr(bond_links, "_BACKOFF", (60.0,) * 5)

    async def main() -> None:
        async with running_server(certs) as server, running_client(
                server.bond.port, ["127.0.0.1,name=a", "127.0.0.2,name=b"]) as client, \
                control_of(client.bond, tmp_path / "c.sock") as api:
            await wait_for(lambda: _row(client, "a").state == "up" and
                           _row(client, "b").state == "up", "both links up")
            # The ECN state of a direct loopback path, as its PathStats says.
            await wait_for(lambda: _row(client, "b").ecn in ECN_STATES, "ECN state shown")
            links = client.bond.links
            assert links is not None
            path_id = links.find("b").path_id
            assert path_id is not None
            proto = links.proto
            proto.quic.abandon_path(path_id, now=asyncio.get_running_loop().time())
            proto.flush()
            await wait_for(lambda: _row(client, "b").state == "down", "link b down")
            with pytest.raises(ControlClientError) as info:
                await off_loop(lambda: api.request("POST", "/reopen", {"link": "a"}))
            assert info.value.status == 409 and "has a path" in info.value.message
            answer = await off_loop(lambda: api.request("POST", "/reopen"))
            assert answer["reopened"] == ["b"]
            await wait_for(lambda: _row(client, "b").state == "up", "link b re-opened")
            answer = await off_loop(lambda: api.request("POST", "/reopen"))
            assert answer["reopened"] == []

    asyncio.run(asyncio.wait_for(main(), 50))


def test_the_tunnels_fec_counters_reach_the_api_and_the_watch_view() -> None:
    from tquic.bond.fec.stats import FecStats
    from tquic.bond.reorder import DELAY_BUCKETS, ReorderStats
    from tquic.bond.status import BondStatus, TunnelStatus
    from tquic.control.render import status_text

    reorder = ReorderStats(0.01, 100, 90, 10, 0, 1, 2, 0, (4, 6) + (0,) * (len(DELAY_BUCKETS) - 1))
    tunnel = TunnelStatus(("10.99.0.2/32",), (), ("seq", "fec"), 1401, 100, 100_000, 90,
                          90_000, 0, 0, 0, 0, reorder,
                          FecStats(sources=80, source_bytes=80_000, repairs_sent=8,
                                   repair_bytes=8_000, recovered=3))

    class Daemon:
        def status(self) -> BondStatus:
            return BondStatus("client", 5.0, True, tunnel=tunnel)

    info = BondView(Daemon()).tunnel()
    assert info is not None
    assert info.fec["sources"] == 80 and info.fec["repairs_sent"] == 8
    assert info.fec["recovered"] == 3
    assert not any(k.endswith("_bytes") for k in info.fec)  # packet counters only
    text = status_text({"daemon": "bond client"}, {"links": []}, info.to_json(), bars=True)
    assert "fec: sources 80, repairs_sent 8" in text and "recovered 3" in text
    assert "held 10, late 2, given up 1" in text and "wait bound 10.0 ms" in text
