"""Shared set-up of the WebTransport tests: a tquic WebTransport echo server on loopback."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping

from tquic.core.config import QuicConfiguration
from tquic.crypto.tls.certs import generate_self_signed
from tquic.h3.settings import H3Config
from tquic.h3.webtransport import FlowLimits, serve_webtransport, webtransport_h3_config
from tquic.h3.webtransport.aio import DEFAULT_FLOW, SessionHandler
from tquic.h3.webtransport.echo import echo_session

CERT, KEY = generate_self_signed()


def client_config() -> QuicConfiguration:
    return QuicConfiguration(verify_peer=False, max_datagram_frame_size=65535)


def client_h3(flow: FlowLimits | None = DEFAULT_FLOW) -> H3Config:
    return webtransport_h3_config(flow=flow)


@contextlib.asynccontextmanager
async def wt_server(routes: Mapping[str, SessionHandler] | None = None,
                    flow: FlowLimits | None = DEFAULT_FLOW,
                    h3_config: H3Config | None = None) -> AsyncIterator[int]:
    """Serve ``routes`` (default: the echo endpoint at /echo); yields the port."""
    config = QuicConfiguration(is_client=False, certificate=CERT, private_key=KEY,
                               max_datagram_frame_size=65535)
    server = await serve_webtransport(
        "127.0.0.1", 0, config, routes or {"/echo": echo_session},
        h3_config=h3_config or webtransport_h3_config(flow=flow))
    try:
        yield server.local_address[1]
    finally:
        server.close()
