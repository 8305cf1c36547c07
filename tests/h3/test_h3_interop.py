"""HTTP/3 interop with aioquic (another implementation's QUIC, TLS, QPACK and HTTP/3) over UDP."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import pytest

from tquic.core.config import QuicConfiguration
from tquic.crypto.tls.certs import generate_self_signed
from tquic.h3.aio import connect_h3, serve_h3
from tquic.h3.messages import Request, Response, response

aioquic_asyncio = pytest.importorskip("aioquic.asyncio")  # the [interop] extra
from aioquic.asyncio.protocol import QuicConnectionProtocol  # noqa: E402
from aioquic.h3.connection import H3_ALPN  # noqa: E402
from aioquic.h3.connection import H3Connection as AioH3  # noqa: E402
from aioquic.h3.events import DataReceived as AioData  # noqa: E402
from aioquic.h3.events import HeadersReceived as AioHeaders  # noqa: E402
from aioquic.quic.configuration import QuicConfiguration as AioConfig  # noqa: E402

pytestmark = pytest.mark.interop


class AioServerProtocol(QuicConnectionProtocol):
    """An aioquic HTTP/3 server answering every request with its path."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._h3: Any = None

    def quic_event_received(self, event: Any) -> None:
        if self._h3 is None:
            self._h3 = AioH3(self._quic)
        for h3_event in self._h3.handle_event(event):
            if isinstance(h3_event, AioHeaders) and h3_event.stream_ended:
                path = dict(h3_event.headers)[b":path"]
                self._h3.send_headers(h3_event.stream_id, [(b":status", b"200"), (b"server", b"aioquic")])
                self._h3.send_data(h3_event.stream_id, b"aioquic:" + path, end_stream=True)
        self.transmit()


class AioClientProtocol(QuicConnectionProtocol):
    """An aioquic HTTP/3 client collecting one response per stream."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.h3 = AioH3(self._quic)
        self.waiters: dict[int, asyncio.Future[tuple[list[Any], bytes]]] = {}
        self._heads: dict[int, list[Any]] = {}
        self._bodies: dict[int, bytes] = {}

    async def get(self, authority: str, path: str) -> tuple[list[Any], bytes]:
        stream_id = self._quic.get_next_available_stream_id()
        self.h3.send_headers(stream_id, [
            (b":method", b"GET"), (b":scheme", b"https"), (b":authority", authority.encode()),
            (b":path", path.encode()),
        ], end_stream=True)
        future: asyncio.Future[tuple[list[Any], bytes]] = asyncio.get_running_loop().create_future()
        self.waiters[stream_id] = future
        self.transmit()
        return await future

    def quic_event_received(self, event: Any) -> None:
        for h3_event in self.h3.handle_event(event):
            sid: int = getattr(h3_event, "stream_id", -1)
            if isinstance(h3_event, AioHeaders):
                self._heads.setdefault(sid, []).extend(h3_event.headers)
            elif isinstance(h3_event, AioData):
                self._bodies[sid] = self._bodies.get(sid, b"") + h3_event.data
            if getattr(h3_event, "stream_ended", False) and sid in self.waiters:
                self.waiters.pop(sid).set_result((self._heads.get(sid, []), self._bodies.get(sid, b"")))


def _cert_files(tmp_path: Path) -> tuple[str, str, bytes, bytes]:
    cert, key = generate_self_signed()
    (tmp_path / "cert.pem").write_bytes(cert)
    (tmp_path / "key.pem").write_bytes(key)
    return str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"), cert, key


def test_tquic_client_against_aioquic_server(tmp_path: Path) -> None:
    certfile, keyfile, _, _ = _cert_files(tmp_path)

    async def main() -> None:
        config = AioConfig(alpn_protocols=H3_ALPN, is_client=False)
        config.load_cert_chain(certfile, keyfile)
        server = await aioquic_asyncio.serve(
            "127.0.0.1", 0, configuration=config, create_protocol=AioServerProtocol
        )
        port = server._transport.get_extra_info("sockname")[1]
        try:
            client = await connect_h3("127.0.0.1", port, QuicConfiguration(verify_peer=False), timeout=5)
            async with client:
                replies = await asyncio.gather(
                    *(client.request("GET", f"https://127.0.0.1:{port}/item/{i}") for i in range(5))
                )
            assert [r.body for r in replies] == [f"aioquic:/item/{i}".encode() for i in range(5)]
            assert all(r.status == 200 and r.header("server") == b"aioquic" for r in replies)
        finally:
            server.close()

    asyncio.run(asyncio.wait_for(main(), 20))


def test_aioquic_client_against_tquic_server(tmp_path: Path) -> None:
    _, _, cert, key = _cert_files(tmp_path)

    async def handler(request: Request) -> Response:
        if request.path == "/missing":
            return response(404, "nothing here")
        return response(200, f"tquic:{request.path}", {"server": "tquic"})

    async def main() -> None:
        server = await serve_h3(
            "127.0.0.1", 0, QuicConfiguration(is_client=False, certificate=cert, private_key=key), handler
        )
        port = server.local_address[1]
        config = AioConfig(alpn_protocols=H3_ALPN, is_client=True, verify_mode=ssl.CERT_NONE)
        try:
            async with aioquic_asyncio.connect(
                "127.0.0.1", port, configuration=config, create_protocol=AioClientProtocol
            ) as client:
                head, body = await asyncio.wait_for(client.get("localhost", "/hello?x=1"), 5)
                assert (b":status", b"200") in head and (b"server", b"tquic") in head
                assert body == b"tquic:/hello?x=1"
                head, body = await asyncio.wait_for(client.get("localhost", "/missing"), 5)
                assert (b":status", b"404") in head and body == b"nothing here"
        finally:
            server.close()

    asyncio.run(asyncio.wait_for(main(), 20))
