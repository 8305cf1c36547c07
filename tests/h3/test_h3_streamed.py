"""Streamed HTTP/3 response bodies (Response.stream) on tquic.io: backpressure, and a client
that stops reading (RFC 9114 §4.1.1: STOP_SENDING) ends the server's body task at once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from tquic.core.config import QuicConfiguration
from tquic.crypto.tls.certs import generate_self_signed
from tquic.h3.aio import H3_ALPN, H3Bridge, connect_h3
from tquic.h3.api import H3RequestError, H3Server, Transmit
from tquic.h3.errors import H3ErrorCode
from tquic.h3.messages import Request, Response
from tquic.h3.transport import QuicStreamTransport
from tquic.io.api import serve

PIECE = 64 << 10


def test_streamed_body_is_paced_by_the_send_buffer_and_stops_on_stop_sending() -> None:
    produced = [0]
    closed = asyncio.Event()

    async def body(pieces: int) -> AsyncIterator[bytes]:
        try:
            for _ in range(pieces):
                produced[0] += 1
                yield bytes(PIECE)
        finally:
            closed.set()

    async def handler(request: Request) -> Response:
        return Response(200, (), stream=body(10_000))  # 640 MB if nobody stopped it

    servers: list[H3Server] = []

    def make(quic: QuicStreamTransport, transmit: Transmit) -> H3Server:
        servers.append(H3Server(quic, transmit, handler))
        return servers[-1]

    def on_connection(protocol: Any) -> None:
        H3Bridge(protocol, make, only_alpn=H3_ALPN)

    async def main() -> None:
        cert, key = generate_self_signed()
        config = QuicConfiguration(is_client=False, alpn_protocols=("h3",), certificate=cert,
                                   private_key=key)
        server = await serve("127.0.0.1", 0, config, None, connection_handler=on_connection)
        port = server.local_address[1]
        async with server:
            client = await connect_h3("127.0.0.1", port, QuicConfiguration(verify_peer=False),
                                      timeout=5)
            async with client:
                received = [0]
                enough = asyncio.Event()

                def on_data(data: bytes) -> None:
                    received[0] += len(data)
                    if received[0] >= 2 * PIECE:
                        enough.set()

                request = asyncio.ensure_future(
                    client.request("GET", f"https://127.0.0.1:{port}/", on_data=on_data))
                await asyncio.wait_for(enough.wait(), 10)
                # Backpressure: the producer ran ahead by at most the send buffer and the
                # client's flow-control window, not the whole 640 MB.
                assert produced[0] * PIECE < 64 << 20
                [stream_id] = client.pending_requests
                client.h3.cancel_stream(stream_id, H3ErrorCode.H3_REQUEST_CANCELLED)
                client.flush()
                await asyncio.wait_for(closed.wait(), 5)  # the server's body was closed
                request.cancel()
                stopped_at = produced[0]
                await asyncio.sleep(0.2)
                assert produced[0] == stopped_at
                for _ in range(50):
                    if not servers[0].running_handlers:
                        break
                    await asyncio.sleep(0.02)
                assert not servers[0].running_handlers  # the response task ended
                with contextlib.suppress(asyncio.CancelledError, H3RequestError):
                    await request

    asyncio.run(asyncio.wait_for(main(), 30))
