"""A server connection that receives nothing for a ``quiet_after`` interval drops the
OpenSSL contexts of its keys (memory per idle connection, issue 19) and answers
its next request as before."""

from __future__ import annotations

import asyncio

import pytest

import tquic
from tquic.cli.hq import HqServer, generated_body
from tquic.core.config import QuicConfiguration
from tquic.io.endpoint import EndpointLimits
from tquic.io.protocol import QuicConnectionProtocol


async def _fetch(conn: QuicConnectionProtocol, path: str) -> bytes:
    reader, writer = await conn.open_stream()
    writer.write(f"GET {path}\r\n".encode())
    writer.write_eof()
    return await reader.read()


def test_quiet_connection_releases_its_key_contexts_and_still_answers(
        server_config: QuicConfiguration, client_config: QuicConfiguration) -> None:
    async def main() -> None:
        server = await tquic.serve("127.0.0.1", 0, server_config, HqServer(None),
                                   limits=EndpointLimits(quiet_after=0.1))
        async with server, tquic.connect("127.0.0.1", server.local_address[1],
                                         client_config) as conn:
            assert await _fetch(conn, "/100") == generated_body(100)
            (proto,) = server.connections
            quic = proto.quic
            deadline = asyncio.get_running_loop().time() + 10
            while quic.crypto_state.contexts_built:
                assert asyncio.get_running_loop().time() < deadline, "never released"
                await asyncio.sleep(0.05)
            assert await _fetch(conn, "/5000") == generated_body(5000)
            assert "1rtt:recv" in quic.crypto_state.contexts_built  # rebuilt by the request's packets

    asyncio.run(asyncio.wait_for(main(), 20))


def test_quiet_after_is_validated() -> None:
    with pytest.raises(ValueError, match="quiet_after"):
        EndpointLimits(quiet_after=-1)
    assert EndpointLimits(quiet_after=0).quiet_after == 0


def test_finished_connections_leave_no_routes_behind(
        server_config: QuicConfiguration, client_config: QuicConfiguration) -> None:
    async def main() -> None:
        server = await tquic.serve("127.0.0.1", 0, server_config, HqServer(None))
        endpoint = server.endpoint
        loop = asyncio.get_running_loop()
        async with server:
            for _ in range(3):
                async with tquic.connect("127.0.0.1", server.local_address[1],
                                         client_config) as conn:
                    assert await _fetch(conn, "/10") == generated_body(10)
            deadline = loop.time() + 15  # the server's side drains for 3 PTOs first
            while endpoint.connections or endpoint._routes or endpoint._by_remote:
                assert loop.time() < deadline, "routes left behind"
                await asyncio.sleep(0.05)

    asyncio.run(asyncio.wait_for(main(), 30))
