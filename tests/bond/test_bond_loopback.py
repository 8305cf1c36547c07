"""The bond daemons end to end over loopback: real QUIC, UDP stand-ins for the TUNs.

What a site would see: packets from its applications reach the internet side
with the tunnel address as source, answers come back, a second site gets its
own address, spoofed sources and other sites are blocked, bad tokens refused.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from bond_harness import hash_token, ipv4_udp, running_client, running_server, write_certs

from tquic.bond.config import ClientEntry

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_certs(tmp_path_factory.mktemp("bondcerts"))


def _src_dst(packet: bytes) -> tuple[str, str]:
    return socket.inet_ntoa(packet[12:16]), socket.inet_ntoa(packet[16:20])


def test_packets_cross_the_tunnel_both_ways_with_an_assigned_address(certs: Path) -> None:
    async def main() -> None:
        async with running_server(certs) as server, running_client(
                server.bond.port, ["127.0.0.1", "127.0.0.2"]) as client:
            status = client.bond.status()
            assert status.tunnel is not None
            assigned = status.tunnel.addresses[0].split("/")[0]
            assert assigned.startswith("10.99.0.") and assigned != "10.99.0.1"
            assert "seq" in status.tunnel.extensions
            # Up: an application's packet leaves the server's TUN unchanged.
            for i in range(50):
                client.apps.send(client.device, ipv4_udp(assigned, "192.0.2.50", b"up%d" % i))
            got = await server.internet.drain(1.0)
            assert len(got) == 50
            assert all(_src_dst(p) == (assigned, "192.0.2.50") for p in got)
            assert sorted(p[28:] for p in got) == sorted(b"up%d" % i for i in range(50))
            # Down: the internet's answer reaches the application.
            for i in range(50):
                server.internet.send(server.device, ipv4_udp("192.0.2.50", assigned, b"dn%d" % i))
            back = await client.apps.drain(1.0)
            assert [p[28:] for p in back] == [b"dn%d" % i for i in range(50)]  # in order
            # Both links joined the connection.
            await asyncio.sleep(1.5)
            links = client.bond.status().links
            assert [lk.state for lk in links] == ["up", "up"], client.bond.status().log
            srv = server.bond.status()
            assert len(srv.clients) == 1 and srv.clients[0].tunnel.packets_in == 50

    asyncio.run(main())


def test_spoofed_sources_are_dropped_and_counted(certs: Path) -> None:
    async def main() -> None:
        async with running_server(certs) as server, running_client(server.bond.port) as client:
            status = client.bond.status()
            assert status.tunnel is not None
            assigned = status.tunnel.addresses[0].split("/")[0]
            client.apps.send(client.device, ipv4_udp("10.99.0.77", "192.0.2.50", b"spoof"))
            client.apps.send(client.device, ipv4_udp(assigned, "192.0.2.50", b"honest"))
            got = await server.internet.drain(1.0)
            assert [p[28:] for p in got] == [b"honest"]
            assert server.bond.status().clients[0].tunnel.spoofed == 1

    asyncio.run(main())


def test_wrong_or_missing_token_is_refused_and_rate_limited(certs: Path) -> None:
    async def main() -> None:
        async with running_server(certs, per_minute=2) as server:
            async with running_client(server.bond.port, token="wrong", wait=False) as client:
                assert await asyncio.wait_for(client.task, 10) == 3
                assert client.bond.refused is not None and client.bond.refused.status == 403
            async with running_client(server.bond.port, token=None, wait=False) as client:
                assert await asyncio.wait_for(client.task, 10) == 3
                assert client.bond.refused is not None and client.bond.refused.status == 401
            # Two failures from 127.0.0.1 this minute: the next attempt is not even checked.
            async with running_client(server.bond.port, wait=False) as client:
                await asyncio.sleep(3)
                assert client.bond.refused is not None and client.bond.refused.status == 429
            status = server.bond.status()
            assert status.clients == () and status.auth_failures >= 3

    asyncio.run(main())


def test_two_sites_get_their_own_addresses_and_are_isolated(certs: Path) -> None:
    entries = (ClientEntry("home", hash_token("home-token")),
               ClientEntry("office", hash_token("office-token"), reach=("home",)))

    async def main() -> None:
        async with running_server(certs, clients=entries, token=None) as server, \
                running_client(server.bond.port, token="home-token") as home, \
                running_client(server.bond.port, token="office-token") as office:
            a = home.bond.status().tunnel
            b = office.bond.status().tunnel
            assert a is not None and b is not None
            home_ip, office_ip = a.addresses[0].split("/")[0], b.addresses[0].split("/")[0]
            assert home_ip != office_ip
            # office may reach home; home may not reach office (isolated by default).
            office.apps.send(office.device, ipv4_udp(office_ip, home_ip, b"hello home"))
            assert (await home.apps.receive(3))[28:] == b"hello home"
            home.apps.send(home.device, ipv4_udp(home_ip, office_ip, b"hello office"))
            assert await office.apps.drain(0.7) == []
            names = {c.name: c for c in server.bond.status().clients}
            assert names["home"].tunnel.isolated == 1

    asyncio.run(main())


def test_too_big_packet_gets_icmp_packet_too_big(certs: Path) -> None:
    async def main() -> None:
        async with running_server(certs) as server, running_client(server.bond.port) as client:
            status = client.bond.status()
            assert status.tunnel is not None
            assigned = status.tunnel.addresses[0].split("/")[0]
            mtu = status.tunnel.mtu
            client.apps.send(client.device, ipv4_udp(assigned, "192.0.2.50", b"x" * mtu))
            answer = await client.apps.receive(3)
            assert answer[9] == 1 and answer[20] == 3 and answer[21] == 4  # ICMP 3/4
            assert int.from_bytes(answer[26:28], "big") == mtu  # next-hop MTU
            assert _src_dst(answer)[1] == assigned
            assert await server.internet.drain(0.3) == []

    asyncio.run(main())


def test_reload_and_steering_change_links_without_dropping_the_tunnel(certs: Path) -> None:
    from bond_harness import client_cfg

    from tquic.bond.links_config import BondConfigError

    async def main() -> None:
        async with running_server(certs) as server, running_client(
                server.bond.port, ["127.0.0.1", "127.0.0.2"]) as client:
            bond = client.bond
            for _ in range(40):
                if [lk.state for lk in bond.status().links] == ["up", "up"]:
                    break
                await asyncio.sleep(0.1)
            new = client_cfg(server.bond.port, ["127.0.0.1", "127.0.0.2,role=backup,weight=3"])
            bond._config_loader = lambda: new
            bond.reload()  # as SIGHUP does
            await asyncio.sleep(1.2)
            second = bond.status().links[1]
            assert (second.effective_role, second.state, second.weight) == ("backup", "standby", 3)

            def bad() -> object:
                raise BondConfigError("link[1].role", "'x'; write primary, backup or never")

            bond._config_loader = bad
            bond.reload()
            assert "reload refused, nothing changed" in bond.status().log[-1]
            bond.link_down("127.0.0.2")
            await asyncio.sleep(1.2)
            assert bond.status().links[1].state == "disabled"
            # The tunnel never dropped: one connection, packets still flow.
            status = bond.status()
            assert status.connected and status.tunnel is not None
            assigned = status.tunnel.addresses[0].split("/")[0]
            client.apps.send(client.device, ipv4_udp(assigned, "192.0.2.50", b"still here"))
            assert (await server.internet.receive(3))[28:] == b"still here"
            assert sum("connected to" in line for line in status.log) == 1

    asyncio.run(main())
