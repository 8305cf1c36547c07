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
from collections.abc import Callable
from dataclasses import dataclass, field

from tquic.core.events import is_idle_timeout
from tquic.h3.api_base import ConnectRefused, H3Endpoint, H3RequestError, Handler, Transmit
from tquic.h3.api_server import H3Server, ServerTunnel
from tquic.h3.errors import H3ErrorCode, H3UsageError
from tquic.h3.events import (
    ConnectionTerminated,
    DataReceived,
    GoawayReceived,
    H3Event,
    HeadersReceived,
    StreamReset,
)
from tquic.h3.messages import (
    HeaderPairs,
    HeadersLike,
    Response,
    Target,
    normalize_headers,
    split_pseudo,
)
from tquic.h3.settings import H3Config
from tquic.h3.transport import QuicStreamTransport
from tquic.h3.tunnel import Tunnel

__all__ = [
    "ConnectRefused",
    "H3Client",
    "H3RequestError",
    "H3Server",
    "Handler",
    "ServerTunnel",
    "Transmit",
]


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


class H3Client(H3Endpoint):
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

    @property
    def pending_requests(self) -> tuple[int, ...]:
        """The stream IDs of the requests whose response has not ended (and of the
        CONNECTs not answered yet), in order."""
        return tuple(sorted(self._pending))

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
