"""asyncio stream adapters for one QUIC stream: a reader and a writer shaped like
``asyncio.StreamReader`` / ``asyncio.StreamWriter``.

The reader is fed by the connection's event loop (StreamDataReceived, StreamReset,
ConnectionTerminated); the writer hands bytes to the engine and flushes the
connection soon after, so several ``write`` calls in one loop iteration leave
in one batch of packets.  ``drain()`` waits while the engine's send buffer for
the stream is full (backpressure), like TCP's.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tquic.io.protocol import QuicConnectionProtocol


class StreamError(ConnectionError):
    """A stream ended abnormally: reset by the peer, stopped, or its connection closed."""

    def __init__(self, message: str, error_code: int | None = None) -> None:
        super().__init__(message)
        self.error_code = error_code


class StreamResetError(StreamError):
    """The peer reset the stream (RESET_STREAM, RFC 9000 §19.4)."""


class QuicStreamReader:
    """Receive side of a QUIC stream, with the asyncio.StreamReader reading methods.

    Received data is kept as the list of chunks the engine delivered (one per
    STREAM frame), so feeding is O(1) and a read copies each byte once (one join)
    instead of appending into a growing buffer and slicing it out again.
    """

    __slots__ = ("_eof", "_exception", "_parts", "_size", "_waiter", "stream_id")

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id
        self._parts: deque[bytes] = deque()
        self._size = 0
        self._eof = False
        self._exception: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None

    # -- fed by the connection ----------------------------------------------------------

    def feed_data(self, data: bytes) -> None:
        if data:
            self._parts.append(bytes(data))
            self._size += len(data)
            self._wake()

    def feed_eof(self) -> None:
        self._eof = True
        self._wake()

    def set_exception(self, exc: BaseException) -> None:
        if not self._eof:
            self._exception = exc
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._waiter = None

    async def _wait(self) -> None:
        if self._exception is not None:
            raise self._exception
        if self._waiter is None:
            self._waiter = asyncio.get_running_loop().create_future()
        await self._waiter

    # -- the chunk buffer ---------------------------------------------------------------

    def _take(self, n: int) -> bytes:
        """The first ``n`` buffered bytes (``n`` <= buffered), removed from the buffer."""
        chunks = self._parts
        if n >= self._size:
            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            chunks.clear()
            self._size = 0
            return data
        self._size -= n
        first = chunks[0]
        if len(first) >= n:
            if len(first) == n:
                chunks.popleft()
                return first
            chunks[0] = first[n:]
            return first[:n]
        parts: list[bytes] = []
        need = n
        while need:
            chunk = chunks.popleft()
            if len(chunk) > need:
                parts.append(chunk[:need])
                chunks.appendleft(chunk[need:])
                break
            parts.append(chunk)
            need -= len(chunk)
        return b"".join(parts)

    def _joined(self) -> bytes:
        """Everything buffered as one chunk (left in the buffer), for searching."""
        chunks = self._parts
        if len(chunks) > 1:
            data = b"".join(chunks)
            chunks.clear()
            chunks.append(data)
        return chunks[0] if chunks else b""

    # -- reading ------------------------------------------------------------------------

    @property
    def buffered(self) -> int:
        return self._size

    def at_eof(self) -> bool:
        return self._eof and not self._size

    def exception(self) -> BaseException | None:
        return self._exception

    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all until end of stream when ``n`` < 0); b"" at the end."""
        if n == 0:
            return b""
        if n < 0:
            while not self._eof:
                await self._wait()
            return self._take(self._size)
        while not self._size and not self._eof:
            await self._wait()
        return self._take(n)

    async def readexactly(self, n: int) -> bytes:
        while self._size < n:
            if self._eof:
                partial = self._take(self._size)
                raise asyncio.IncompleteReadError(partial, n)
            await self._wait()
        return self._take(n)

    async def readuntil(self, separator: bytes = b"\n", limit: int = 1 << 16) -> bytes:
        start = 0
        while True:
            buffer = self._joined()
            index = buffer.find(separator, start)
            if index >= 0:
                return self._take(index + len(separator))
            if len(buffer) > limit:
                raise asyncio.LimitOverrunError("separator not found within limit", limit)
            if self._eof:
                partial = self._take(self._size)
                raise asyncio.IncompleteReadError(partial, None)
            start = max(0, len(buffer) - len(separator) + 1)
            await self._wait()

    async def readline(self) -> bytes:
        try:
            return await self.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            return exc.partial

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        while True:
            chunk = await self.read(1 << 16)
            if not chunk:
                return
            yield chunk


class QuicStreamWriter:
    """Send side of a QUIC stream, with the asyncio.StreamWriter writing methods."""

    __slots__ = ("_closed", "_connection", "_drain_waiter", "_error", "stream_id")

    def __init__(self, connection: QuicConnectionProtocol, stream_id: int) -> None:
        self._connection = connection
        self.stream_id = stream_id
        self._closed = False
        self._error: BaseException | None = None
        self._drain_waiter: asyncio.Future[None] | None = None

    @property
    def connection(self) -> QuicConnectionProtocol:
        return self._connection

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._error is not None:
            raise self._error
        if self._closed:
            raise StreamError("write after write_eof/close")
        if data:
            self._connection.send_stream_data(self.stream_id, bytes(data), False)

    def writelines(self, data: list[bytes]) -> None:
        self.write(b"".join(data))

    def write_eof(self) -> None:
        """Send FIN: the stream's send side is finished (RFC 9000 §3.1 "Data Sent")."""
        if self._closed or self._error is not None:
            return
        self._closed = True
        self._connection.send_stream_data(self.stream_id, b"", True)

    def can_write_eof(self) -> bool:
        return True

    def close(self) -> None:
        self.write_eof()

    def is_closing(self) -> bool:
        return self._closed or self._error is not None

    async def wait_closed(self) -> None:
        await self.drain()

    def reset(self, error_code: int = 0) -> None:
        """Abandon the stream with RESET_STREAM (RFC 9000 §19.4)."""
        if not self._closed:
            self._closed = True
            self._connection.reset_stream(self.stream_id, error_code)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        info = {"stream_id": self.stream_id, "connection": self._connection,
                "peername": self._connection.remote_address,
                "sockname": self._connection.local_address}
        return info.get(name, default)

    async def drain(self) -> None:
        """Wait until the engine can take more data for this stream."""
        while True:
            if self._error is not None:
                raise self._error
            if self._closed or self._connection.stream_writable(self.stream_id):
                return
            if self._drain_waiter is None:
                self._drain_waiter = asyncio.get_running_loop().create_future()
            await self._drain_waiter

    # -- called by the connection -------------------------------------------------------

    def wake_drain(self) -> None:
        waiter = self._drain_waiter
        self._drain_waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    @property
    def waiting(self) -> bool:
        return self._drain_waiter is not None

    def set_exception(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        self.wake_drain()
