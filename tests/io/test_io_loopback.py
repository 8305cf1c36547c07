"""tquic client and server over real UDP sockets on loopback: transfers, concurrency,
datagrams, Retry, stateless reset, limits, qlog files, clean close."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
from collections.abc import Awaitable
from pathlib import Path

import pytest
from half_open import send_half_open

import tquic
from tquic.cli.hq import HqServer, generated_body
from tquic.core.config import QuicConfiguration
from tquic.io.api import QuicServer
from tquic.io.endpoint import EndpointLimits
from tquic.io.protocol import ConnectionClosedError, QuicConnectionProtocol
from tquic.io.streams import QuicStreamReader, QuicStreamWriter
from tquic.qlog import read_seq


def run(coro: Awaitable[None], timeout: float = 20.0) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(coro, timeout)

    asyncio.run(bounded())


async def fetch(conn: QuicConnectionProtocol, path: str) -> bytes:
    reader, writer = await conn.open_stream()
    writer.write(f"GET {path}\r\n".encode())
    writer.write_eof()
    return await reader.read()


async def hq_server(config: QuicConfiguration, root: Path | None = None,
                    **kwargs: object) -> QuicServer:
    return await tquic.serve("127.0.0.1", 0, config, HqServer(root), **kwargs)  # type: ignore[arg-type]


def test_download_generated_and_file_bodies_with_checksums(
        server_config: QuicConfiguration, client_config: QuicConfiguration,
        tmp_path: Path) -> None:
    (tmp_path / "hello.txt").write_bytes(b"hello, quic\n" * 1000)

    async def main() -> None:
        server = await hq_server(server_config, tmp_path)
        async with server, tquic.connect("127.0.0.1", server.local_address[1],
                                         client_config) as conn:
            assert conn.alpn_protocol == "hq-interop"
            small, big, file_body = await asyncio.gather(
                fetch(conn, "/1000"), fetch(conn, "/2000000"), fetch(conn, "/hello.txt"))
            assert small == generated_body(1000)
            assert hashlib.sha256(big).digest() == hashlib.sha256(generated_body(2000000)).digest()
            assert file_body == b"hello, quic\n" * 1000

    run(main())


def test_fifty_concurrent_streams(server_config: QuicConfiguration,
                                  client_config: QuicConfiguration) -> None:
    async def main() -> None:
        server = await hq_server(server_config)
        async with server, tquic.connect("127.0.0.1", server.local_address[1],
                                         client_config) as conn:
            bodies = await asyncio.gather(*(fetch(conn, f"/{1000 + i}") for i in range(50)))
            assert [len(b) for b in bodies] == [1000 + i for i in range(50)]

    run(main())


def test_missing_file_and_traversal_are_refused_with_a_stream_reset(
        server_config: QuicConfiguration, client_config: QuicConfiguration,
        tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret").write_bytes(b"do not serve")

    async def main() -> None:
        server = await hq_server(server_config, root)
        async with server, tquic.connect("127.0.0.1", server.local_address[1],
                                         client_config) as conn:
            for path in ("/missing", "/../secret", "/%2e%2e/secret"):
                with pytest.raises(ConnectionError):
                    await fetch(conn, path)
            assert await fetch(conn, "/10") == generated_body(10)  # connection still fine

    run(main())


def test_many_clients_on_one_server(server_config: QuicConfiguration,
                                    client_config: QuicConfiguration) -> None:
    async def one(port: int, i: int) -> int:
        async with tquic.connect("127.0.0.1", port, client_config) as conn:
            return len(await fetch(conn, f"/{5000 + i}"))

    async def main() -> None:
        server = await hq_server(server_config)
        async with server:
            sizes = await asyncio.gather(*(one(server.local_address[1], i) for i in range(12)))
            assert sizes == [5000 + i for i in range(12)]
            assert server.endpoint.stats.connections_accepted == 12

    run(main(), 40.0)


def test_echo_handler_datagrams_and_server_initiated_close(
        server_config: QuicConfiguration, client_config: QuicConfiguration) -> None:
    connections: list[QuicConnectionProtocol] = []

    async def echo(reader: QuicStreamReader, writer: QuicStreamWriter) -> None:
        async for chunk in reader:
            writer.write(chunk[::-1])
        # returning sends FIN

    async def datagram_echo(conn: QuicConnectionProtocol) -> None:
        while True:
            conn.send_datagram(b"re:" + await conn.receive_datagram())

    def on_connection(conn: QuicConnectionProtocol) -> None:
        connections.append(conn)
        asyncio.get_running_loop().create_task(datagram_echo(conn))

    async def main() -> None:
        server = await tquic.serve("127.0.0.1", 0, server_config, echo,
                                   connection_handler=on_connection)
        async with server, tquic.connect("127.0.0.1", server.local_address[1],
                                         client_config) as conn:
            reader, writer = await conn.open_stream()
            writer.write(b"abc")
            writer.write(b"def")
            writer.write_eof()
            # Each chunk comes back reversed; the two writes may arrive as one chunk.
            assert await reader.read() in (b"cbafed", b"fedcba")
            conn.send_datagram(b"ping")
            assert await conn.receive_datagram() == b"re:ping"
            connections[0].close(error_code=7, reason="bye")
            with pytest.raises(ConnectionClosedError) as info:
                await asyncio.wait_for(conn.accept_stream(), 5.0)
            assert info.value.error_code == 7 and info.value.by_peer

    run(main())


def test_retry_always_then_transfer(server_config: QuicConfiguration,
                                    client_config: QuicConfiguration) -> None:
    async def main() -> None:
        server = await hq_server(server_config, retry="always")
        async with server, tquic.connect("127.0.0.1", server.local_address[1],
                                         client_config) as conn:
            assert await fetch(conn, "/3000") == generated_body(3000)
        assert server.endpoint.stats.retries_sent == 1
        assert server.endpoint.stats.connections_accepted == 1

    run(main())


def test_connection_limit_refuses_extra_clients(server_config: QuicConfiguration,
                                                client_config: QuicConfiguration) -> None:
    async def main() -> None:
        server = await hq_server(server_config, limits=EndpointLimits(max_connections=1))
        async with server, tquic.connect("127.0.0.1", server.local_address[1],
                                         client_config) as first:
            with pytest.raises(TimeoutError):
                await tquic.connect("127.0.0.1", server.local_address[1], client_config,
                                    timeout=0.8)
            assert await fetch(first, "/10") == generated_body(10)
            assert server.endpoint.stats.connections_refused >= 1

    run(main())


def test_restarted_server_answers_old_connection_with_stateless_reset(
        server_config: QuicConfiguration, client_config: QuicConfiguration) -> None:
    config = dataclasses.replace(server_config, stateless_reset_key=b"r" * 32)

    async def main() -> None:
        first = await hq_server(config)
        port = first.local_address[1]
        conn = await tquic.connect("127.0.0.1", port, client_config)
        assert await fetch(conn, "/10") == generated_body(10)
        # Crash: the sockets vanish without CONNECTION_CLOSE.
        for sock in first.endpoint.sockets:
            first.endpoint.loop.remove_reader(sock.fileno())
            sock.close()
        second = await tquic.serve("127.0.0.1", port, config, HqServer(None))
        async with second:
            started = asyncio.get_running_loop().time()
            with pytest.raises(ConnectionError):
                await fetch(conn, "/10")
            # Ended by the reset (RFC 9000 §10.3), not by the 30 s idle timeout.
            assert asyncio.get_running_loop().time() - started < 5.0
            assert second.endpoint.stats.stateless_resets_sent >= 1
        conn._endpoint.close()

    run(main())


def test_qlog_files_are_written_for_both_sides(server_config: QuicConfiguration,
                                               client_config: QuicConfiguration,
                                               tmp_path: Path) -> None:
    async def main() -> None:
        server = await hq_server(server_config, qlog_dir=str(tmp_path / "server"))
        async with server:
            async with tquic.connect("127.0.0.1", server.local_address[1], client_config,
                                     qlog_dir=str(tmp_path / "client"),
                                     qlog_format="0.3") as conn:
                await fetch(conn, "/100")
            await asyncio.sleep(0.3)  # let the server see the close

    run(main())
    [server_file] = list((tmp_path / "server").glob("*_server.sqlog"))
    records = read_seq(server_file.read_text())
    assert records[0]["trace"]["vantage_point"]["type"] == "server"
    names = {r["name"] for r in records[1:]}
    assert {"quic:connection_started", "quic:udp_datagrams_received",
            "quic:udp_datagrams_sent", "quic:recovery_metrics_updated"} <= names
    metrics = [r["data"] for r in records[1:] if r["name"] == "quic:recovery_metrics_updated"]
    assert any("smoothed_rtt" in m for m in metrics)
    [client_file] = list((tmp_path / "client").glob("*_client.qlog"))
    doc = json.loads(client_file.read_text())
    assert doc["qlog_version"] == "0.3"
    client_names = {e["name"] for e in doc["traces"][0]["events"]}
    assert {"connectivity:connection_closed", "recovery:metrics_updated",
            "transport:datagrams_sent"} <= client_names


def test_ipv6_client_and_dual_stack_server(server_config: QuicConfiguration,
                                           client_config: QuicConfiguration) -> None:
    async def main() -> None:
        server = await tquic.serve("::", 0, server_config, HqServer(None))
        async with server:
            port = server.local_address[1]
            for host in ("::1", "127.0.0.1"):
                async with tquic.connect(host, port, client_config) as conn:
                    assert await fetch(conn, "/64") == generated_body(64)

    run(main())


def test_writer_drain_applies_backpressure(server_config: QuicConfiguration,
                                           client_config: QuicConfiguration) -> None:
    received = 0

    async def sink(reader: QuicStreamReader, writer: QuicStreamWriter) -> None:
        nonlocal received
        async for chunk in reader:
            received += len(chunk)
        writer.write(str(received).encode())

    async def main() -> None:
        server = await tquic.serve("127.0.0.1", 0, server_config, sink)
        async with server, tquic.connect("127.0.0.1", server.local_address[1],
                                         client_config) as conn:
            reader, writer = await conn.open_stream()
            block = b"x" * 65536
            for _ in range(64):  # 4 MB, more than the engine's send buffer
                writer.write(block)
                await writer.drain()
            writer.write_eof()
            assert await reader.read() == str(64 * 65536).encode()

    run(main(), 40.0)



def test_fin_sent_after_the_data_left_reaches_the_peer(
        server_config: QuicConfiguration, client_config: QuicConfiguration) -> None:
    async def upper(reader: QuicStreamReader, writer: QuicStreamWriter) -> None:
        writer.write((await reader.read()).upper())

    async def main() -> None:
        server = await tquic.serve("127.0.0.1", 0, server_config, upper)
        async with server, tquic.connect("127.0.0.1", server.local_address[1],
                                         client_config) as conn:
            reader, writer = await conn.open_stream()
            writer.write(b"data first")
            await asyncio.sleep(0.1)  # the data leaves in its own packet
            writer.write_eof()  # then a STREAM frame with only FIN
            assert await asyncio.wait_for(reader.read(), 3.0) == b"DATA FIRST"

    run(main())


def test_retry_auto_kicks_in_under_handshake_load(server_config: QuicConfiguration,
                                                  client_config: QuicConfiguration) -> None:
    async def main() -> None:
        limits = EndpointLimits(retry="auto", retry_threshold=1)
        server = await hq_server(server_config, limits=limits)
        async with server:
            port = server.local_address[1]
            # A client that stops after its first Initial holds a handshake slot.
            send_half_open(client_config, port)
            await asyncio.sleep(0.1)
            async with tquic.connect("127.0.0.1", port, client_config) as conn:
                assert await fetch(conn, "/100") == generated_body(100)
            assert server.endpoint.stats.retries_sent == 1  # the real client was validated

    run(main())


def test_handshakes_in_progress_are_bounded(server_config: QuicConfiguration,
                                            client_config: QuicConfiguration) -> None:
    async def main() -> None:
        server = await hq_server(server_config, limits=EndpointLimits(max_handshakes=1))
        async with server:
            port = server.local_address[1]
            send_half_open(client_config, port)
            await asyncio.sleep(0.1)
            with pytest.raises(TimeoutError):
                await tquic.connect("127.0.0.1", port, client_config, timeout=0.8)
            assert server.endpoint.stats.connections_refused >= 1

    run(main())


def test_opening_more_streams_than_the_peer_allows_waits_for_credit(
        server_config: QuicConfiguration, client_config: QuicConfiguration) -> None:
    async def main() -> None:
        config = dataclasses.replace(server_config, max_streams_bidi=4)
        server = await hq_server(config)
        async with server, tquic.connect("127.0.0.1", server.local_address[1],
                                         client_config) as conn:
            bodies = await asyncio.gather(*(fetch(conn, f"/{100 + i}") for i in range(20)))
            assert [len(b) for b in bodies] == [100 + i for i in range(20)]

    run(main())


def test_new_token_from_a_previous_connection_skips_retry(
        server_config: QuicConfiguration, client_config: QuicConfiguration) -> None:
    """RFC 9000 §8.1.3: a NEW_TOKEN token validates the address on the next connection."""
    async def main() -> None:
        server = await hq_server(server_config, retry="always")
        async with server:
            port = server.local_address[1]
            async with tquic.connect("127.0.0.1", port, client_config) as conn:
                assert await fetch(conn, "/1000") == generated_body(1000)
                token = conn.new_token
            assert token, "the server sent no NEW_TOKEN frame"
            assert server.endpoint.stats.retries_sent == 1
            again = dataclasses.replace(client_config, token=token)
            async with tquic.connect("127.0.0.1", port, again) as conn:
                assert await fetch(conn, "/1000") == generated_body(1000)
            assert server.endpoint.stats.retries_sent == 1  # no second Retry
            assert server.endpoint.stats.new_tokens_accepted == 1
            forged = dataclasses.replace(client_config, token=b"N" + os.urandom(60))
            async with tquic.connect("127.0.0.1", port, forged) as conn:
                assert await fetch(conn, "/10") == generated_body(10)
            assert server.endpoint.stats.retries_sent == 2  # an invalid token is ignored

    run(main())
