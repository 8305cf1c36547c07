"""What a server endpoint answers before any connection exists: Version Negotiation,
Retry, Stateless Reset (with the RFC 9000 §10.3.3 size rule), silence for garbage."""

from __future__ import annotations

import asyncio
import os
import select
import socket

import pytest

from tquic.core.config import QuicConfiguration
from tquic.core.tokens import TokenManager
from tquic.io.endpoint import EndpointLimits, QuicEndpoint
from tquic.io.udp import UdpSocket
from tquic.wire.packet import PacketType, parse_header, verify_retry_integrity
from tquic.wire.version import QUIC_V1, QUIC_V2

CERT_PLACEHOLDER = b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"


def _server_config() -> QuicConfiguration:
    # The endpoint's stateless answers never touch the certificate.
    return QuicConfiguration(is_client=False, certificate=CERT_PLACEHOLDER,
                             private_key=b"key", stateless_reset_key=b"k" * 32,
                             token_key=b"t" * 32)


def _long_header(version: int, type_bits: int, dcid: bytes, scid: bytes, token: bytes = b"",
                 size: int = 1200) -> bytes:
    head = bytes((0xC0 | type_bits,)) + version.to_bytes(4, "big")
    head += bytes((len(dcid),)) + dcid + bytes((len(scid),)) + scid
    if type_bits == 0x00:  # v1 Initial: token length + token
        head += bytes((len(token),)) + token
    body_len = size - len(head) - 2
    head += (0x4000 | body_len).to_bytes(2, "big")
    return head + os.urandom(body_len)


async def _exchange(endpoint: QuicEndpoint, client: socket.socket, datagram: bytes,
                    wait: float = 0.3) -> list[bytes]:
    client.sendto(datagram, endpoint.local_address)
    replies: list[bytes] = []
    deadline = asyncio.get_running_loop().time() + wait
    while asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)
        while select.select([client], [], [], 0)[0]:
            replies.append(client.recv(65535))
        if replies:
            break
    return replies


async def _with_endpoint(limits: EndpointLimits | None, body: object) -> None:
    sock = UdpSocket.bind("127.0.0.1", 0)
    endpoint = QuicEndpoint(_server_config(), [sock], is_server=True, limits=limits)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.1", 0))
    try:
        await asyncio.wait_for(body(endpoint, client), 5.0)  # type: ignore[operator]
    finally:
        client.close()
        endpoint.close()


def test_unknown_version_gets_version_negotiation_listing_ours() -> None:
    async def body(endpoint: QuicEndpoint, client: socket.socket) -> None:
        dcid, scid = os.urandom(8), os.urandom(5)
        [reply] = await _exchange(endpoint, client, _long_header(0x1A2A3A4A, 0, dcid, scid))
        header = parse_header(reply, 0, 8)
        assert header.packet_type == PacketType.VERSION_NEGOTIATION
        assert header.dcid == scid and header.scid == dcid  # RFC 9000 §17.2.1: echoed
        assert QUIC_V1 in header.supported_versions and QUIC_V2 in header.supported_versions
        assert endpoint.stats.version_negotiations_sent == 1

    asyncio.run(_with_endpoint(None, body))


def test_small_unknown_version_datagram_gets_no_answer() -> None:
    async def body(endpoint: QuicEndpoint, client: socket.socket) -> None:
        # RFC 9000 §6.1: VN only for datagrams big enough to open a connection.
        packet = _long_header(0x1A2A3A4A, 0, os.urandom(8), b"", size=300)
        assert await _exchange(endpoint, client, packet) == []

    asyncio.run(_with_endpoint(None, body))


def test_retry_always_answers_an_initial_with_a_valid_retry() -> None:
    async def body(endpoint: QuicEndpoint, client: socket.socket) -> None:
        dcid, scid = os.urandom(8), os.urandom(8)
        [reply] = await _exchange(endpoint, client, _long_header(QUIC_V1, 0x00, dcid, scid))
        header = parse_header(reply, 0, 8)
        assert header.packet_type == PacketType.RETRY
        assert header.dcid == scid
        assert header.scid != dcid and len(header.scid) == 8
        assert verify_retry_integrity(QUIC_V1, reply, dcid)  # RFC 9001 §5.8
        contents = TokenManager(b"t" * 32).validate_retry_token(
            header.token, client.getsockname(), asyncio.get_running_loop().time())
        assert contents is not None
        assert contents.original_destination_connection_id == dcid
        assert contents.retry_source_connection_id == header.scid
        assert not endpoint.connections  # stateless: nothing created

    asyncio.run(_with_endpoint(EndpointLimits(retry="always"), body))


@pytest.mark.parametrize("cids", [(8, 21), (21, 8), (8, 144)], ids=["scid21", "dcid21", "scid144"])
def test_initial_with_a_connection_id_over_20_bytes_is_dropped_silently(
        cids: tuple[int, int], caplog: pytest.LogCaptureFixture) -> None:
    """RFC 9000 §17.2: a v1 long header with a CID longer than 20 bytes is dropped --
    also when Retry is on (a Retry could not even carry it); found by the fuzz test."""
    caplog.set_level("DEBUG", logger="tquic")

    async def body(endpoint: QuicEndpoint, client: socket.socket) -> None:
        packet = _long_header(QUIC_V1, 0x00, os.urandom(cids[0]), os.urandom(cids[1]))
        assert await _exchange(endpoint, client, packet) == []
        assert endpoint.stats.datagrams_dropped >= 1
        assert not endpoint.connections

    asyncio.run(_with_endpoint(EndpointLimits(retry="always"), body))
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


def test_initial_with_a_forged_retry_token_is_dropped() -> None:
    async def body(endpoint: QuicEndpoint, client: socket.socket) -> None:
        forged = TokenManager(b"x" * 32).create_retry_token(
            client.getsockname(), os.urandom(8), os.urandom(8), 0.0)
        packet = _long_header(QUIC_V1, 0x00, os.urandom(8), os.urandom(8), token=forged)
        assert await _exchange(endpoint, client, packet) == []
        assert endpoint.stats.connections_refused == 1
        assert not endpoint.connections

    asyncio.run(_with_endpoint(EndpointLimits(retry="always"), body))


def test_short_header_for_no_connection_gets_a_smaller_stateless_reset() -> None:
    async def body(endpoint: QuicEndpoint, client: socket.socket) -> None:
        dcid = os.urandom(8)
        packet = bytes((0x40 | 0x01,)) + dcid + os.urandom(60)
        [reply] = await _exchange(endpoint, client, packet)
        assert len(reply) < len(packet)  # RFC 9000 §10.3.3: no reset loops
        assert reply[0] & 0xC0 == 0x40  # looks like a short header (§10.3)
        from tquic.core.cids import stateless_reset_token

        assert reply[-16:] == stateless_reset_token(b"k" * 32, dcid)

    asyncio.run(_with_endpoint(None, body))


def test_tiny_short_header_gets_no_reset() -> None:
    async def body(endpoint: QuicEndpoint, client: socket.socket) -> None:
        # A reset must be >= 21 bytes and smaller than the trigger: 21 bytes cannot be answered.
        assert await _exchange(endpoint, client, bytes((0x41,)) + os.urandom(20)) == []

    asyncio.run(_with_endpoint(None, body))


def test_stateless_answers_are_rate_limited() -> None:
    async def body(endpoint: QuicEndpoint, client: socket.socket) -> None:
        for _ in range(30):
            client.sendto(bytes((0x41,)) + os.urandom(80), endpoint.local_address)
        await asyncio.sleep(0.3)
        assert endpoint.stats.stateless_resets_sent == 5

    asyncio.run(_with_endpoint(EndpointLimits(stateless_packets_per_second=5), body))


@pytest.mark.parametrize("datagram", [
    b"", b"\x80", b"\xc0\x00\x00\x00\x01\xff", b"\xc0\x00\x00\x00\x01\x08abc",
    _long_header(QUIC_V1, 0x20, os.urandom(8), os.urandom(8)),  # Handshake: no connection
    _long_header(QUIC_V1, 0x00, os.urandom(4), os.urandom(8)),  # DCID < 8 bytes (§7.2)
    _long_header(QUIC_V1, 0x00, os.urandom(8), os.urandom(8), size=600),  # Initial < 1200
    _long_header(0, 0, os.urandom(8), os.urandom(8)),  # a VN sent to a server
])
def test_garbage_is_dropped_silently(datagram: bytes) -> None:
    async def body(endpoint: QuicEndpoint, client: socket.socket) -> None:
        if datagram:
            assert await _exchange(endpoint, client, datagram, wait=0.1) == []
        endpoint.datagram_received(datagram, ("127.0.0.1", 9))  # the direct path too
        assert not endpoint.connections

    asyncio.run(_with_endpoint(EndpointLimits(retry="always"), body))


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="retry"):
        EndpointLimits(retry="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_connections"):
        EndpointLimits(max_connections=0)
