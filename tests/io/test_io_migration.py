"""Moving connections between addresses on real loopback sockets: the server's
preferred address (RFC 9000 §9.6) and a client migrating to a new local address
(``await conn.migrate(...)``, RFC 9000 §9.2)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import socket
from collections.abc import Awaitable
from typing import Any

import pytest

import tquic
from tquic.cli.hq import HqServer, generated_body
from tquic.core.config import QuicConfiguration
from tquic.io.api import QuicServer
from tquic.io.protocol import MigrationError, QuicConnectionProtocol


def run(coro: Awaitable[None], timeout: float = 30.0) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(coro, timeout)

    asyncio.run(bounded())


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def count_received(server: QuicServer) -> dict[tuple[str, int], int]:
    """Datagrams the server read, per local address of the socket that read them."""
    endpoint: Any = server.endpoint
    counts: dict[tuple[str, int], int] = {}
    route = endpoint._route

    def counting(data: bytes, sock: Any, addr: Any, now: float, *rest: Any) -> Any:
        counts[sock.local_address] = counts.get(sock.local_address, 0) + 1
        return route(data, sock, addr, now, *rest)  # rest: ecn, destination address

    endpoint._route = counting
    return counts


def drop_from(server: QuicServer, host: str) -> None:
    """The server never hears from ``host`` (a path that cannot be validated)."""
    endpoint: Any = server.endpoint
    route = endpoint._route

    def dropping(data: bytes, sock: Any, addr: Any, now: float, *rest: Any) -> Any:
        return None if addr[0] == host else route(data, sock, addr, now, *rest)

    endpoint._route = dropping


async def fetch(conn: QuicConnectionProtocol, path: str) -> bytes:
    reader, writer = await conn.open_stream()
    writer.write(f"GET {path}\r\n".encode())
    writer.write_eof()
    return await reader.read()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_client_follows_the_servers_preferred_address(
        server_config: QuicConfiguration, client_config: QuicConfiguration) -> None:
    async def main() -> None:
        preferred = ("127.0.0.1", free_port())
        config = dataclasses.replace(server_config, preferred_address_v4=preferred)
        server = await tquic.serve("127.0.0.1", 0, config, HqServer(None))
        counts = count_received(server)
        original = server.local_address
        async with server, tquic.connect("127.0.0.1", original[1], client_config) as conn:
            assert await fetch(conn, "/1000") == generated_body(1000)
            for _ in range(200):  # validation takes a round trip after confirmation
                if conn.remote_address == preferred:
                    break
                await asyncio.sleep(0.01)
            assert conn.remote_address == preferred
            before = dict(counts)
            body = await fetch(conn, "/3000000")
            assert sha(body) == sha(generated_body(3_000_000))
            # After the move, the client's datagrams all reach the preferred address.
            assert counts.get(preferred, 0) - before.get(preferred, 0) >= 10  # ACKs
            assert counts.get(original, 0) == before.get(original, 0)
            [server_conn] = server.connections
            assert server_conn.local_address == preferred

    run(main())


def test_client_ignoring_the_preferred_address_stays(
        server_config: QuicConfiguration, client_config: QuicConfiguration) -> None:
    async def main() -> None:
        preferred = ("127.0.0.1", free_port())
        config = dataclasses.replace(server_config, preferred_address_v4=preferred)
        server = await tquic.serve("127.0.0.1", 0, config, HqServer(None))
        counts = count_received(server)
        stay = dataclasses.replace(client_config, follow_preferred_address=False)
        async with server, tquic.connect("127.0.0.1", server.local_address[1], stay) as conn:
            body = await fetch(conn, "/500000")
            assert sha(body) == sha(generated_body(500_000))
            assert conn.remote_address == server.local_address
            assert counts.get(preferred, 0) == 0

    run(main())


def test_client_migrates_mid_transfer_to_a_new_local_address(
        server_config: QuicConfiguration, client_config: QuicConfiguration) -> None:
    size = 6_000_000

    async def main() -> None:
        server = await tquic.serve("127.0.0.1", 0, server_config, HqServer(None))
        async with server, tquic.connect("127.0.0.1", server.local_address[1], client_config,
                                         local_host="127.0.0.1") as conn:
            reader, writer = await conn.open_stream()
            writer.write(f"GET /{size}\r\n".encode())
            writer.write_eof()
            got = bytearray()
            while len(got) < 1_000_000:
                chunk = await reader.read(65536)
                assert chunk
                got += chunk
            old_local = conn.local_address
            new_local = await conn.migrate("127.0.0.2")
            assert new_local[0] == "127.0.0.2" and conn.local_address == new_local
            got += await reader.read()
            assert sha(bytes(got)) == sha(generated_body(size))
            [server_conn] = server.connections
            assert server_conn.remote_address == new_local  # the server saw the new address
            # the old socket is closed
            assert all(s.local_address != old_local for s in conn._endpoint.sockets)
            assert await fetch(conn, "/1000") == generated_body(1000)

    run(main())


def test_failed_migration_raises_and_keeps_the_old_path(
        server_config: QuicConfiguration, client_config: QuicConfiguration) -> None:
    async def main() -> None:
        server = await tquic.serve("127.0.0.1", 0, server_config, HqServer(None))
        drop_from(server, "127.0.0.3")
        async with server, tquic.connect("127.0.0.1", server.local_address[1], client_config,
                                         local_host="127.0.0.1") as conn:
            assert await fetch(conn, "/1000") == generated_body(1000)
            old_local = conn.local_address
            with pytest.raises(MigrationError, match="not validated"):
                await conn.migrate("127.0.0.3")
            assert conn.local_address == old_local
            assert all(s.local_address[0] != "127.0.0.3" for s in conn._endpoint.sockets)
            body = await fetch(conn, "/200000")
            assert sha(body) == sha(generated_body(200_000))

    run(main())


def test_migration_refused_for_a_server_connection_and_a_bad_address(
        server_config: QuicConfiguration, client_config: QuicConfiguration) -> None:
    async def main() -> None:
        server = await tquic.serve("127.0.0.1", 0, server_config, HqServer(None))
        async with server, tquic.connect("127.0.0.1", server.local_address[1], client_config,
                                         local_host="127.0.0.1") as conn:
            assert await fetch(conn, "/10") == generated_body(10)
            [server_conn] = server.connections
            with pytest.raises(MigrationError, match="only a client"):
                await server_conn.migrate("127.0.0.1")
            with pytest.raises(MigrationError, match="cannot bind"):
                await conn.migrate("192.0.2.1")  # TEST-NET-1: not on this host
            assert await fetch(conn, "/10") == generated_body(10)

    run(main())
