"""CONNECT tunnels on tquic.io: rejection headers reach the client, drain() gives
backpressure, STOP_SENDING ends only our direction, and a finished tunnel is
forgotten by its endpoint (no leak per tunnel on a long-lived connection)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from tquic.core.config import QuicConfiguration
from tquic.crypto.tls.certs import generate_self_signed
from tquic.h3.aio import connect_h3, serve_h3
from tquic.h3.api import ConnectRefused, H3Client, ServerTunnel
from tquic.h3.messages import Request, Response, response
from tquic.h3.tunnel import TunnelClosed

CERT = generate_self_signed(("localhost",))


async def nothing(request: Request) -> Response:
    return response(404)


@asynccontextmanager
async def pair(connect_handler: Callable[[ServerTunnel], Awaitable[None]]
               ) -> AsyncIterator[tuple[H3Client, object]]:
    server = await serve_h3("127.0.0.1", 0, QuicConfiguration(
        is_client=False, certificate=CERT[0], private_key=CERT[1]), nothing,
        connect_handler=connect_handler)
    client = await connect_h3("127.0.0.1", server.local_address[1], QuicConfiguration(
        is_client=True, verify_peer=False, server_name="localhost"), timeout=10)
    try:
        yield client, server
    finally:
        await asyncio.wait_for(client.aclose(), 5)
        server.close()


def run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(main(), 30))


def test_reject_sends_its_headers() -> None:
    async def refuse(tunnel: ServerTunnel) -> None:
        tunnel.reject(403, headers={"proxy-status": "x; error=destination_ip_prohibited"})

    async def main() -> None:
        async with pair(refuse) as (client, _):
            with pytest.raises(ConnectRefused) as info:
                await client.connect("example.com:443")
            assert info.value.response.status == 403
            assert (b"proxy-status", b"x; error=destination_ip_prohibited") in \
                info.value.response.headers

    run(main)


def test_finished_tunnels_are_forgotten_on_both_sides() -> None:
    servers: list[ServerTunnel] = []

    async def echo_once(tunnel: ServerTunnel) -> None:
        servers.append(tunnel)
        tunnel.accept()
        data = b""
        while chunk := await tunnel.receive():
            data += chunk
        tunnel.send(data, end_stream=True)

    async def main() -> None:
        async with pair(echo_once) as (client, _):
            for _ in range(3):
                tunnel = await client.connect("example.com:443")
                tunnel.send(b"abc" * 1000)
                await tunnel.drain()
                tunnel.close()
                received = b""
                while chunk := await tunnel.receive():
                    received += chunk
                assert received == b"abc" * 1000
            await asyncio.sleep(0.05)
            assert client.open_tunnels == ()
            assert all(s.server.open_tunnels == () for s in servers)
            assert client.protocol.streams.writers == {}

    run(main)


def test_stop_sending_closes_only_our_direction() -> None:
    started = asyncio.Event()
    holder: list[ServerTunnel] = []

    async def talker(tunnel: ServerTunnel) -> None:
        holder.append(tunnel)
        tunnel.accept()
        started.set()
        await asyncio.sleep(5)

    async def main() -> None:
        async with pair(talker) as (client, _):
            tunnel = await client.connect("example.com:443")
            await started.wait()
            server_tunnel = holder[0]
            # The client stops reading: the server may no longer send, but still reads.
            client.protocol.quic.stop_sending(tunnel.stream_id, 0x10F)
            client.flush()
            for _ in range(100):
                if server_tunnel.send_closed:
                    break
                await asyncio.sleep(0.01)
            assert server_tunnel.send_closed
            with pytest.raises(TunnelClosed):
                server_tunnel.send(b"more")
            with pytest.raises(TunnelClosed):
                await server_tunnel.drain()
            # (The client's tunnel saw the engine's answering RESET_STREAM and is closed,
            # as RFC 9114 §4.4 wants for the lane; the HTTP/3 stream can still send.)
            client.h3.send_data(tunnel.stream_id, b"still flowing", end_stream=True)
            client.flush()
            assert await asyncio.wait_for(server_tunnel.receive(), 5) == b"still flowing"

    run(main)
