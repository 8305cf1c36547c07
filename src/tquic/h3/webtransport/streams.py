"""WebTransport streams as asyncio objects (the W3C WebTransportSendStream /
WebTransportReceiveStream / WebTransportBidirectionalStream, in Python shape).

Error codes the application gives and receives are WebTransport application
codes (32-bit); on the wire they are mapped into the WT_APPLICATION_ERROR range
(draft-ietf-webtrans-http3 §4.4).  A reset with a code outside that range (for
example WT_SESSION_GONE) arrives as :class:`WebTransportStreamError` with
``code=None`` and the raw ``http_code``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from tquic.h3.webtransport.codes import app_code_to_http, http_code_to_app

if TYPE_CHECKING:
    from tquic.h3.webtransport.session import WebTransportSession


class WebTransportError(ConnectionError):
    """Base of the WebTransport errors raised to the application."""


class SessionClosed(WebTransportError):
    """The session is over (closed by either side, or its connection went away)."""


class WebTransportStreamError(WebTransportError):
    """The peer reset the stream (RESET_STREAM) or stopped reading it (STOP_SENDING).

    ``code``: the WebTransport application error code, None when the HTTP/3 code
    was not one (§4.4); ``http_code``: the code on the wire.
    """

    def __init__(self, message: str, http_code: int) -> None:
        super().__init__(message)
        self.http_code = http_code
        self.code = http_code_to_app(http_code)


class WebTransportReceiveStream:
    """The receiving half of a stream: ``await read()`` pieces until b"" (the end)."""

    def __init__(self, session: WebTransportSession, stream_id: int) -> None:
        self._session = session
        self.stream_id = stream_id
        self._chunks: deque[bytes] = deque()
        self._ended = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.bytes_received = 0

    async def read(self, max_bytes: int = -1) -> bytes:
        """The next bytes (at most ``max_bytes`` if positive); b"" once the stream ended."""
        while not self._chunks:
            if self._ended:
                return b""
            if self._error is not None:
                raise self._error
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        chunk = self._chunks.popleft()
        if 0 < max_bytes < len(chunk):
            self._chunks.appendleft(chunk[max_bytes:])
            chunk = chunk[:max_bytes]
        self._session._consumed(len(chunk))
        if not self._chunks and self._ended:
            self._session._recv_done(self.stream_id)
        return chunk

    async def read_all(self, limit: int = 64 << 20) -> bytes:
        """Everything until the end of the stream (ValueError beyond ``limit`` bytes)."""
        parts: list[bytes] = []
        size = 0
        while chunk := await self.read():
            size += len(chunk)
            if size > limit:
                self.stop_sending(0)
                raise ValueError(f"stream {self.stream_id} sent more than {limit} bytes")
            parts.append(chunk)
        return b"".join(parts)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        while chunk := await self.read():
            yield chunk

    def stop_sending(self, code: int = 0) -> None:
        """Stop reading: STOP_SENDING with ``code`` (W3C ReadableStream.cancel)."""
        if self._ended or self._error is not None:
            return
        self._session._stop_sending(self.stream_id, app_code_to_http(code))
        self._fail(WebTransportError(f"stream {self.stream_id}: reading stopped locally"))
        self._session._recv_done(self.stream_id)

    # -- fed by the session ------------------------------------------------------------

    def _on_data(self, data: bytes, ended: bool) -> None:
        if data:
            self._chunks.append(data)
            self.bytes_received += len(data)
        if ended:
            self._ended = True
            if not self._chunks:
                self._session._recv_done(self.stream_id)
        self._wake()

    def _fail(self, error: BaseException) -> None:
        if self._error is None and not self._ended:
            self._error = error
            self._chunks.clear()
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class WebTransportSendStream:
    """The sending half of a stream: ``await write(data)``, then ``close()`` (FIN) or
    ``reset(code)``."""

    def __init__(self, session: WebTransportSession, stream_id: int) -> None:
        self._session = session
        self.stream_id = stream_id
        self._closed = False
        self._error: BaseException | None = None
        self.bytes_sent = 0

    async def write(self, data: bytes) -> None:
        """Send ``data``, waiting for session flow control and the QUIC send buffer."""
        self._check()
        view = memoryview(data)
        while view:
            size = await self._session._send_credit(len(view))
            self._check()
            self._session._send(self.stream_id, bytes(view[:size]), False)
            self.bytes_sent += size
            view = view[size:]
            await self._session._drain(self.stream_id)

    async def write_all_and_close(self, data: bytes) -> None:
        await self.write(data)
        self.close()

    def close(self) -> None:
        """End the stream cleanly (FIN)."""
        if self._closed or self._error is not None:
            return
        self._closed = True
        self._session._send(self.stream_id, b"", True)

    def reset(self, code: int = 0) -> None:
        """Abandon the stream: RESET_STREAM with ``code`` (W3C WritableStream.abort)."""
        if self._closed or self._error is not None:
            return
        self._closed = True
        self._session._reset(self.stream_id, app_code_to_http(code))

    def _check(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closed:
            raise WebTransportError(f"stream {self.stream_id}: write after close")

    def _fail(self, error: BaseException) -> None:
        if self._error is None and not self._closed:
            self._error = error


class WebTransportBidirectionalStream:
    """A bidirectional stream: ``readable`` and ``writable`` halves (W3C shape), plus
    the common calls forwarded to them."""

    def __init__(self, session: WebTransportSession, stream_id: int) -> None:
        self.stream_id = stream_id
        self.readable = WebTransportReceiveStream(session, stream_id)
        self.writable = WebTransportSendStream(session, stream_id)

    async def read(self, max_bytes: int = -1) -> bytes:
        return await self.readable.read(max_bytes)

    async def read_all(self, limit: int = 64 << 20) -> bytes:
        return await self.readable.read_all(limit)

    async def write(self, data: bytes) -> None:
        await self.writable.write(data)

    def close(self) -> None:
        """FIN on our half; the peer's half stays readable."""
        self.writable.close()

    def reset(self, code: int = 0) -> None:
        self.writable.reset(code)

    def stop_sending(self, code: int = 0) -> None:
        self.readable.stop_sending(code)
