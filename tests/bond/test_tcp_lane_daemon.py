"""The TCP lane inside the bond daemons: ``tquic bond client --socks`` through
``tquic bond server``'s CONNECT dispatch, the lane's config keys and flags."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from bond_harness import TOKEN, Tap, write_certs
from lane_rig import HttpTarget, curl, http_body, tcp_target

from tquic.bond.client import BondClient
from tquic.bond.config import ServerConfig, client_config, server_config
from tquic.bond.links_config import BondConfigError
from tquic.bond.server import BondServer
from tquic.bond.tcp_lane import TargetPolicy

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_certs(tmp_path_factory.mktemp("lanecerts"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def daemons(certs: Path, lane: TargetPolicy | None, tmp: Path,
                  **client_keys: object) -> AsyncIterator[tuple[BondServer, BondClient]]:
    internet = Tap()
    config = ServerConfig(listen=("127.0.0.1", 0), cert=str(certs / "cert.pem"),
                          key=str(certs / "key.pem"),
                          pool=(ipaddress.ip_network("10.98.0.0/24"),), token=TOKEN,
                          userspace=True, lane=lane)
    server = BondServer(config, device=internet.device("srv"))
    await server.start()
    values: dict[str, object] = {"server": f"127.0.0.1:{server.port}", "insecure": True,
                                 "link": ["127.0.0.1"], "token": TOKEN, "tun": "none",
                                 "state_dir": str(tmp), **client_keys}
    client = BondClient(client_config(values))
    stop = asyncio.Event()
    task = asyncio.ensure_future(client.run(stop))
    try:
        await asyncio.wait({task, asyncio.ensure_future(client.connected.wait())}, timeout=10,
                           return_when=asyncio.FIRST_COMPLETED)
        assert client.connected.is_set(), f"client did not connect: {client.status().log}"
        yield server, client
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)
        await server.close()
        internet.close()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_bond_client_socks_reaches_a_target_through_the_bond_server(certs: Path,
                                                                      tmp_path: Path) -> None:
    answer, body = http_body(1_000_000)
    socks = _free_port()

    async def main() -> None:
        async with tcp_target(HttpTarget(answer)) as port, daemons(
                certs, TargetPolicy.build(allow=["127.0.0.0/8"]), tmp_path,
                socks=f"127.0.0.1:{socks}", socks_user="u", socks_password="p") as (server,
                                                                                    client):
            code, out, err = await curl("--socks5-hostname", f"u:p@127.0.0.1:{socks}",
                                        f"http://127.0.0.1:{port}/")
            assert code == 0, err
            assert hashlib.sha256(out).digest() == hashlib.sha256(body).digest()
            assert server.lane is not None and server.lane.counters.accepted == 1
            # Both daemons report the lane in their status (the control plane's /status),
            # once the relays have finished (the figures are added at their end).
            for _ in range(100):
                if server.lane.counters.active == 0 and client.lane is not None and (
                        client.lane.socks is not None and client.lane.socks.counters.active == 0):
                    break
                await asyncio.sleep(0.02)
            assert server.status().as_dict()["lane"]["bytes_down"] >= len(answer)
            socks_status = client.status().as_dict()["lane"]["socks"]
            assert socks_status["accepted"] == 1 and socks_status["bytes_down"] == len(answer)
            # Wrong SOCKS password: curl is refused by the site's listener.
            code, _, err = await curl("--socks5-hostname", f"u:bad@127.0.0.1:{socks}",
                                      f"http://127.0.0.1:{port}/")
            assert code != 0
            assert server.lane.counters.accepted == 1

    asyncio.run(asyncio.wait_for(main(), 45))


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_bond_server_default_lane_policy_refuses_its_loopback(certs: Path,
                                                                tmp_path: Path) -> None:
    socks = _free_port()

    async def main() -> None:
        async with tcp_target(HttpTarget(b"HTTP/1.0 200 OK\r\n\r\n")) as port, daemons(
                certs, TargetPolicy(), tmp_path, socks=f"127.0.0.1:{socks}") as (server, _):
            code, _, err = await curl("--socks5-hostname", f"127.0.0.1:{socks}",
                                      f"http://127.0.0.1:{port}/")
            assert code == 97, err  # curl: the SOCKS5 connection could not be completed
            assert err.rstrip().endswith(b"(2)"), err  # SOCKS reply 2: not allowed by ruleset
            assert server.lane is not None and server.lane.counters.refused_policy == 1

    asyncio.run(asyncio.wait_for(main(), 45))


def test_lane_config_keys(certs: Path) -> None:
    base = {"cert": str(certs / "cert.pem"), "key": str(certs / "key.pem"),
            "pool": ["10.98.0.0/24"], "token": "t"}
    config = server_config({**base, "lane_allow": ["192.168.10.0/24"], "lane_ports": ["443"]})
    assert config.lane is not None
    assert config.lane.refusal(ipaddress.ip_address("192.168.10.5"), 443) is None
    assert config.lane.refusal(ipaddress.ip_address("192.168.10.5"), 80) is not None
    assert server_config({**base, "lane": False}).lane is None
    with pytest.raises(BondConfigError, match="lane_allow"):
        server_config({**base, "lane_allow": ["10.0.0.0/33"]})
    with pytest.raises(BondConfigError, match="lane_ports"):
        server_config({**base, "lane_ports": ["http"]})
    client = {"server": "127.0.0.1:4433", "insecure": True, "link": ["127.0.0.1"]}
    with pytest.raises(BondConfigError, match="socks_password"):
        client_config({**client, "socks": "127.0.0.1:1080", "socks_user": "u"})
    with pytest.raises(BondConfigError, match="redirect_interface"):
        client_config({**client, "redirect_interface": "lan0"})
    parsed = client_config({**client, "redirect": "[::]:12345", "redirect_interface": "lan0"})
    assert parsed.redirect == ("::", 12345) and parsed.redirect_interface == "lan0"
