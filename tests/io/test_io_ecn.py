"""ECN end to end over real UDP sockets on loopback (RFC 9000 §13.4): the endpoint sets
the engine's codepoint with IP_TOS/IPV6_TCLASS, reads it back with IP_RECVTOS, and
the ACK_ECN counts each side reports match the marks the other side sent."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable

import pytest

import tquic
from tquic.cli.hq import HqServer, generated_body
from tquic.core.config import QuicConfiguration
from tquic.io.protocol import QuicConnectionProtocol
from tquic.io.udp import ECN_ECT0, UdpSocket
from tquic.paths.ecn import EcnState
from tquic.paths.sent_packets import SpaceId


def run(coro: Awaitable[None], timeout: float = 20.0) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(coro, timeout)

    asyncio.run(bounded())


def _loopback_keeps_tos() -> bool:
    a = UdpSocket.bind("127.0.0.1", 0, gso=False, gro=False)
    b = UdpSocket.bind("127.0.0.1", 0, gso=False, gro=False)
    try:
        if not b.features.ecn_receive:
            return False
        a.send(b"probe", b.local_address, ecn=ECN_ECT0)
        for _ in range(100):
            got = b.recv(1)
            if got:
                return got[0].ecn == ECN_ECT0
            time.sleep(0.005)
        return False
    finally:
        a.close()
        b.close()


needs_tos = pytest.mark.skipif(not _loopback_keeps_tos(),
                               reason="this kernel does not report IP_TOS (IP_RECVTOS)")


async def _fetch(conn: QuicConnectionProtocol, path: str) -> bytes:
    reader, writer = await conn.open_stream()
    writer.write(f"GET {path}\r\n".encode())
    writer.write_eof()
    return await reader.read()


@needs_tos
def test_ack_ecn_counts_match_the_marks_sent_over_loopback_udp(
        server_config: QuicConfiguration, client_config: QuicConfiguration) -> None:
    async def main() -> None:
        server = await tquic.serve("127.0.0.1", 0, server_config, HqServer(None))
        async with server, tquic.connect("127.0.0.1", server.local_address[1],
                                         client_config) as conn:
            body = await _fetch(conn, "/300000")
            assert body == generated_body(300000)
            await asyncio.sleep(0.1)  # let the last ACKs land: loopback loses nothing
            client = conn.quic
            (server_proto,) = server.connections
            srv = server_proto.quic
            c_path, s_path = client.paths.primary, srv.paths.primary
            # Both directions validated ECN and mark ECT(0) (RFC 9000 §13.4.2).
            assert c_path.recovery.ecn.state is EcnState.CAPABLE
            assert s_path.recovery.ecn.state is EcnState.CAPABLE
            assert client.ecn_codepoint(c_path.network_path) == ECN_ECT0
            # What the client counted (its ACK_ECN) is every 1-RTT packet the server
            # marked, and vice versa: nothing bleached, nothing CE on loopback.
            c_counts = c_path.space.ack_tracker.ecn_counts
            s_counts = s_path.space.ack_tracker.ecn_counts
            assert c_counts is not None and s_counts is not None
            server_marked = s_path.recovery.ecn.marked_sent(SpaceId.APPLICATION)[0]
            client_marked = c_path.recovery.ecn.marked_sent(SpaceId.APPLICATION)[0]
            assert server_marked > 200  # the 300 kB body
            assert c_counts == (server_marked, 0, 0)
            assert s_counts == (client_marked, 0, 0)

    run(main())


def test_ecn_disabled_by_configuration_sends_unmarked(
        server_config: QuicConfiguration, client_config: QuicConfiguration) -> None:
    async def main() -> None:
        server = await tquic.serve("127.0.0.1", 0, server_config, HqServer(None))
        no_ecn = dataclasses.replace(client_config, ecn=False)
        async with server, tquic.connect("127.0.0.1", server.local_address[1],
                                         no_ecn) as conn:
            assert await _fetch(conn, "/50000") == generated_body(50000)
            await asyncio.sleep(0.05)
            client = conn.quic
            path = client.paths.primary
            assert path.recovery.ecn.state is EcnState.DISABLED
            assert client.ecn_codepoint(path.network_path) == 0
            (server_proto,) = server.connections
            # The server received nothing marked from us, so it reports no counts.
            assert server_proto.quic.paths.primary.space.ack_tracker.ecn_counts is None

    run(main())
