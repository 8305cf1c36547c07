"""A blocking, socket-like QUIC API: ``tquic.socket``.

Each :class:`QuicSocket` is one bidirectional QUIC stream, the way a TCP
socket is one byte stream: ``connect`` opens a connection and a stream,
``send``/``recv`` move bytes, ``shutdown(SHUT_WR)`` sends FIN, ``close``
closes.  A listening socket's ``accept`` returns one socket per stream a
client opens.  Options are set with ``setsockopt(name, value)`` before
``connect``/``bind`` (any :class:`~tquic.core.config.QuicConfiguration`
field, e.g. ``"congestion_control"``, ``"alpn_protocols"``, ``"verify_peer"``)
and timeouts with ``settimeout`` (``TimeoutError``, i.e. ``socket.timeout``).

The asyncio machinery runs on one shared background thread; every call
here hands a coroutine to it and waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import queue
import socket as _socket
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from tquic.core.config import QuicConfiguration
from tquic.io.protocol import QuicConnectionProtocol
from tquic.io.streams import QuicStreamReader, QuicStreamWriter

T = TypeVar("T")

SHUT_RD = _socket.SHUT_RD
SHUT_WR = _socket.SHUT_WR
SHUT_RDWR = _socket.SHUT_RDWR

# Short aliases accepted by setsockopt.
_ALIASES = {"cc": "congestion_control", "alpn": "alpn_protocols", "ca": "cafile",
            "insecure": "verify_peer"}


class _LoopThread:
    """The one background event loop shared by every QuicSocket of the process."""

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def loop(cls) -> asyncio.AbstractEventLoop:
        with cls._lock:
            if cls._loop is None or cls._loop.is_closed():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="tquic-loop",
                                          daemon=True)
                thread.start()
                cls._loop = loop
            return cls._loop


def _run(coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
    future = asyncio.run_coroutine_threadsafe(coro, _LoopThread.loop())
    try:
        return future.result(timeout)
    except TimeoutError:
        future.cancel()
        raise TimeoutError("timed out") from None


class QuicSocket:
    """One QUIC stream with a blocking socket interface."""

    def __init__(self, config: QuicConfiguration | None = None) -> None:
        self._options: dict[str, Any] = {}
        self._base = config
        self._timeout: float | None = None
        self._conn: QuicConnectionProtocol | None = None
        self._reader: QuicStreamReader | None = None
        self._writer: QuicStreamWriter | None = None
        self._owns_connection = False
        self._server: Any = None
        self._accepted: queue.Queue[QuicSocket] | None = None
        self._release: asyncio.Event | None = None
        self._closed = False

    # -- options ----------------------------------------------------------------------

    def setsockopt(self, name: str, value: Any) -> None:
        """Set a QuicConfiguration field (validated when the connection is made)."""
        if name == "insecure":
            value = not value
        name = _ALIASES.get(name, name)
        if name == "alpn_protocols" and isinstance(value, str):
            value = (value,)
        if name not in {f.name for f in dataclasses.fields(QuicConfiguration)}:
            raise OSError(f"unknown option {name!r}")
        self._options[name] = value

    def getsockopt(self, name: str) -> Any:
        name = _ALIASES.get(name, name)
        if name in self._options:
            return self._options[name]
        return getattr(self._base or QuicConfiguration(), name)

    def settimeout(self, timeout: float | None) -> None:
        self._timeout = timeout

    def gettimeout(self) -> float | None:
        return self._timeout

    def _config(self, is_client: bool) -> QuicConfiguration:
        base = self._base or QuicConfiguration(is_client=is_client, **(
            {} if is_client else {k: self._options[k] for k in ("certificate", "private_key")
                                  if k in self._options}))
        return dataclasses.replace(base, is_client=is_client, **self._options)

    # -- client -----------------------------------------------------------------------

    def connect(self, address: tuple[str, int]) -> None:
        """Open a QUIC connection to ``address`` and a bidirectional stream on it."""
        if self._conn is not None:
            raise OSError("already connected")
        host, port = address
        config = self._config(True)

        async def go() -> tuple[QuicConnectionProtocol, QuicStreamReader, QuicStreamWriter]:
            from tquic.io.api import connect

            conn = await connect(host, port, config, timeout=self._timeout)
            reader, writer = await conn.open_stream()
            return conn, reader, writer

        self._conn, self._reader, self._writer = _run(go(), None)
        self._owns_connection = True

    @property
    def connection(self) -> QuicConnectionProtocol | None:
        return self._conn

    def getpeername(self) -> tuple[str, int]:
        return self._require().remote_address

    def getsockname(self) -> tuple[str, int]:
        if self._server is not None:
            return tuple(self._server.local_address)
        return self._require().local_address

    def migrate(self, local_host: str, local_port: int = 0) -> tuple[str, int]:
        """Client: move the connection to a new local address (RFC 9000 §9.2); the new
        local address once validated, ``tquic.io.protocol.MigrationError`` (and the old
        address kept) otherwise."""
        return _run(self._require().migrate(local_host, local_port), None)

    def _require(self) -> QuicConnectionProtocol:
        if self._conn is None:
            raise OSError("not connected")
        return self._conn

    # -- data -------------------------------------------------------------------------

    def send(self, data: bytes) -> int:
        """Queue ``data`` on the stream; blocks while the send buffer is full."""
        writer = self._writer
        if writer is None:
            raise OSError("not connected")

        async def go() -> None:
            writer.write(data)
            await writer.drain()

        _run(go(), self._timeout)
        return len(data)

    def sendall(self, data: bytes) -> None:
        self.send(data)

    def recv(self, bufsize: int) -> bytes:
        """Up to ``bufsize`` bytes; b"" once the peer finished its side (FIN)."""
        reader = self._reader
        if reader is None:
            raise OSError("not connected")
        return _run(reader.read(bufsize), self._timeout)

    def shutdown(self, how: int = SHUT_WR) -> None:
        if how in (SHUT_WR, SHUT_RDWR) and self._writer is not None:
            writer = self._writer

            async def go() -> None:
                writer.write_eof()

            _run(go(), self._timeout)

    def send_datagram(self, data: bytes) -> None:
        """Send an unreliable DATAGRAM frame (RFC 9221) on this socket's connection."""
        conn = self._require()

        async def go() -> None:
            conn.send_datagram(data)

        _run(go(), self._timeout)

    def recv_datagram(self) -> bytes:
        return _run(self._require().receive_datagram(), self._timeout)

    # -- server -----------------------------------------------------------------------

    def bind(self, address: tuple[str, int]) -> None:
        self._bind_address = address

    def listen(self, backlog: int = 128) -> None:
        """Start serving; every stream a client opens becomes one ``accept()`` result."""
        address = getattr(self, "_bind_address", None)
        if address is None:
            raise OSError("bind() first")
        config = self._config(False)
        accepted: queue.Queue[QuicSocket] = queue.Queue(maxsize=max(1, backlog))
        self._accepted = accepted

        async def handler(reader: QuicStreamReader, writer: QuicStreamWriter) -> None:
            sock = QuicSocket()
            sock._conn = writer.connection
            sock._reader, sock._writer = reader, writer
            sock._timeout = self._timeout
            sock._release = asyncio.Event()
            try:
                accepted.put_nowait(sock)
            except queue.Full:
                writer.reset(0x10C)  # backlog full: refuse the stream
                return
            await sock._release.wait()  # the stream lives until the accepted socket closes

        async def go() -> Any:
            from tquic.io.api import serve

            return await serve(address[0], address[1], config, handler)

        self._server = _run(go(), None)

    def accept(self) -> tuple[QuicSocket, tuple[str, int]]:
        if self._accepted is None:
            raise OSError("listen() first")
        try:
            sock = self._accepted.get(timeout=self._timeout)
        except queue.Empty:
            raise TimeoutError("timed out") from None
        return sock, sock.getpeername()

    # -- closing ----------------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        conn, writer, server, release = self._conn, self._writer, self._server, self._release

        async def go() -> None:
            if writer is not None and not writer.is_closing():
                writer.write_eof()
            if release is not None:
                release.set()
            if conn is not None and self._owns_connection:
                await conn.__aexit__(None, None, None)
            if server is not None:
                server.close()

        with contextlib.suppress(TimeoutError, OSError):
            _run(go(), 5.0)

    def __enter__(self) -> QuicSocket:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def socket(config: QuicConfiguration | None = None) -> QuicSocket:
    """A new blocking QUIC socket (``tquic.socket()``)."""
    return QuicSocket(config)


def create_connection(address: tuple[str, int], timeout: float | None = None,
                      config: QuicConfiguration | None = None) -> QuicSocket:
    """Like ``socket.create_connection``: a connected QuicSocket."""
    sock = QuicSocket(config)
    sock.settimeout(timeout)
    sock.connect(address)
    return sock
