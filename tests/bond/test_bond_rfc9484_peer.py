"""A plain RFC 9484 client (no extension, one path) gets a working tunnel from our server.

The client below is written from the RFC's text alone, with its own byte-level
encoding of the capsules (it does not use tquic.h3.connect_ip or tquic.bond):
extended CONNECT with :protocol connect-ip on the default template's path
(§3, §4.3), ADDRESS_REQUEST for any IPv4 address (§4.7.2), then IP packets as
HTTP Datagrams with Context ID 0 (§6).  It must see only context 0 back.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from bond_harness import TOKEN, ipv4_udp, running_server, write_certs

from tquic.core.config import QuicConfiguration
from tquic.h3.aio import connect_h3
from tquic.h3.settings import H3Config

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_certs(tmp_path_factory.mktemp("rfccerts"))


def _varint(value: int) -> bytes:  # RFC 9000 §16
    if value < 0x40:
        return bytes([value])
    if value < 0x4000:
        return (value | 0x4000).to_bytes(2, "big")
    return (value | 0x80000000).to_bytes(4, "big")


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    size = 1 << (data[pos] >> 6)
    value = int.from_bytes(data[pos:pos + size], "big") & ((1 << (8 * size - 2)) - 1)
    return value, pos + size


def test_a_standard_connect_ip_client_works_against_our_server(certs: Path) -> None:
    async def main() -> None:
        async with running_server(certs) as server:
            config = QuicConfiguration(is_client=True, verify_peer=False,
                                       max_datagram_frame_size=65535)  # no multipath offered
            client = await connect_h3("127.0.0.1", server.bond.port, config,
                                      h3_config=H3Config(enable_datagrams=True))
            try:
                tunnel = await client.connect(
                    f"https://127.0.0.1:{server.bond.port}/.well-known/masque/ip/*/*/",
                    "connect-ip", [("authorization", f"Bearer {TOKEN}")])
                assert dict(tunnel.peer_headers).get(b"capsule-protocol") == b"?1"
                assert b"tquic-bond-ext" not in dict(tunnel.peer_headers)
                # ADDRESS_REQUEST (type 0x02): Request ID 1, IPv4, 0.0.0.0, prefix 32.
                request = _varint(1) + bytes([4, 0, 0, 0, 0, 32])
                tunnel.send(_varint(0x02) + _varint(len(request)) + request)
                assigned = None
                while assigned is None:
                    capsule = await asyncio.wait_for(tunnel.receive_capsule(), 5)
                    assert capsule is not None
                    if capsule.type != 0x01:  # ADDRESS_ASSIGN
                        continue
                    pos = 0
                    while pos < len(capsule.value):
                        rid, pos = _read_varint(capsule.value, pos)
                        version = capsule.value[pos]
                        assert version == 4
                        address = socket.inet_ntoa(capsule.value[pos + 1:pos + 5])
                        pos += 6
                        if rid == 1:
                            assigned = address
                assert assigned is not None and assigned.startswith("10.99.0.")
                # One IP packet up, as context 0 (§6)...
                tunnel.send_datagram(b"\x00" + ipv4_udp(assigned, "198.51.100.7", b"plain"))
                got = await server.internet.receive(5)
                assert got[28:] == b"plain"
                # ... and one down: context 0 too, never an extension context.
                for i in range(5):
                    server.internet.send(server.device,
                                         ipv4_udp("198.51.100.7", assigned, b"back%d" % i))
                for i in range(5):
                    datagram = await asyncio.wait_for(tunnel.receive_datagram(), 5)
                    assert datagram[0] == 0
                    assert datagram[1:][28:] == b"back%d" % i
                status = server.bond.status().clients[0]
                assert status.tunnel.extensions == () and len(status.paths) == 1
            finally:
                await client.aclose()

    asyncio.run(main())
