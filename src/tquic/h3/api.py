"""asyncio request/response API over :class:`~tquic.h3.connection.H3Connection`.

Client::

    client = H3Client(quic, transmit)               # after the QUIC handshake
    resp = await client.request("GET", "https://example.com/", headers={"accept": "*/*"})
    resp.status, resp.headers, resp.body

Server::

    async def handler(request: Request) -> Response:
        return response(404, "not found")

    server = H3Server(quic, transmit, handler)

Both objects are driven by whoever owns the QUIC engine (the asyncio endpoint
in ``tquic.io`` / ``tquic.api``): it passes every engine event to
``quic_event_received(event)`` and supplies ``transmit()``, which this layer
calls after queuing data so it leaves without waiting for a timer.  ``quic`` is
the sans-I/O engine (INTERFACES.md, ``tquic.core.connection``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tquic.core.events import is_idle_timeout
from tquic.h3.connection import H3Connection
from tquic.h3.errors import H3ErrorCode, H3UsageError
from tquic.h3.events import (
    ConnectionTerminated,
    DatagramReceived,
    DataReceived,
    GoawayReceived,
    H3Event,
    HeadersReceived,
    SettingsReceived,
    StopSendingReceived,
    StreamReset,
)
from tquic.h3.messages import (
    HeaderPairs,
    HeadersLike,
    Request,
    Response,
    Target,
    normalize_headers,
    split_pseudo,
)
from tquic.h3.settings import H3Config
from tquic.h3.transport import QuicStreamTransport
from tquic.h3.tunnel import Tunnel

Transmit = Callable[[], None]
Handler = Callable[[Request], Awaitable[Response]]


class H3RequestError(Exception):
    """A request failed: its stream was reset, or the connection went away."""

    def __init__(self, message: str, error_code: int | None = None, *,
                 timed_out: bool = False) -> None:
        super().__init__(message)
        self.error_code = error_code
        # The connection ended by its own idle timeout (RFC 9000 §10.1): the peer went
        # silent, which a client reports as a timeout rather than a broken transfer.
        self.timed_out = timed_out

    @property
    def retryable(self) -> bool:
        """RFC 9114 §4.1.1: a rejected request was not processed and may be retried."""
        return self.error_code == H3ErrorCode.H3_REQUEST_REJECTED


class ConnectRefused(H3RequestError):
    """The peer answered a CONNECT with a non-2xx status."""

    def __init__(self, response: Response) -> None:
        super().__init__(f"CONNECT refused with status {response.status}")
        self.response = response


class _Endpoint:
    """What client and server share: the H3Connection, flushing, tunnels, settings."""

    def __init__(
        self, quic: QuicStreamTransport, transmit: Transmit, is_client: bool, config: H3Config | None
    ) -> None:
        self._h3 = H3Connection(quic, is_client, config)
        self._transmit = transmit
        self._tunnels: dict[int, Tunnel] = {}
        self._settings = asyncio.Event()
        self._terminated: ConnectionTerminated | None = None
        # The QuicConnectionProtocol when running on tquic.io (set by h3.aio.H3Bridge).
        self.protocol: Any = None
        # WebTransport sessions (tquic.h3.webtransport) see every event first.
        self.webtransport: Any = None
        if self._h3.webtransport is not None:
            from tquic.h3.webtransport.hub import WebTransportHub

            self.webtransport = WebTransportHub(self)
        self.flush()

    @property
    def h3(self) -> H3Connection:
        return self._h3

    def flush(self) -> None:
        self._transmit()

    def quic_event_received(self, event: object) -> None:
        """Feed one engine event; dispatches the HTTP/3 events it produces."""
        h3_events = self._h3.handle_event(event)
        for h3_event in h3_events:
            self._dispatch(h3_event)
        if h3_events:
            self.flush()  # QPACK acknowledgements, resets, closes

    async def drain(self, stream_id: int) -> None:
        """Wait until the engine's send buffer for ``stream_id`` has room again.

        Uses the tquic.io protocol's stream writers (woken on every flush); with
        no protocol (engine driven by hand) there is nothing to wait for.
        """
        protocol = self.protocol
        if protocol is None:
            return
        from tquic.io.streams import QuicStreamWriter

        writers = protocol._writers
        writer = writers.get(stream_id)
        if writer is None:
            writer = writers[stream_id] = QuicStreamWriter(protocol, stream_id)
        await writer.drain()  # raises ConnectionClosedError (a ConnectionError) on close

    def forget_writer(self, stream_id: int, error: BaseException | None = None) -> None:
        """Drop the drain helper of a finished stream, waking a waiter with ``error``."""
        protocol = self.protocol
        if protocol is None:
            return
        writer = protocol._writers.pop(stream_id, None)
        if writer is not None and error is not None:
            writer.set_exception(error)

    def forget_tunnel(self, stream_id: int) -> None:
        """A tunnel whose both directions ended: its stream's events are no longer routed."""
        self._tunnels.pop(stream_id, None)

    async def wait_for_settings(self, timeout: float | None = None) -> None:
        """Wait for the peer's SETTINGS (needed before extended CONNECT)."""
        await asyncio.wait_for(self._settings.wait(), timeout)

    def shutdown(self) -> int:
        """Graceful shutdown: send GOAWAY (RFC 9114 §5.2); returns the id sent."""
        identifier = self._h3.send_goaway()
        self.flush()
        return identifier

    def close(self, error_code: int = H3ErrorCode.H3_NO_ERROR, reason: str = "") -> None:
        self._h3.close(error_code, reason)
        self.flush()

    def _dispatch(self, event: H3Event) -> None:
        if self.webtransport is not None and self.webtransport.handle(event):
            return
        if isinstance(event, SettingsReceived):
            self._settings.set()
        elif isinstance(event, DatagramReceived):
            tunnel = self._tunnels.get(event.stream_id)
            if tunnel is not None:
                tunnel.on_datagram(event.data)
        elif isinstance(event, ConnectionTerminated):
            self._terminated = event
            self._settings.set()
            for tunnel in list(self._tunnels.values()):
                tunnel.on_terminated(event.error_code)
            self._tunnels.clear()
            self._on_terminated(event)
        else:
            tunnel = self._tunnels.get(getattr(event, "stream_id", -1))
            if tunnel is not None and isinstance(event, DataReceived):
                tunnel.on_data(event.data, event.stream_ended)
            elif tunnel is not None and isinstance(event, StreamReset):
                tunnel.on_reset(event.error_code)
                self._tunnels.pop(event.stream_id, None)
            elif tunnel is not None and isinstance(event, StopSendingReceived):
                tunnel.on_stop_sending(event.error_code)  # §4.4: our direction is cancelled
            else:
                self._on_event(event)

    def _on_event(self, event: H3Event) -> None:
        raise NotImplementedError

    def _on_terminated(self, event: ConnectionTerminated) -> None:
        raise NotImplementedError


@dataclass(slots=True)
class _Pending:
    """A client request waiting for its response."""

    stream_id: int
    method: bytes
    future: asyncio.Future[Response]
    tunnel: bool = False
    status: int = 0
    headers: HeaderPairs = ()
    body: list[bytes] = field(default_factory=list)
    size: int = 0
    trailers: HeaderPairs = ()
    sink: Callable[[bytes], None] | None = None  # streams the body instead of keeping it
    opened: Tunnel | None = None  # the tunnel a 2xx answer to CONNECT created
    on_head: Callable[[int, HeaderPairs], None] | None = None  # the final status, before data


class H3Client(_Endpoint):
    """HTTP/3 client over one QUIC connection."""

    def __init__(
        self,
        quic: QuicStreamTransport,
        transmit: Transmit,
        config: H3Config | None = None,
        *,
        max_response_size: int = 64 << 20,
    ) -> None:
        super().__init__(quic, transmit, True, config)
        self._pending: dict[int, _Pending] = {}
        self._max_response_size = max_response_size

    async def aclose(self) -> None:
        """Close the connection (H3_NO_ERROR) once what was written last is delivered
        (on tquic.io: ``wait_delivered``, at most three PTOs); returns at once after."""
        if self.protocol is not None:
            await self.protocol.wait_delivered()
        self.close()
        if self.protocol is not None:
            await self.protocol.__aexit__(None, None, None)

    async def __aenter__(self) -> H3Client:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def request(
        self,
        method: str,
        url: str,
        headers: HeadersLike | None = None,
        body: bytes = b"",
        *,
        trailers: HeadersLike | None = None,
        on_data: Callable[[bytes], None] | None = None,
        on_response: Callable[[int, HeaderPairs], None] | None = None,
    ) -> Response:
        """Send a request and wait for the complete response (interim 1xx skipped).

        With ``on_data``, each piece of the response body is passed to it as it
        arrives (no size limit) and the returned Response has an empty body.
        ``on_response(status, headers)`` runs when the final header section
        arrives, before any of the body (e.g. to decide where the body goes).
        """
        target = Target.from_url(url)
        head = [
            (b":method", method.encode()),
            (b":scheme", target.scheme.encode()),
            (b":authority", target.authority.encode()),
            (b":path", target.path.encode()),
            *normalize_headers(headers),
        ]
        tail = list(normalize_headers(trailers))
        pending = self._start(method.encode(), head, body, tail, end=True)
        pending.sink = on_data
        pending.on_head = on_response
        return await pending.future

    async def connect(
        self,
        target: str,
        protocol: str | None = None,
        headers: HeadersLike | None = None,
        *,
        capsule_protocol: bool = True,
    ) -> Tunnel:
        """Open a CONNECT tunnel (RFC 9114 §4.4) or, with ``protocol``, an extended
        CONNECT (RFC 9220) to the URL ``target``; returns once the peer answered 2xx."""
        if protocol is None:
            head = [(b":method", b"CONNECT"), (b":authority", target.encode())]
        else:
            if not self._settings.is_set():
                await self.wait_for_settings()
            url = Target.from_url(target)
            head = [
                (b":method", b"CONNECT"),
                (b":protocol", protocol.encode()),
                (b":scheme", url.scheme.encode()),
                (b":authority", url.authority.encode()),
                (b":path", url.path.encode()),
            ]
            if capsule_protocol:
                head.append((b"capsule-protocol", b"?1"))  # RFC 9297 §3.4
        head.extend(normalize_headers(headers))
        pending = self._start(b"CONNECT", head, b"", [], end=False)
        pending.tunnel = True
        reply = await pending.future
        if pending.opened is None:
            raise ConnectRefused(reply)
        return pending.opened  # it may already be closed again: its calls then say so

    def _start(
        self,
        method: bytes,
        head: list[tuple[bytes, bytes]],
        body: bytes,
        trailers: list[tuple[bytes, bytes]],
        *,
        end: bool,
    ) -> _Pending:
        if self._terminated is not None:
            raise H3RequestError("connection closed", self._terminated.error_code)
        stream_id = self._h3.get_next_available_stream_id()
        pending = _Pending(stream_id, method, asyncio.get_running_loop().create_future())
        try:
            self._h3.send_headers(stream_id, head, end_stream=end and not body and not trailers)
            if body:
                self._h3.send_data(stream_id, body, end_stream=end and not trailers)
            if trailers:
                self._h3.send_trailers(stream_id, trailers)
        except H3UsageError:
            self._h3.cancel_stream(stream_id)
            self.flush()
            raise
        self._pending[stream_id] = pending
        self.flush()
        return pending

    # -- events -------------------------------------------------------------------------

    def _on_event(self, event: H3Event) -> None:
        if isinstance(event, GoawayReceived):
            # RFC 9114 §5.2: requests at or above the id will not be processed.
            for stream_id in [s for s in self._pending if s >= event.id]:
                self._h3.cancel_stream(stream_id)
                self._fail(stream_id, H3RequestError("rejected by GOAWAY", H3ErrorCode.H3_REQUEST_REJECTED))
            return
        stream_id = getattr(event, "stream_id", -1)
        pending = self._pending.get(stream_id)
        if pending is None:
            return
        if isinstance(event, StreamReset):
            self._fail(stream_id, H3RequestError(f"stream reset ({event.error_code:#x})", event.error_code))
        elif isinstance(event, HeadersReceived):
            self._on_headers(stream_id, pending, event)
        elif isinstance(event, DataReceived):
            pending.size += len(event.data)
            if pending.sink is not None:
                if event.data:
                    pending.sink(event.data)
            elif pending.size > self._max_response_size:
                self._h3.cancel_stream(stream_id)
                self._fail(stream_id, H3RequestError("response body too large"))
                return
            else:
                pending.body.append(event.data)
            if event.stream_ended:
                self._complete(stream_id, pending)
        # StopSendingReceived: the server stopped reading a request it has answered
        # or will answer; the response is still to be used (§4.1).

    def _on_headers(self, stream_id: int, pending: _Pending, event: HeadersReceived) -> None:
        if pending.status >= 200:
            pending.trailers = tuple(event.headers)
        else:
            pseudo, regular = split_pseudo(event.headers)
            status = int(pseudo[b":status"])
            if status < 200:
                return  # interim response
            pending.status, pending.headers = status, regular
            if pending.on_head is not None and not pending.tunnel:
                pending.on_head(status, regular)
            if pending.tunnel:
                reply = Response(status, regular)
                if 200 <= status < 300:
                    pending.opened = self._tunnels[stream_id] = Tunnel(self, stream_id, regular)
                else:
                    self._h3.cancel_stream(stream_id)
                del self._pending[stream_id]
                if not pending.future.done():
                    pending.future.set_result(reply)
                return
        if event.stream_ended:
            self._complete(stream_id, pending)

    def _complete(self, stream_id: int, pending: _Pending) -> None:
        self._pending.pop(stream_id, None)
        if not pending.future.done():
            pending.future.set_result(
                Response(pending.status, pending.headers, b"".join(pending.body), pending.trailers)
            )

    def _fail(self, stream_id: int, error: BaseException) -> None:
        pending = self._pending.pop(stream_id, None)
        if pending is not None and not pending.future.done():
            pending.future.set_exception(error)

    def _on_terminated(self, event: ConnectionTerminated) -> None:
        for stream_id in list(self._pending):
            self._fail(stream_id, H3RequestError(
                f"connection closed: {event.reason}", event.error_code,
                timed_out=is_idle_timeout(event.reason, event.by_peer)))


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


class H3Server(_Endpoint):
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
        writer = self.protocol._writers.get(stream_id) if self.protocol is not None else None
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
            from tquic.io.streams import QuicStreamWriter

            self.protocol._writers.setdefault(stream_id, QuicStreamWriter(self.protocol, stream_id))
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
                self.protocol._writers.pop(stream_id, None)
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
