"""The server side of :mod:`tquic.h3.api`: requests received, CONNECT tunnels, responses sent."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from tquic.h3.api_base import H3Endpoint, Handler, Transmit
from tquic.h3.errors import H3ErrorCode, H3UsageError
from tquic.h3.events import (
    ConnectionTerminated,
    DataReceived,
    H3Event,
    HeadersReceived,
    StopSendingReceived,
    StreamReset,
)
from tquic.h3.messages import (
    HeaderPairs,
    HeadersLike,
    Request,
    Response,
    normalize_headers,
    split_pseudo,
)
from tquic.h3.settings import H3Config
from tquic.h3.transport import QuicStreamTransport
from tquic.h3.tunnel import Tunnel


class _Incoming:
    """A request being received by the server."""

    __slots__ = ("body", "head", "size", "trailers")

    def __init__(self, head: list[tuple[bytes, bytes]]) -> None:
        self.head = head
        self.body: list[bytes] = []
        self.size = 0
        self.trailers: HeaderPairs = ()

    def to_request(self, stream_id: int) -> Request:
        pseudo, regular = split_pseudo(self.head)
        protocol = pseudo.get(b":protocol")
        return Request(
            method=pseudo[b":method"].decode("latin-1"),
            scheme=pseudo.get(b":scheme", b"").decode("latin-1"),
            authority=pseudo.get(b":authority", b"").decode("latin-1"),
            path=pseudo.get(b":path", b"").decode("latin-1"),
            headers=regular,
            body=b"".join(self.body),
            trailers=self.trailers,
            protocol=protocol.decode("latin-1") if protocol is not None else None,
            stream_id=stream_id,
        )


class ServerTunnel(Tunnel):
    """A CONNECT request on the server: ``accept()`` or ``reject()`` it, then use it."""

    def __init__(self, owner: H3Server, stream_id: int, request: Request) -> None:
        super().__init__(owner, stream_id, request.headers)
        self.request = request
        self._server = owner
        self.answered = False

    @property
    def connection(self) -> Any:
        """The tquic.io connection (QuicConnectionProtocol) the request came on, if any."""
        return self._server.protocol

    @property
    def server(self) -> H3Server:
        """The HTTP/3 server side of the connection the request came on."""
        return self._server

    def accept(self, status: int = 200, headers: HeadersLike | None = None) -> None:
        """Answer 2xx: the stream becomes a tunnel (RFC 9114 §4.4, RFC 9220)."""
        if not 200 <= status < 300:
            raise ValueError("accept() takes a 2xx status")
        self.answered = True
        self._server.h3.send_headers(
            self.stream_id, [(b":status", str(status).encode()), *normalize_headers(headers)]
        )
        self._server.flush()

    def reject(self, status: int = 403, body: bytes = b"", headers: HeadersLike | None = None) -> None:
        self.answered = True
        self._server.send_response(
            self.stream_id, Response(status, normalize_headers(headers), body), b"CONNECT")


class H3Server(H3Endpoint):
    """HTTP/3 server side of one QUIC connection: calls ``handler`` per request.

    ``connect_handler`` receives CONNECT / extended CONNECT requests as
    :class:`ServerTunnel` objects as soon as their header section arrives;
    without one, CONNECT is answered 501.
    """

    def __init__(
        self,
        quic: QuicStreamTransport,
        transmit: Transmit,
        handler: Handler,
        config: H3Config | None = None,
        *,
        connect_handler: Callable[[ServerTunnel], Awaitable[None]] | None = None,
        max_request_size: int = 16 << 20,
        on_stream_error: Callable[[int, int], None] | None = None,
    ) -> None:
        super().__init__(quic, transmit, False, config)
        self._handler = handler
        # Called with (stream id, error code) when we end a request stream ourselves
        # because it was malformed (RFC 9114 §4.1.2), e.g. to log it.
        self._on_stream_error = on_stream_error
        self._connect_handler = connect_handler
        self._incoming: dict[int, _Incoming] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._max_request_size = max_request_size
        self._stopped: set[int] = set()  # streamed responses the client stopped

    @property
    def running_handlers(self) -> int:
        """Request and CONNECT handler tasks still running."""
        return len(self._tasks)

    def _on_event(self, event: H3Event) -> None:
        stream_id = getattr(event, "stream_id", -1)
        if isinstance(event, HeadersReceived):
            incoming = self._incoming.get(stream_id)
            if incoming is None:
                incoming = self._incoming[stream_id] = _Incoming(event.headers)
                if (b":method", b"CONNECT") in event.headers:
                    self._on_connect(stream_id, incoming)
                    return
            else:
                incoming.trailers = tuple(event.headers)
            if event.stream_ended:
                self._dispatch_request(stream_id)
        elif isinstance(event, DataReceived):
            incoming = self._incoming.get(stream_id)
            if incoming is None:
                return
            incoming.size += len(event.data)
            if incoming.size > self._max_request_size:
                del self._incoming[stream_id]
                self.send_response(stream_id, Response(413), b"POST")
                self._h3.cancel_stream(stream_id, H3ErrorCode.H3_NO_ERROR)  # stop reading (§4.1)
                self.flush()
                return
            incoming.body.append(event.data)
            if event.stream_ended:
                self._dispatch_request(stream_id)
        elif isinstance(event, StreamReset):
            self._incoming.pop(stream_id, None)
            if not event.by_peer and self._on_stream_error is not None:
                self._on_stream_error(stream_id, event.error_code)
        elif isinstance(event, StopSendingReceived):
            # RFC 9114 §4.1.1: the client no longer wants the response; the engine
            # has reset our side, so a streamed body stops here.
            self._stop_streaming(stream_id, event.error_code)

    def _stop_streaming(self, stream_id: int, error_code: int) -> None:
        writer = (self.protocol.registered_writer(stream_id) if self.protocol is not None
                  else None)
        if writer is not None:  # only streamed responses register one
            self._stopped.add(stream_id)
            from tquic.io.streams import StreamError

            writer.set_exception(StreamError(
                f"peer stopped stream {stream_id} (error 0x{error_code:x})", error_code))

    def _on_connect(self, stream_id: int, incoming: _Incoming) -> None:
        del self._incoming[stream_id]
        request = incoming.to_request(stream_id)
        if self._connect_handler is None:
            self.send_response(stream_id, Response(501), b"CONNECT")
            return
        tunnel = ServerTunnel(self, stream_id, request)
        self._tunnels[stream_id] = tunnel
        self._spawn(self._run_connect(tunnel))

    async def _run_connect(self, tunnel: ServerTunnel) -> None:
        handler = self._connect_handler
        if handler is None:
            return
        try:
            await handler(tunnel)
        except Exception:
            if not tunnel.answered:
                tunnel.reject(500)
            else:
                tunnel.abort(H3ErrorCode.H3_INTERNAL_ERROR)

    def _dispatch_request(self, stream_id: int) -> None:
        incoming = self._incoming.pop(stream_id)
        self._spawn(self._run(incoming.to_request(stream_id)))

    async def _run(self, request: Request) -> None:
        try:
            reply = await self._handler(request)
        except Exception:
            reply = Response(500, ((b"content-type", b"text/plain"),), b"internal error")
        method = request.method.encode("latin-1")
        if reply.stream is not None and method != b"HEAD":
            await self._send_streamed(request.stream_id, reply)
        else:
            self.send_response(request.stream_id, reply, method)

    def send_response(self, stream_id: int, reply: Response, method: bytes) -> None:
        """Send a whole response; silently gives up if the stream is already gone."""
        body = b"" if method == b"HEAD" else reply.body
        head = [(b":status", str(reply.status).encode()), *reply.headers]
        try:
            self._h3.send_headers(stream_id, head, end_stream=not body and not reply.trailers)
            if body:
                self._h3.send_data(stream_id, body, end_stream=not reply.trailers)
            if reply.trailers:
                self._h3.send_trailers(stream_id, list(reply.trailers))
        except H3UsageError:
            if self._h3.closed:
                return
            self._h3.cancel_stream(stream_id, H3ErrorCode.H3_INTERNAL_ERROR)
        self.flush()

    async def _send_streamed(self, stream_id: int, reply: Response) -> None:
        """Headers, then each piece of ``reply.stream`` as the QUIC send buffer drains."""
        stream = reply.stream
        if stream is None:
            return
        if self.protocol is not None:
            # Registered before the first byte so STOP_SENDING can always reach it.
            self.protocol.stream_writer(stream_id)
        try:
            self._h3.send_headers(stream_id, [(b":status", str(reply.status).encode()), *reply.headers])
            if reply.body:
                self._h3.send_data(stream_id, reply.body)
            self.flush()
            async for chunk in stream:
                if chunk:
                    self._h3.send_data(stream_id, chunk)
                    self.flush()
                    await self._drain(stream_id)
            if reply.trailers:
                self._h3.send_trailers(stream_id, list(reply.trailers))
            else:
                self._h3.send_data(stream_id, b"", end_stream=True)
        except H3UsageError:
            if self._h3.closed or stream_id in self._stopped:
                return  # the peer stopped the stream (STOP_SENDING): nothing more to say
            self._h3.cancel_stream(stream_id, H3ErrorCode.H3_INTERNAL_ERROR)
        except ConnectionError:
            return  # the peer stopped the stream (STOP_SENDING) or the connection went away
        finally:
            self._stopped.discard(stream_id)
            if self.protocol is not None:
                self.protocol.drop_writer(stream_id)
            closer = getattr(stream, "aclose", None)
            if closer is not None:
                await closer()  # release the body's file now, not at garbage collection
        self.flush()

    async def _drain(self, stream_id: int) -> None:
        await self.drain(stream_id)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_terminated(self, event: ConnectionTerminated) -> None:
        self._incoming.clear()
        for task in list(self._tasks):
            task.cancel()

    async def aclose(self) -> None:
        """Cancel running handlers and wait for them."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
