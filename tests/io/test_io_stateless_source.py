"""A multihomed server's stateless answers (Stateless Reset, Version Negotiation, Retry)
leave from the address their trigger was sent to: a client drops a datagram from
another address of the server, so a reset from the wrong one never ends the
connection (found by tests/bond/test_bond_workers_netns.py: a restarted worker's
resets left from the other veth's address and the bond client waited for its idle
timeout)."""

from __future__ import annotations

import asyncio
import os
import select
import socket

import pytest

from tquic.core.config import QuicConfiguration
from tquic.io.endpoint import EndpointLimits, QuicEndpoint
from tquic.io.udp import UdpSocket
from tquic.wire.version import QUIC_V1

pytestmark = pytest.mark.timeout(30)

OTHER = "127.0.0.2"  # every 127/8 address is the host's own: a second server address


def _config() -> QuicConfiguration:
    return QuicConfiguration(is_client=False, certificate=b"-", private_key=b"-",
                             stateless_reset_key=b"k" * 32, token_key=b"t" * 32)


def _initial(version: int, size: int = 1200) -> bytes:
    dcid, scid = os.urandom(8), os.urandom(8)
    head = bytes((0xC0,)) + version.to_bytes(4, "big") + bytes((8,)) + dcid + bytes((8,))
    head += scid + b"\x00"  # no token
    body = size - len(head) - 2
    return head + (0x4000 | body).to_bytes(2, "big") + os.urandom(body)


def _answer_source(datagram: bytes, limits: EndpointLimits | None = None) -> str:
    async def main() -> str:
        sock = UdpSocket.bind("0.0.0.0", 0, pktinfo=True)
        endpoint = QuicEndpoint(_config(), [sock], is_server=True, limits=limits)
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.bind(("127.0.0.1", 0))
        try:
            client.sendto(datagram, (OTHER, endpoint.local_address[1]))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 5.0
            while loop.time() < deadline:
                await asyncio.sleep(0.01)
                if select.select([client], [], [], 0)[0]:
                    return str(client.recvfrom(65535)[1][0])
            raise AssertionError("no answer")
        finally:
            client.close()
            endpoint.close()

    return asyncio.run(main())


def test_a_stateless_reset_leaves_from_the_address_it_answers() -> None:
    assert _answer_source(bytes((0x41,)) + os.urandom(8) + os.urandom(60)) == OTHER


def test_version_negotiation_leaves_from_the_address_it_answers() -> None:
    assert _answer_source(_initial(0x1A2A3A4A)) == OTHER


def test_a_retry_leaves_from_the_address_it_answers() -> None:
    assert _answer_source(_initial(QUIC_V1), EndpointLimits(retry="always")) == OTHER
