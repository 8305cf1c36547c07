"""WebTransport interop with aioquic's HTTP/3 layer (draft-02, as Chromium speaks it), both ways:
bidirectional and unidirectional streams checked by sha256, datagrams echoed."""

from __future__ import annotations

import asyncio
import hashlib
import os
import ssl
from pathlib import Path
from typing import Any

import pytest
from wt_helpers import CERT, KEY, client_config, wt_server

from tquic.h3.webtransport import WtVersion, connect_webtransport

aioquic_asyncio = pytest.importorskip("aioquic.asyncio")
from aioquic.asyncio.protocol import QuicConnectionProtocol  # noqa: E402
from aioquic.h3.connection import H3_ALPN  # noqa: E402
from aioquic.h3.connection import FrameType as AioFrameType  # noqa: E402
from aioquic.h3.connection import H3Connection as AioH3  # noqa: E402
from aioquic.h3.events import DatagramReceived as AioDatagram  # noqa: E402
from aioquic.h3.events import HeadersReceived as AioHeaders  # noqa: E402
from aioquic.h3.events import WebTransportStreamDataReceived as AioWtData  # noqa: E402
from aioquic.quic.configuration import QuicConfiguration as AioConfig  # noqa: E402
from aioquic.quic.events import ProtocolNegotiated  # noqa: E402

pytestmark = pytest.mark.interop
SIZES = (1, 70_000, 300_000)
AIO_WT_STREAM = AioFrameType.WEBTRANSPORT_STREAM


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class AioEchoServer(QuicConnectionProtocol):
    """aioquic WebTransport echo: bidi on the same stream, uni on a new uni stream, datagrams."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._h3: Any = None
        self._uni: dict[int, bytes] = {}

    def quic_event_received(self, event: Any) -> None:
        if isinstance(event, ProtocolNegotiated):
            self._h3 = AioH3(self._quic, enable_webtransport=True)
        if self._h3 is None:
            return
        for ev in self._h3.handle_event(event):
            if isinstance(ev, AioHeaders) and (b":protocol", b"webtransport") in ev.headers:
                self._h3.send_headers(ev.stream_id, [(b":status", b"200"),
                                                     (b"sec-webtransport-http3-draft", b"draft02")])
            elif isinstance(ev, AioWtData):
                if ev.stream_id & 0x2:
                    self._uni[ev.stream_id] = self._uni.get(ev.stream_id, b"") + ev.data
                    if ev.stream_ended:
                        reply = self._h3.create_webtransport_stream(ev.session_id, is_unidirectional=True)
                        self._quic.send_stream_data(reply, self._uni.pop(ev.stream_id), end_stream=True)
                else:
                    self._quic.send_stream_data(ev.stream_id, ev.data, end_stream=ev.stream_ended)
            elif isinstance(ev, AioDatagram):
                self._h3.send_datagram(ev.stream_id, ev.data)
        self.transmit()


def test_tquic_client_with_aioquic_webtransport_server(tmp_path: Path) -> None:
    (tmp_path / "c.pem").write_bytes(CERT)
    (tmp_path / "k.pem").write_bytes(KEY)

    async def main() -> None:
        config = AioConfig(alpn_protocols=H3_ALPN, is_client=False, max_datagram_frame_size=65536)
        config.load_cert_chain(str(tmp_path / "c.pem"), str(tmp_path / "k.pem"))
        server = await aioquic_asyncio.serve("127.0.0.1", 0, configuration=config,
                                             create_protocol=AioEchoServer)
        port = server._transport.get_extra_info("sockname")[1]
        try:
            session = await connect_webtransport(f"https://127.0.0.1:{port}/wt", client_config())
            async with session:
                assert session.version is WtVersion.DRAFT02
                payloads = [os.urandom(n) for n in SIZES]

                async def bidi(data: bytes) -> bytes:
                    stream = await session.create_bidirectional_stream()
                    await stream.write(data)
                    stream.close()
                    return await stream.read_all()

                echoes = await asyncio.gather(*(bidi(p) for p in payloads))
                assert [sha(e) for e in echoes] == [sha(p) for p in payloads]
                uni = await session.create_unidirectional_stream()
                await uni.write_all_and_close(payloads[1])
                back = await session.incoming_unidirectional_streams.accept()
                assert sha(await back.read_all()) == sha(payloads[1])
                session.datagrams.send(b"ping")
                assert await asyncio.wait_for(session.datagrams.receive(), 5) == b"ping"
        finally:
            server.close()

    asyncio.run(asyncio.wait_for(main(), 30))


class AioWtClient(QuicConnectionProtocol):
    """aioquic WebTransport client collecting stream and datagram echoes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.h3 = AioH3(self._quic, enable_webtransport=True)
        self.status: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.data: dict[int, bytes] = {}
        self.ended: dict[int, asyncio.Future[bytes]] = {}
        self.uni_back: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.datagrams: asyncio.Queue[bytes] = asyncio.Queue()

    def quic_event_received(self, event: Any) -> None:
        for ev in self.h3.handle_event(event):
            if isinstance(ev, AioHeaders) and not self.status.done():
                self.status.set_result(dict(ev.headers)[b":status"])
            elif isinstance(ev, AioWtData):
                self.data[ev.stream_id] = self.data.get(ev.stream_id, b"") + ev.data
                if ev.stream_ended:
                    body = self.data.pop(ev.stream_id)
                    if ev.stream_id & 0x2:
                        self.uni_back.set_result(body)
                    else:
                        self.ended[ev.stream_id].set_result(body)
            elif isinstance(ev, AioDatagram):
                self.datagrams.put_nowait(ev.data)


def test_aioquic_webtransport_client_with_tquic_server() -> None:
    async def main() -> None:
        async with wt_server() as port:
            config = AioConfig(alpn_protocols=H3_ALPN, is_client=True, verify_mode=ssl.CERT_NONE,
                               max_datagram_frame_size=65536)
            async with aioquic_asyncio.connect("127.0.0.1", port, configuration=config,
                                               create_protocol=AioWtClient) as client:
                session_id = client._quic.get_next_available_stream_id()
                client.h3.send_headers(session_id, [
                    (b":method", b"CONNECT"), (b":scheme", b"https"), (b":protocol", b"webtransport"),
                    (b":authority", f"127.0.0.1:{port}".encode()), (b":path", b"/echo"),
                    (b"sec-webtransport-http3-draft02", b"1"), (b"origin", b"https://example.org")])
                client.transmit()
                assert await asyncio.wait_for(client.status, 5) == b"200"
                payloads = [os.urandom(n) for n in SIZES]
                for data in payloads:
                    stream_id = client.h3.create_webtransport_stream(session_id)
                    # aioquic 1.x does not mark the bidi WebTransport streams *it* opens, so it
                    # would parse the echo as HTTP/3 frames; mark them as its server side does.
                    with client.h3._get_or_create_stream(stream_id) as stream:
                        stream.frame_type, stream.session_id = AIO_WT_STREAM, session_id
                    client.ended[stream_id] = asyncio.get_running_loop().create_future()
                    client._quic.send_stream_data(stream_id, data, end_stream=True)
                uni = client.h3.create_webtransport_stream(session_id, is_unidirectional=True)
                client._quic.send_stream_data(uni, payloads[1], end_stream=True)
                client.h3.send_datagram(session_id, b"ping")
                client.transmit()
                echoes = await asyncio.wait_for(asyncio.gather(*client.ended.values()), 15)
                assert [sha(e) for e in echoes] == [sha(p) for p in payloads]
                assert sha(await asyncio.wait_for(client.uni_back, 5)) == sha(payloads[1])
                assert await asyncio.wait_for(client.datagrams.get(), 5) == b"ping"

    asyncio.run(asyncio.wait_for(main(), 30))
