"""Many sites on one server: 40 bond clients at once over loopback (the scale check that
runs in CI; benchmarks/bond_clients.py runs hundreds).  Every client gets its own
address, and a packet from each crosses the tunnel with that source address and comes
back to that client only."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest
from bond_harness import Tap, client_cfg, hash_token, ipv4_udp, running_server, write_certs

from tquic.bond.client import BondClient
from tquic.bond.config import ClientEntry

pytestmark = pytest.mark.timeout(180)

N = 40


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_certs(tmp_path_factory.mktemp("manycerts"))


def test_forty_clients_each_get_their_own_address_and_their_own_packets(certs: Path) -> None:
    entries = tuple(ClientEntry(f"site{i}", hash_token(f"token-{i}")) for i in range(N))

    async def main() -> None:
        async with running_server(certs, token=None, clients=entries,
                                  pool="10.96.0.0/24") as server:
            apps = Tap()
            devices = [apps.device(f"c{i}") for i in range(N)]
            bonds = [BondClient(client_cfg(server.bond.port, ["127.0.0.1"], f"token-{i}"),
                                device=devices[i]) for i in range(N)]
            stop = asyncio.Event()
            tasks = [asyncio.ensure_future(b.run(stop)) for b in bonds]
            try:
                await _exchange(server, apps, devices, bonds)
            finally:
                stop.set()  # all at once: each client's teardown waits for its close
                await asyncio.wait(tasks, timeout=30)
                apps.close()

    asyncio.run(main())


async def _exchange(server: Any, apps: Tap, devices: list[Any], bonds: list[BondClient]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 90
    while not all(b.connected.is_set() for b in bonds):
        assert loop.time() < deadline, [b.status().log[-2:] for b in bonds
                                        if not b.connected.is_set()][:3]
        await asyncio.sleep(0.1)
    addresses = []
    for b in bonds:
        tunnel = b.status().tunnel
        assert tunnel is not None
        addresses.append(tunnel.addresses[0].split("/")[0])
    assert len(set(addresses)) == N
    assert len(server.bond.status().clients) == N
    for i, device in enumerate(devices):
        apps.send(device, ipv4_udp(addresses[i], "192.0.2.9", b"from %d" % i))
    seen: dict[str, bytes] = {}
    while len(seen) < N:
        packet = await server.internet.receive(20)
        src = socket.inet_ntoa(packet[12:16])
        seen[src] = packet[28:]
        # the internet answers: addresses swapped, back into the server's TUN
        server.internet.send(server.device, packet[:12] + packet[16:20] + packet[12:16]
                             + packet[20:])
    assert seen == {a: b"from %d" % i for i, a in enumerate(addresses)}
    # Each answer comes out of the device of the client it was for, and no other.
    ports = {d.local_address[1]: i for i, d in enumerate(devices)}
    got: dict[int, bytes] = {}
    while len(got) < N:
        data, peer = await asyncio.wait_for(loop.sock_recvfrom(apps.sock, 65536), 20)
        i = ports[peer[1]]
        assert socket.inet_ntoa(data[16:20]) == addresses[i]
        got[i] = data[28:]
    assert got == {i: b"from %d" % i for i in range(N)}
