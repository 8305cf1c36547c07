"""H3Bridge: routing a tquic.io connection's engine events to the HTTP/3 endpoints.

The protocol objects here are stand-ins with the three members the bridge uses
(``_handle_event``, ``quic``, ``flush``); the engine side is the stream shim.
"""

from __future__ import annotations

import asyncio

from h3_shim import ShimQuic

from tquic.core.config import QuicConfiguration
from tquic.core.events import ConnectionIdIssued, HandshakeCompleted, StreamDataReceived
from tquic.h3.aio import H3Bridge, _h3_quic_config
from tquic.h3.api import H3Client, H3Server
from tquic.h3.messages import Request, Response, response
from tquic.h3.settings import H3Config


class FakeProtocol:
    def __init__(self, quic: ShimQuic) -> None:
        self.quic = quic
        self.peer: FakeProtocol | None = None
        self.default_handled: list[object] = []
        self.flushes = 0

    def _handle_event(self, event: object) -> None:
        self.default_handled.append(event)

    def flush(self) -> None:
        self.flushes += 1
        for proto in (self, self.peer):
            assert proto is not None
            while (event := proto.quic.next_event()) is not None:
                proto._handle_event(event)


async def hello(request: Request) -> Response:
    return response(200, f"hi {request.path}")


def test_bridge_starts_h3_at_handshake_and_replays_early_stream_events() -> None:
    async def main() -> None:
        cq, sq = ShimQuic(True), ShimQuic(False)
        cq.peer, sq.peer = sq, cq
        cp, sp = FakeProtocol(cq), FakeProtocol(sq)
        cp.peer, sp.peer = sp, cp
        client_bridge = H3Bridge(cp, lambda q, t: H3Client(q, t))
        server_bridge = H3Bridge(sp, lambda q, t: H3Server(q, t, hello))
        # Non-H3 events still reach the protocol's own handler.
        sp._handle_event(ConnectionIdIssued(b"cid", 0, b"t" * 16))
        assert sp.default_handled == [ConnectionIdIssued(b"cid", 0, b"t" * 16)]
        # A stream event before the handshake completes waits for the endpoint.
        sp._handle_event(StreamDataReceived(18, b"\x21grease", False))  # a reserved stream type
        assert server_bridge.endpoint is None and sq.stop_sendings == []
        sp._handle_event(HandshakeCompleted("h3", False, False))
        server = await server_bridge.ready
        assert server.protocol is sp
        assert sq.stop_sendings == [(18, 0x103)], "the backlog was replayed into HTTP/3"
        cp._handle_event(HandshakeCompleted("h3", False, False))
        client = await client_bridge.ready
        assert client.protocol is cp
        reply = await asyncio.wait_for(client.request("GET", "https://x/abc"), 5)
        assert (reply.status, reply.body) == (200, b"hi /abc")
        assert cp.flushes > 0

    asyncio.run(main())


def test_quic_config_gets_h3_alpn_and_datagram_support() -> None:
    config = _h3_quic_config(QuicConfiguration(alpn_protocols=("hq",)), H3Config(enable_datagrams=True),
                             is_client=True)
    assert config.alpn_protocols == ("h3", "hq") and config.max_datagram_frame_size
    plain = _h3_quic_config(QuicConfiguration(alpn_protocols=("h3",)), H3Config(), is_client=True)
    assert plain.alpn_protocols == ("h3",) and plain.max_datagram_frame_size is None
