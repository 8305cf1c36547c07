"""A live server keeps serving while random and mutated datagrams hit its socket, and
nothing it logs carries a traceback (DESIGN.md: no exception from the network escapes)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
import socket
from typing import Any

import pytest

import tquic
from tquic.cli.hq import HqServer, generated_body
from tquic.core.config import QuicConfiguration
from tquic.io.endpoint import QuicEndpoint
from tquic.paths.network_path import NetworkPath
from tquic.wire.version import QUIC_V1, QUIC_V2

FUZZ_SECONDS = 3.0


def _mutate(rng: random.Random, datagram: bytes) -> bytes:
    data = bytearray(datagram)
    choice = rng.randrange(5)
    if choice == 0 and len(data) > 1:  # flip bits past the first byte (never stays valid)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(1, len(data))] ^= 1 << rng.randrange(8)
        return bytes(data)
    if choice == 1:  # truncate
        return bytes(data[: rng.randrange(0, len(data) + 1)])
    if choice == 2:  # insert junk
        at = rng.randrange(0, len(data) + 1)
        return bytes(data[:at]) + os.urandom(rng.randint(1, 40)) + bytes(data[at:])
    if choice == 3:  # random long header of a real version, random body
        version = rng.choice([QUIC_V1, QUIC_V2, 0, 0x1A2A3A4A])
        return (bytes((0xC0 | rng.randrange(64),)) + version.to_bytes(4, "big")
                + os.urandom(rng.randint(0, 1300)))
    return os.urandom(rng.randint(0, 1500))  # pure noise


def test_transfers_complete_while_the_server_is_fuzzed(
        server_config: QuicConfiguration, client_config: QuicConfiguration,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="tquic")
    captured: list[bytes] = []
    original_send = QuicEndpoint.send_datagrams

    def capture(self: QuicEndpoint, datagrams: list[tuple[bytes, NetworkPath]],
                ecn: Any = None) -> None:
        if not self.is_server and len(captured) < 500:
            captured.extend(d for d, _ in datagrams)
        original_send(self, datagrams, ecn)

    async def fuzz(port: int, stop: asyncio.Event) -> int:
        rng = random.Random(1234)
        sent = 0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            while not stop.is_set():
                for _ in range(50):
                    base = rng.choice(captured) if captured else b""
                    try:
                        sock.sendto(_mutate(rng, base), ("127.0.0.1", port))
                        sent += 1
                    except OSError:
                        pass
                await asyncio.sleep(0.002)
        return sent

    async def main() -> None:
        server = await tquic.serve("127.0.0.1", 0, server_config, HqServer(None))
        port = server.local_address[1]
        stop = asyncio.Event()
        expected = hashlib.sha256(generated_body(1_000_000)).hexdigest()
        async with server, tquic.connect("127.0.0.1", port, client_config) as conn:
            fuzzer = asyncio.get_running_loop().create_task(fuzz(port, stop))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + FUZZ_SECONDS
            transfers = 0
            while loop.time() < deadline:
                reader, writer = await conn.open_stream()
                writer.write(b"GET /1000000\r\n")
                writer.write_eof()
                body = await asyncio.wait_for(reader.read(), 20.0)
                assert hashlib.sha256(body).hexdigest() == expected
                transfers += 1
            stop.set()
            sent = await fuzzer
        assert transfers >= 2
        assert sent > 1000
        assert server.endpoint.stats.datagrams_dropped > 0  # the garbage was seen and dropped

    QuicEndpoint.send_datagrams = capture  # type: ignore[method-assign]
    try:
        asyncio.run(asyncio.wait_for(main(), 60.0))
    finally:
        QuicEndpoint.send_datagrams = original_send  # type: ignore[method-assign]
    tracebacks = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not tracebacks, tracebacks[0].getMessage()
