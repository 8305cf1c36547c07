"""Interop with aioquic (from PyPI) over loopback, in both directions, checked by sha256.

Our client against aioquic's server and aioquic's client against our server
(tests/interop/aioquic_hq.py, run as a subprocess): 1 KB, 5 MB, 50 x 1 KB on
concurrent streams; Retry; resumption; 0-RTT; key update; ChaCha20 only; QUIC v2;
and the transfers again through a relay dropping 5 % of datagrams each way.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import sys
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

import tquic
from tquic.cli.hq import HqServer, generated_body
from tquic.core.config import QuicConfiguration
from tquic.crypto.keys import CipherSuite
from tquic.io.protocol import QuicConnectionProtocol
from tquic.wire.version import QUIC_V1, QUIC_V2

from .relay import LossyRelay

pytestmark = pytest.mark.interop

HERE = Path(__file__).resolve().parent
PEER = str(HERE / "aioquic_hq.py")
SIZES = {"1KB": [1000], "5MB": [5_000_000], "50x1KB": [1000] * 50}


def digest(size: int) -> str:
    return hashlib.sha256(generated_body(size)).hexdigest()


def run(coro: Awaitable[None], timeout: float = 60.0) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(coro, timeout)

    asyncio.run(bounded())


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from tquic.crypto.tls.certs import generate_self_signed

    cert, key = generate_self_signed()
    directory = tmp_path_factory.mktemp("interop-certs")
    (directory / "cert.pem").write_bytes(cert)
    (directory / "key.pem").write_bytes(key)
    return directory / "cert.pem", directory / "key.pem"


def client_config(certs: tuple[Path, Path], **changes: object) -> QuicConfiguration:
    base = QuicConfiguration(is_client=True, alpn_protocols=("hq-interop",),
                             cafile=str(certs[0]), server_name="localhost",
                             max_data=64 << 20, max_stream_data=32 << 20)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def server_config(certs: tuple[Path, Path], **changes: object) -> QuicConfiguration:
    base = QuicConfiguration(is_client=False, alpn_protocols=("hq-interop",),
                             certificate=certs[0].read_bytes(), private_key=certs[1].read_bytes(),
                             max_data=64 << 20, max_stream_data=32 << 20)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@asynccontextmanager
async def aioquic_server(certs: tuple[Path, Path], *flags: str) -> AsyncIterator[int]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, PEER, "server", "--cert", str(certs[0]), "--key", str(certs[1]),
        *flags, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert line.startswith(b"READY"), line
        yield int(line.split()[1])
    finally:
        proc.kill()
        await proc.wait()


async def aioquic_client(port: int, sizes: list[int], certs: tuple[Path, Path],
                         *flags: str, timeout: float = 50.0) -> dict[str, object]:
    urls = [f"https://127.0.0.1:{port}/{size}" for size in sizes]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, PEER, "client", *urls, "--ca", str(certs[0]),
        "--server-name", "localhost", *flags,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()[-2000:]
    result: dict[str, object] = json.loads(out)
    return result


async def fetch_all(conn: QuicConnectionProtocol, sizes: list[int]) -> None:
    async def one(size: int) -> None:
        reader, writer = await conn.open_stream()
        writer.write(f"GET /{size}\r\n".encode())
        writer.write_eof()
        body = await asyncio.wait_for(reader.read(), 45)
        assert len(body) == size
        assert hashlib.sha256(body).hexdigest() == digest(size)

    await asyncio.gather(*(one(size) for size in sizes))


def check_results(result: dict[str, object], sizes: list[int]) -> None:
    got = result["results"]
    assert isinstance(got, list)
    assert [r["bytes"] for r in got] == sizes
    assert all(r["sha256"] == digest(s) for r, s in zip(got, sizes, strict=True))


# -- our client, aioquic's server ------------------------------------------------------


@pytest.mark.parametrize("case", list(SIZES))
def test_tquic_client_downloads_from_aioquic(certs: tuple[Path, Path], case: str) -> None:
    async def main() -> None:
        async with aioquic_server(certs) as port, tquic.connect(
                "127.0.0.1", port, client_config(certs)) as conn:
            assert conn.alpn_protocol == "hq-interop"
            await fetch_all(conn, SIZES[case])

    run(main())


@pytest.mark.parametrize("case", list(SIZES))
def test_aioquic_client_downloads_from_tquic(certs: tuple[Path, Path], case: str) -> None:
    async def main() -> None:
        server = await tquic.serve("127.0.0.1", 0, server_config(certs), HqServer(None))
        async with server:
            result = await aioquic_client(server.local_address[1], SIZES[case], certs)
            check_results(result, SIZES[case])

    run(main())


def test_tquic_client_follows_aioquic_retry(certs: tuple[Path, Path]) -> None:
    async def main() -> None:
        async with aioquic_server(certs, "--retry") as port, tquic.connect(
                "127.0.0.1", port, client_config(certs)) as conn:
            await fetch_all(conn, [20000])

    run(main())


def test_aioquic_client_follows_tquic_retry(certs: tuple[Path, Path]) -> None:
    async def main() -> None:
        server = await tquic.serve("127.0.0.1", 0, server_config(certs), HqServer(None),
                                   retry="always")
        async with server:
            check_results(await aioquic_client(server.local_address[1], [20000], certs),
                          [20000])
            assert server.endpoint.stats.retries_sent == 1

    run(main())


def test_tquic_client_resumes_and_sends_0rtt_to_aioquic(certs: tuple[Path, Path]) -> None:
    async def main() -> None:
        async with aioquic_server(certs) as port:
            async with tquic.connect("127.0.0.1", port, client_config(certs)) as first:
                await fetch_all(first, [1000])
                for _ in range(50):
                    if first.session_ticket is not None:
                        break
                    await asyncio.sleep(0.02)
                ticket = first.session_ticket
            assert ticket is not None, "aioquic sent no NewSessionTicket"
            config = client_config(certs, session_ticket=ticket, enable_early_data=True)
            async with tquic.connect("127.0.0.1", port, config,
                                     wait_connected=False) as second:
                task = asyncio.ensure_future(fetch_all(second, [3000]))  # 0-RTT request
                await second.wait_connected()
                await task
                assert second.session_resumed
                assert second.early_data_accepted

    run(main())


def test_aioquic_client_resumes_a_tquic_session(certs: tuple[Path, Path],
                                                tmp_path: Path) -> None:
    from tquic.crypto.tls.tickets import TicketStore

    async def main() -> None:
        config = server_config(certs, ticket_store=TicketStore(), enable_early_data=True)
        server = await tquic.serve("127.0.0.1", 0, config, HqServer(None))
        ticket = str(tmp_path / "ticket.bin")
        async with server:
            port = server.local_address[1]
            check_results(await aioquic_client(port, [1000], certs, "--session-ticket", ticket),
                          [1000])
            assert Path(ticket).exists(), "tquic sent no NewSessionTicket"
            second = await aioquic_client(port, [3000], certs, "--session-ticket", ticket)
            check_results(second, [3000])
            assert second["session_resumed"] is True
            assert second["early_data_accepted"] is True  # TLS accepted early data

    run(main())


def test_aioquic_client_sends_0rtt_request_to_tquic(certs: tuple[Path, Path],
                                                    tmp_path: Path) -> None:
    from tquic.crypto.tls.tickets import TicketStore

    async def main() -> None:
        config = server_config(certs, ticket_store=TicketStore(), enable_early_data=True)
        server = await tquic.serve("127.0.0.1", 0, config, HqServer(None))
        ticket = str(tmp_path / "ticket.bin")
        async with server:
            port = server.local_address[1]
            check_results(await aioquic_client(port, [1000], certs, "--session-ticket", ticket),
                          [1000])
            second = await aioquic_client(port, [3000], certs, "--session-ticket", ticket,
                                          "--zero-rtt", timeout=6.0)
            check_results(second, [3000])
            assert second["early_data_accepted"] is True

    run(main())


def test_aioquic_client_follows_the_tquic_servers_preferred_address(
        certs: tuple[Path, Path]) -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        preferred = ("127.0.0.1", probe.getsockname()[1])
    seen: list[QuicConnectionProtocol] = []

    async def main() -> None:
        config = server_config(certs, preferred_address_v4=preferred)
        server = await tquic.serve("127.0.0.1", 0, config, HqServer(None),
                                   connection_handler=seen.append)
        async with server:
            check_results(await aioquic_client(server.local_address[1], [2_000_000], certs),
                          [2_000_000])
        # RFC 9000 §9.6: aioquic validated the preferred address and moved there.
        assert [conn.local_address for conn in seen] == [preferred]

    run(main())


def test_tquic_client_key_update_with_aioquic(certs: tuple[Path, Path]) -> None:
    async def main() -> None:
        async with aioquic_server(certs) as port, tquic.connect(
                "127.0.0.1", port, client_config(certs)) as conn:
            await fetch_all(conn, [100_000])
            phase = conn.quic.key_phase
            conn.request_key_update()
            await fetch_all(conn, [2_000_000])
            assert conn.quic.key_phase != phase

    run(main())


def test_aioquic_client_key_update_with_tquic(certs: tuple[Path, Path]) -> None:
    async def main() -> None:
        server = await tquic.serve("127.0.0.1", 0, server_config(certs), HqServer(None))
        async with server:
            result = await aioquic_client(server.local_address[1], [2_000_000], certs,
                                          "--key-update")
            check_results(result, [2_000_000])
            [conn] = server.connections or [None]
            if conn is not None:
                assert conn.quic.key_phase == 1  # we followed the peer's update

    run(main())


def test_chacha20_only_both_directions(certs: tuple[Path, Path]) -> None:
    async def main() -> None:
        async with aioquic_server(certs, "--chacha") as port, tquic.connect(
                "127.0.0.1", port, client_config(certs)) as conn:
            await fetch_all(conn, [300_000])
            assert conn.quic.cipher_suite == CipherSuite.CHACHA20_POLY1305_SHA256
        server = await tquic.serve("127.0.0.1", 0, server_config(certs), HqServer(None))
        async with server:
            check_results(await aioquic_client(server.local_address[1], [300_000], certs,
                                               "--chacha"), [300_000])

    run(main())


def test_quic_v2_both_directions(certs: tuple[Path, Path]) -> None:
    async def main() -> None:
        async with aioquic_server(certs, "--v2") as port, tquic.connect(
                "127.0.0.1", port, client_config(certs, versions=(QUIC_V2, QUIC_V1))) as conn:
            await fetch_all(conn, [300_000])
            assert conn.quic.version == QUIC_V2
        # The server's versions order is its preference (RFC 9368 compatible
        # negotiation): preferring v2, it keeps the client's v2.
        server = await tquic.serve("127.0.0.1", 0,
                                   server_config(certs, versions=(QUIC_V2, QUIC_V1)),
                                   HqServer(None))
        async with server:
            result = await aioquic_client(server.local_address[1], [300_000], certs, "--v2")
            check_results(result, [300_000])
            assert result["version"] == QUIC_V2

    run(main())


def test_server_preferring_v1_moves_an_aioquic_v2_client_to_v1(
        certs: tuple[Path, Path]) -> None:
    # aioquic starts in v2 and lists v1 as available; the default tquic server (v1
    # first) switches the connection to v1 without a round trip (RFC 9368 §2.3), and
    # aioquic follows: compatible negotiation checked against another implementation.
    async def main() -> None:
        server = await tquic.serve("127.0.0.1", 0, server_config(certs), HqServer(None))
        async with server:
            result = await aioquic_client(server.local_address[1], [300_000], certs, "--v2")
            check_results(result, [300_000])
            assert result["version"] == QUIC_V1

    run(main())


# -- 5 % loss each way ------------------------------------------------------------------


@pytest.mark.parametrize("case", ["5MB", "50x1KB"])
def test_tquic_client_from_aioquic_through_lossy_relay(certs: tuple[Path, Path],
                                                       case: str) -> None:
    async def main() -> None:
        async with aioquic_server(certs) as port:
            relay = LossyRelay(("127.0.0.1", port), loss=0.05)
            relay_port = await relay.start()
            try:
                async with tquic.connect("127.0.0.1", relay_port, client_config(certs)) as conn:
                    await fetch_all(conn, SIZES[case])
                assert relay.dropped > 0
            finally:
                relay.close()

    run(main(), 90.0)


@pytest.mark.parametrize("case", ["5MB", "50x1KB"])
def test_aioquic_client_from_tquic_through_lossy_relay(certs: tuple[Path, Path],
                                                       case: str) -> None:
    async def main() -> None:
        server = await tquic.serve("127.0.0.1", 0, server_config(certs), HqServer(None))
        async with server:
            relay = LossyRelay(server.local_address, loss=0.05)
            relay_port = await relay.start()
            try:
                result = await aioquic_client(relay_port, SIZES[case], certs)
                check_results(result, SIZES[case])
                assert relay.dropped > 0
            finally:
                relay.close()

    run(main(), 90.0)
