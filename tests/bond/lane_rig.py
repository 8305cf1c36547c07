"""A TCP lane on loopback for tests: a tquic HTTP/3 server running ConnectRelayHandler,
a client (single path, or two paths from 127.0.0.1 and 127.0.0.2), a SOCKS5
listener on the client, and small TCP targets (a byte server, an echo server).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from tquic.bond.tcp_lane import (
    BearerTokens,
    ConnectRelayHandler,
    H3Opener,
    LaneListener,
    SocksCredentials,
    TargetPolicy,
    serve_socks,
)
from tquic.core.config import QuicConfiguration
from tquic.crypto.tls.certs import generate_self_signed
from tquic.h3.aio import H3Bridge, _h3_quic_config, connect_h3, serve_h3
from tquic.h3.api import H3Client
from tquic.h3.messages import Request, Response, response
from tquic.h3.settings import H3Config
from tquic.io.multipath_client import (
    LocalPath,
    bind_path_sockets,
    connect_multipath,
    open_extra_paths,
)

TOKEN = "lane-test-token"
H3 = H3Config(enable_connect_protocol=True, enable_datagrams=True)


@lru_cache(maxsize=1)
def cert() -> tuple[bytes, bytes]:
    return generate_self_signed(("localhost", "127.0.0.1"))


async def not_found(request: Request) -> Response:
    return response(404, "no such thing")


@dataclass
class Body:
    """A target that sends ``data`` to whoever connects, then FIN; counts what it read."""

    data: bytes
    received: list[bytes] = field(default_factory=list)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):  # the lane may be torn down meanwhile
            writer.write(self.data)
            await writer.drain()
            writer.write_eof()
            self.received.append(await reader.read())
        writer.close()


def http_body(size: int) -> tuple[bytes, bytes]:
    """(the response curl receives, its body): an HTTP/1.0 answer to any request."""
    body = os.urandom(size)
    head = f"HTTP/1.0 200 OK\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n".encode()
    return head + body, body


class HttpTarget:
    """A minimal HTTP/1.0 server: reads a request head, answers with ``answer``."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.requests: list[bytes] = []

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            self.requests.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(self.answer)
            await writer.drain()
        writer.close()


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Echoes until the client's FIN, then sends its own FIN (half-close both ways)."""
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.write_eof()
    await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def tcp_target(handler: Any, host: str = "127.0.0.1") -> AsyncIterator[int]:
    server = await asyncio.start_server(handler, host, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


@dataclass
class Lane:
    server: Any  # QuicServer
    handler: ConnectRelayHandler
    client: H3Client
    socks: LaneListener
    opener: H3Opener

    @property
    def socks_port(self) -> int:
        return self.socks.address[1]

    async def settled(self, timeout: float = 3.0) -> None:
        """Wait until no relay is running on either side (counters are final then)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.socks.counters.active or self.handler.counters.active:
            assert loop.time() < deadline, "relays still running"
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running_lane(policy: TargetPolicy | None = None, *, token: str | None = TOKEN,
                       credentials: SocksCredentials | None = None,
                       multipath: bool = False) -> AsyncIterator[Lane]:
    """Server + client + SOCKS listener; ``policy`` defaults to allowing loopback."""
    certificate, key = cert()
    if policy is None:
        policy = TargetPolicy.build(allow=["127.0.0.0/8", "::1/128"])
    handler = ConnectRelayHandler(policy, authenticate=BearerTokens.from_tokens({"site": TOKEN}))
    server_quic = QuicConfiguration(is_client=False, certificate=certificate, private_key=key,
                                    max_path_id=4 if multipath else None,
                                    scheduler="roundrobin" if multipath else "minrtt")
    server = await serve_h3("127.0.0.1", 0, server_quic, not_found, h3_config=H3,
                            connect_handler=handler)
    port = server.local_address[1]
    client_quic = QuicConfiguration(is_client=True, verify_peer=False, server_name="localhost",
                                    max_path_id=4 if multipath else None,
                                    scheduler="roundrobin" if multipath else "minrtt")
    if multipath:
        client = await _multipath_client(port, client_quic)
    else:
        client = await connect_h3("127.0.0.1", port, client_quic, h3_config=H3, timeout=10)
    opener = H3Opener(client, token=token, server_authority=f"localhost:{port}", timeout=10)
    socks = await serve_socks("127.0.0.1:0", opener, credentials)
    try:
        yield Lane(server, handler, client, socks, opener)
    finally:
        await socks.aclose()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.aclose(), 5)
        server.close()


async def _multipath_client(port: int, config: QuicConfiguration) -> H3Client:
    sockets = bind_path_sockets([LocalPath("127.0.0.1"), LocalPath("127.0.0.2")])
    quic_config = _h3_quic_config(config, H3, is_client=True)
    proto = await connect_multipath("127.0.0.1", port, quic_config, sockets,
                                    wait_connected=False, timeout=10)
    bridge = H3Bridge(proto, lambda quic, transmit: H3Client(quic, transmit, H3))
    client = await asyncio.wait_for(bridge.ready, 10)
    _, note = await open_extra_paths(proto, sockets[1:], timeout=10)
    assert note is None, note
    return client


async def curl(*args: str, timeout: float = 60.0) -> tuple[int, bytes, bytes]:
    """Run curl; (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        "curl", "--silent", "--show-error", "--max-time", str(int(timeout)), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout + 5)
    return proc.returncode or 0, out, err


async def socks_connect(port: int, request: bytes, *, methods: bytes = b"\x00",
                        userpass: bytes | None = None
                        ) -> tuple[int, asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw SOCKS5 client: greeting, optional RFC 1929 message, ``request``; returns
    (REP of the reply, reader, writer).  Raises AssertionError on an unexpected answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(bytes((5, len(methods))) + methods)
    choice = await asyncio.wait_for(reader.readexactly(2), 5)
    assert choice[0] == 5, choice
    if userpass is not None:
        assert choice[1] == 2, choice
        writer.write(userpass)
        status = await asyncio.wait_for(reader.readexactly(2), 5)
        assert status == b"\x01\x00", status
    writer.write(request)
    head = await asyncio.wait_for(reader.readexactly(4), 15)
    assert head[0] == 5 and head[2] == 0, head
    rest = {1: 4, 4: 16}.get(head[3])
    if rest is None:
        rest = (await reader.readexactly(1))[0]
    await reader.readexactly(rest + 2)
    return head[1], reader, writer
