"""A small HTTP/3 file server and downloading client on aioquic's API (the anchor peer of
benchmarks/bulk_h3.py; aioquic's own examples are not shipped in its wheel).

    python benchmarks/aioquic_h3_peer.py server --port P --cert C --key K --root DIR
    python benchmarks/aioquic_h3_peer.py client --port P URL...

The server prints ``listening on PORT`` once bound and serves GET of files under
``--root`` (404 otherwise).  The client fetches the URLs concurrently on one
connection, discards the bodies and prints one JSON line: bytes and status per URL and
the seconds from the first request to the last byte.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import ssl
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import serve
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ProtocolNegotiated, QuicEvent

CHUNK = 1 << 20
WINDOW = 16 << 20


class FileServer(QuicConnectionProtocol):
    root = Path(".")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._h3: H3Connection | None = None

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ProtocolNegotiated):
            self._h3 = H3Connection(self._quic)
        if self._h3 is None:
            return
        for h3_event in self._h3.handle_event(event):
            if isinstance(h3_event, HeadersReceived) and h3_event.stream_ended:
                path = dict(h3_event.headers).get(b":path", b"/").decode()
                self._answer(h3_event.stream_id, path)
        self.transmit()

    def _answer(self, stream_id: int, path: str) -> None:
        assert self._h3 is not None
        target = (self.root / path.lstrip("/")).resolve()
        if self.root.resolve() not in target.parents or not target.is_file():
            self._h3.send_headers(stream_id, [(b":status", b"404"), (b"content-length", b"0")],
                                  end_stream=True)
            return
        data = target.read_bytes()
        self._h3.send_headers(stream_id, [(b":status", b"200"),
                                          (b"content-length", str(len(data)).encode())])
        self._h3.send_data(stream_id, data, end_stream=True)


class Downloader(QuicConnectionProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic)
        self.waiters: dict[int, asyncio.Future[None]] = {}
        self.sizes: dict[int, int] = {}
        self.statuses: dict[int, int] = {}

    async def get(self, url: str) -> tuple[int, int]:
        parts = urlsplit(url)
        stream_id = self._quic.get_next_available_stream_id()
        self.h3.send_headers(stream_id, [
            (b":method", b"GET"), (b":scheme", b"https"), (b":authority", parts.netloc.encode()),
            (b":path", (parts.path or "/").encode())], end_stream=True)
        waiter = self.waiters[stream_id] = asyncio.get_running_loop().create_future()
        self.sizes[stream_id] = 0
        self.transmit()
        await waiter
        return self.statuses.get(stream_id, 0), self.sizes[stream_id]

    def quic_event_received(self, event: QuicEvent) -> None:
        for h3_event in self.h3.handle_event(event):
            stream_id = getattr(h3_event, "stream_id", -1)
            if isinstance(h3_event, HeadersReceived):
                status = dict(h3_event.headers).get(b":status")
                if status is not None:
                    self.statuses[stream_id] = int(status)
            elif isinstance(h3_event, DataReceived):
                self.sizes[stream_id] = self.sizes.get(stream_id, 0) + len(h3_event.data)
            if getattr(h3_event, "stream_ended", False) and stream_id in self.waiters:
                self.waiters.pop(stream_id).set_result(None)


async def run_server(args: argparse.Namespace) -> None:
    config = QuicConfiguration(alpn_protocols=H3_ALPN, is_client=False,
                               max_data=WINDOW, max_stream_data=WINDOW)
    config.load_cert_chain(args.cert, args.key)
    FileServer.root = Path(args.root)
    await serve("127.0.0.1", args.port, configuration=config, create_protocol=FileServer)
    print(f"listening on {args.port}", flush=True)
    await asyncio.Event().wait()


async def run_client(args: argparse.Namespace) -> None:
    config = QuicConfiguration(alpn_protocols=H3_ALPN, is_client=True,
                               verify_mode=ssl.CERT_NONE, max_data=WINDOW,
                               max_stream_data=WINDOW)
    async with connect("127.0.0.1", args.port, configuration=config,
                       create_protocol=Downloader) as client:
        assert isinstance(client, Downloader)
        started = time.perf_counter()
        results = await asyncio.gather(*(client.get(url) for url in args.urls))
        seconds = time.perf_counter() - started
    print(json.dumps({"results": [{"url": u, "status": s, "bytes": n}
                                  for u, (s, n) in zip(args.urls, results, strict=True)],
                      "seconds": round(seconds, 6)}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="role", required=True)
    server = sub.add_parser("server")
    server.add_argument("--port", type=int, required=True)
    server.add_argument("--cert", required=True)
    server.add_argument("--key", required=True)
    server.add_argument("--root", required=True)
    client = sub.add_parser("client")
    client.add_argument("--port", type=int, required=True)
    client.add_argument("urls", nargs="+")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_server(args) if args.role == "server" else run_client(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
