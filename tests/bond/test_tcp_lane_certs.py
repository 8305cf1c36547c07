"""The TCP lane takes the tunnel's credentials: a client whose only credential is its
TLS client certificate (tquic.bond.credentials) opens lane streams exactly as it opens
its CONNECT-IP tunnel (the certificate the TLS layer verified names the client,
RFC 8446 §4.4.2); a connection with neither a certificate nor a token gets 401."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from bond_harness import running_client, running_server, write_certs
from lane_rig import echo, tcp_target

from tquic.bond.config import ClientEntry
from tquic.bond.tcp_lane import TargetPolicy
from tquic.bond.tcp_lane.opener import H3Opener, LaneConnectError
from tquic.bond.tcp_lane.socks_wire import AddressType, Reply, SocksAddress
from tquic.core.config import QuicConfiguration
from tquic.crypto.tls.certs import (
    certificate_to_pem,
    generate_ca,
    issue_certificate,
    private_key_to_pem,
)
from tquic.h3.aio import connect_h3
from tquic.h3.settings import H3Config

pytestmark = pytest.mark.timeout(60)

LOOPBACK = TargetPolicy.build(allow=["127.0.0.0/8"])


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = write_certs(tmp_path_factory.mktemp("lanepki"))
    ca, ca_key = generate_ca("lane clients CA")
    (d / "ca.pem").write_bytes(certificate_to_pem(ca))
    cert, key = issue_certificate(ca, ca_key, ("site1",), common_name="site1")
    (d / "site1.pem").write_bytes(certificate_to_pem(cert))
    (d / "site1.key").write_bytes(private_key_to_pem(key))
    return d


async def _echoes(opener: H3Opener, port: int) -> bytes:
    tunnel = await opener.open_tcp(SocksAddress("127.0.0.1", port, AddressType.IPV4))
    tunnel.send(b"ping over the lane", end_stream=True)
    received = b""
    while len(received) < 18:
        chunk = await asyncio.wait_for(tunnel.receive(), 10)
        if not chunk:
            break
        received += chunk
    return received


def test_a_certificate_only_client_gets_its_lane(pki: Path) -> None:
    async def main() -> None:
        async with tcp_target(echo) as port, running_server(
                pki, token=None, clients=(ClientEntry("site1"),),
                client_ca=str(pki / "ca.pem"), lane=LOOPBACK) as server, running_client(
                server.bond.port, token=None, cert=str(pki / "site1.pem"),
                key=str(pki / "site1.key")) as client:
            # The opener the daemon's SOCKS/redirect listeners use, with its token (None).
            opener = H3Opener(client.bond.h3, token=client.bond.config.token,
                              server_authority="localhost", timeout=10)
            assert client.bond.config.token is None and server.bond.lane is not None
            assert await _echoes(opener, port) == b"ping over the lane"
            assert server.bond.lane.counters.accepted == 1
            assert server.bond.lane.counters.refused_auth == 0

    asyncio.run(asyncio.wait_for(main(), 45))


def test_a_connection_with_neither_certificate_nor_token_gets_401(pki: Path) -> None:
    async def main() -> None:
        async with tcp_target(echo) as port, running_server(pki, lane=LOOPBACK) as server:
            quic = QuicConfiguration(is_client=True, verify_peer=False, server_name="localhost")
            h3 = await connect_h3("127.0.0.1", server.bond.port, quic,
                                  h3_config=H3Config(enable_connect_protocol=True,
                                                     enable_datagrams=True), timeout=10)
            try:
                opener = H3Opener(h3, token=None, server_authority="localhost", timeout=10)
                with pytest.raises(LaneConnectError) as info:
                    await _echoes(opener, port)
                assert info.value.status == 401 and info.value.reply == Reply.NOT_ALLOWED
                assert server.bond.lane is not None
                assert server.bond.lane.counters.refused_auth == 1
                assert server.bond.lane.counters.accepted == 0
            finally:
                await asyncio.wait_for(h3.aclose(), 5)

    asyncio.run(asyncio.wait_for(main(), 45))
