"""HTTP/3 requests in 0-RTT (RFC 9114 §3.3 with RFC 9001 §4.6) over UDP on 127.0.0.1.

connect_h3 with a session ticket and enable_early_data returns before the handshake, so
the first request shares the 0-RTT flight (control and QPACK streams included); the
server answers it once the handshake completes.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from tquic.core.config import QuicConfiguration
from tquic.crypto.tls.certs import generate_self_signed
from tquic.crypto.tls.tickets import TicketStore
from tquic.h3.aio import connect_h3, serve_h3
from tquic.h3.api import H3Client
from tquic.h3.messages import Request, Response, response
from tquic.h3.settings import H3Config
from tquic.wire.packet import PacketType, split_datagram

NO_GREASE = H3Config(grease=False)  # fixed-size control streams: comparable 0-RTT sizes


async def handler(request: Request) -> Response:
    return response(200, f"answer to {request.path}")


def count_zero_rtt(client: H3Client) -> list[int]:
    """Patch the client's endpoint to add up the 0-RTT packet bytes it sends."""
    total = [0]
    endpoint: Any = client.protocol._endpoint
    send = endpoint.send_datagrams

    def counting(datagrams: list[tuple[bytes, Any]], ecn: Any = None) -> None:
        for data, _ in datagrams:
            for header in split_datagram(data, 8):
                if header.packet_type == PacketType.ZERO_RTT:
                    total[0] += header.packet_end - header.pn_offset
        send(datagrams, ecn)

    endpoint.send_datagrams = counting
    return total


async def wait_ticket(client: H3Client) -> Any:
    for _ in range(100):
        if client.protocol.session_ticket is not None:
            break
        await asyncio.sleep(0.01)
    assert client.protocol.session_ticket is not None, "no NewSessionTicket"
    return client.protocol.session_ticket


def test_resumed_h3_client_sends_its_first_request_in_0rtt() -> None:
    async def main() -> None:
        cert, key = generate_self_signed()
        server = await serve_h3(
            "127.0.0.1", 0,
            QuicConfiguration(is_client=False, certificate=cert, private_key=key,
                              ticket_store=TicketStore(), enable_early_data=True),
            handler)
        port = server.local_address[1]
        url = f"https://127.0.0.1:{port}"

        async def resumed(ticket: Any, request_at_once: bool) -> tuple[int, Any]:
            config = dataclasses.replace(QuicConfiguration(verify_peer=False),
                                         session_ticket=ticket, enable_early_data=True)
            client = await connect_h3("127.0.0.1", port, config, h3_config=NO_GREASE,
                                      timeout=5)
            assert not client.protocol.quic.handshake_complete  # returned before it
            sent = count_zero_rtt(client)  # patched before the first flush runs
            async with client:
                if not request_at_once:
                    await client.protocol.wait_connected()
                reply = await client.request("GET", url + "/two")
                assert (reply.status, reply.body) == (200, b"answer to /two")
                assert client.protocol.session_resumed
                assert client.protocol.early_data_accepted
                return sent[0], await wait_ticket(client)

        try:
            first = await connect_h3("127.0.0.1", port, QuicConfiguration(verify_peer=False),
                                     timeout=5)
            async with first:
                assert (await first.request("GET", url + "/one")).status == 200
                ticket = await wait_ticket(first)
            with_request, ticket = await resumed(ticket, request_at_once=True)
            streams_only, _ = await resumed(ticket, request_at_once=False)
        finally:
            server.close()
        # The request's HEADERS frame (4 pseudo-header fields) went in 0-RTT too.
        assert streams_only > 0
        assert with_request >= streams_only + 15, (with_request, streams_only)

    asyncio.run(asyncio.wait_for(main(), 20))
