"""One WebTransport session (draft-ietf-webtrans-http3), in the shape of the W3C
``WebTransport`` interface::

    bidi = await session.create_bidirectional_stream()
    uni = await session.create_unidirectional_stream()
    async for stream in session.incoming_bidirectional_streams: ...
    session.datagrams.send(b"x"); await session.datagrams.receive()
    session.close(code, reason); info = await session.closed

The session rides on the CONNECT stream's :class:`~tquic.h3.tunnel.Tunnel`
(capsules, HTTP Datagrams) and on the connection's
:class:`~tquic.h3.wt_streams.WtStreamRouter` (its data streams); the
:class:`~tquic.h3.webtransport.hub.WebTransportHub` delivers the stream events.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from tquic.core.send_stream import StreamUsageError
from tquic.h3.capsules import CapsuleType
from tquic.h3.errors import H3Error, H3ErrorCode, H3UsageError
from tquic.h3.events import StopSendingReceived, StreamReset, WebTransportStreamDataReceived
from tquic.h3.messages import HeaderPairs
from tquic.h3.tunnel import Tunnel, TunnelClosed
from tquic.h3.webtransport.codes import (
    CLOSE_WEBTRANSPORT_SESSION,
    DRAIN_WEBTRANSPORT_SESSION,
    FLOW_CAPSULES,
    WT_MAX_STREAM_DATA,
    WT_SESSION_GONE,
    WT_STREAM_DATA_BLOCKED,
    CapsuleError,
    CloseInfo,
    WtVersion,
    decode_close,
    decode_varint_value,
    encode_close,
)
from tquic.h3.webtransport.flow import SessionFlow
from tquic.h3.webtransport.streams import (
    SessionClosed,
    WebTransportBidirectionalStream,
    WebTransportError,
    WebTransportReceiveStream,
    WebTransportSendStream,
    WebTransportStreamError,
)
from tquic.h3.wt_streams import WtStreamRouter

if TYPE_CHECKING:
    from tquic.h3.webtransport.hub import WebTransportHub

T = TypeVar("T")
# How long create_*_stream() waits for the QUIC stream limit between polls: the
# engine has no "streams available" hook the HTTP/3 layer can await yet.
_STREAM_POLL = 0.005


class IncomingStreams(Generic[T]):
    """Streams the peer opened, in order: ``async for`` them or ``await accept()``.

    Iteration ends when the session closes.  At most ``limit`` wait unaccepted;
    more are refused by the session (the peer sees the stream reset).
    """

    def __init__(self, limit: int = 1024) -> None:
        self._queue: deque[T] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self.limit = limit

    @property
    def full(self) -> bool:
        return len(self._queue) >= self.limit

    async def accept(self) -> T:
        """The next incoming stream; raises SessionClosed once the session is over."""
        while not self._queue:
            if self._closed:
                raise SessionClosed("session closed")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._queue.popleft()

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[T]:
        while True:
            try:
                yield await self.accept()
            except SessionClosed:
                return

    def _push(self, item: T) -> None:
        self._queue.append(item)
        self._wake()

    def _close(self) -> None:
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class Datagrams:
    """The session's datagrams (HTTP Datagrams on the CONNECT stream, §4.5)."""

    def __init__(self, session: WebTransportSession, tunnel: Tunnel) -> None:
        self._session = session
        self._tunnel = tunnel
        self.sent = 0
        self.received = 0

    @property
    def dropped(self) -> int:
        """Received datagrams dropped because the application read too slowly."""
        return self._tunnel.datagrams_dropped

    def send(self, data: bytes) -> None:
        """Send one datagram now (unreliable); ValueError when it cannot fit a packet."""
        if self._session.closed.done():
            raise SessionClosed("session closed")
        try:
            self._tunnel.send_datagram(data)
        except TunnelClosed as exc:
            raise SessionClosed(str(exc)) from None
        except H3UsageError as exc:
            raise WebTransportError(str(exc)) from None
        self.sent += 1

    async def receive(self) -> bytes:
        """The next datagram; SessionClosed once the session is over."""
        if self._session.closed.done():
            raise SessionClosed("session closed")
        try:
            data = await self._tunnel.receive_datagram()
        except TunnelClosed:
            raise SessionClosed("session closed") from None
        self.received += 1
        return data


class WebTransportSession:
    """An established WebTransport session (client or server side)."""

    def __init__(self, endpoint: Any, tunnel: Tunnel, version: WtVersion, hub: WebTransportHub,
                 flow: SessionFlow | None, *, headers: HeaderPairs = ()) -> None:
        self._endpoint = endpoint
        self._tunnel = tunnel
        self._hub = hub
        self._flow = flow
        self.version = version
        self.session_id = tunnel.stream_id
        self.is_client: bool = endpoint.h3.is_client
        self.headers = headers  # the peer's request (server) or response (client) fields
        router = endpoint.h3.webtransport
        if not isinstance(router, WtStreamRouter):
            raise WebTransportError("HTTP/3 was not configured for WebTransport")
        self._router: WtStreamRouter = router
        loop = asyncio.get_running_loop()
        self.closed: asyncio.Future[CloseInfo] = loop.create_future()
        self.draining: asyncio.Future[None] = loop.create_future()
        self.datagrams = Datagrams(self, tunnel)
        self.incoming_bidirectional_streams: IncomingStreams[WebTransportBidirectionalStream] = (
            IncomingStreams())
        self.incoming_unidirectional_streams: IncomingStreams[WebTransportReceiveStream] = (
            IncomingStreams())
        self._receivers: dict[int, WebTransportReceiveStream] = {}
        self._senders: dict[int, WebTransportSendStream] = {}
        self._live: dict[int, list[bool]] = {}  # stream -> [send done, recv done]
        self._credit = asyncio.Event()
        self.owns_connection = False  # connect_webtransport(): close() also closes QUIC
        self._reader = loop.create_task(self._read_capsules())

    # -- the W3C surface -----------------------------------------------------------

    async def create_bidirectional_stream(self) -> WebTransportBidirectionalStream:
        stream_id = await self._open(True)
        stream = WebTransportBidirectionalStream(self, stream_id)
        self._receivers[stream_id], self._senders[stream_id] = stream.readable, stream.writable
        self._live[stream_id] = [False, False]
        return stream

    async def create_unidirectional_stream(self) -> WebTransportSendStream:
        stream_id = await self._open(False)
        stream = WebTransportSendStream(self, stream_id)
        self._senders[stream_id] = stream
        self._live[stream_id] = [False, True]
        return stream

    def close(self, code: int = 0, reason: str = "") -> None:
        """Close the session: CLOSE_WEBTRANSPORT_SESSION with ``code`` and ``reason``
        (at most 1024 bytes of UTF-8 are sent), then FIN (§6)."""
        value = encode_close(code, reason)
        if self.closed.done():
            return
        with contextlib.suppress(TunnelClosed, H3UsageError):
            self._tunnel.send_capsule(CLOSE_WEBTRANSPORT_SESSION, value)
            self._tunnel.close()
        self._terminate(CloseInfo(code, value[4:].decode("utf-8")))

    def drain(self) -> None:
        """Ask the peer to wind the session down (DRAIN_WEBTRANSPORT_SESSION, §4.6)."""
        if not self.closed.done():
            with contextlib.suppress(TunnelClosed, H3UsageError):
                self._tunnel.send_capsule(DRAIN_WEBTRANSPORT_SESSION, b"")

    async def wait_closed(self) -> CloseInfo:
        return await asyncio.shield(self.closed)

    async def aclose(self, code: int = 0, reason: str = "") -> None:
        """Close the session and, if it has its own connection, the connection."""
        self.close(code, reason)
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        if self.owns_connection:
            # §6: let the peer see WT_CLOSE_SESSION before CONNECTION_CLOSE — wait (a
            # little) for it to close its side of the CONNECT stream.
            h3 = self._endpoint.h3
            for _ in range(50):  # at most half a second: draft-02 peers may never answer
                if h3.closed or not h3.stream_open(self.session_id):
                    break
                await asyncio.sleep(0.01)
            await self._endpoint.aclose()

    async def __aenter__(self) -> WebTransportSession:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- opening streams ------------------------------------------------------------

    async def _open(self, bidirectional: bool) -> int:
        flow = self._flow
        while True:
            if self.closed.done():
                raise SessionClosed("session closed")
            if flow is not None and not flow.can_open(bidirectional):
                self._capsule(*flow.streams_blocked(bidirectional))
                await self._wait_credit()
                continue
            try:
                stream_id = self._router.open(self.session_id, bidirectional)
            except StreamUsageError:
                await asyncio.sleep(_STREAM_POLL)  # QUIC stream limit: wait for MAX_STREAMS
                continue
            if flow is not None:
                flow.on_open(bidirectional)
            self._hub.own(stream_id, self)
            self._endpoint.flush()
            return stream_id

    async def _wait_credit(self) -> None:
        self._credit.clear()
        waiter: asyncio.Future[Any] = asyncio.ensure_future(self._credit.wait())
        closed: asyncio.Future[Any] = self.closed
        await asyncio.wait({waiter, closed}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()

    # -- called by the stream objects -------------------------------------------------

    async def _send_credit(self, wanted: int) -> int:
        flow = self._flow
        if flow is None:
            return wanted
        while True:
            if self.closed.done():
                raise SessionClosed("session closed")
            credit = flow.send_credit()
            if credit > 0:
                return min(wanted, credit)
            blocked = flow.data_blocked()
            if blocked is not None:
                self._capsule(*blocked)
            await self._wait_credit()

    def _send(self, stream_id: int, data: bytes, end: bool) -> None:
        if self.closed.done():
            raise SessionClosed("session closed")
        self._router.send(stream_id, data, end)
        if self._flow is not None:
            self._flow.on_sent(len(data))
        if end:
            self._stream_done(stream_id, send=True)
        self._endpoint.flush()

    def _reset(self, stream_id: int, http_code: int) -> None:
        self._router.reset(stream_id, http_code)
        self._stream_done(stream_id, send=True)
        self._endpoint.flush()

    def _stop_sending(self, stream_id: int, http_code: int) -> None:
        self._router.stop_sending(stream_id, http_code)
        self._endpoint.flush()

    async def _drain(self, stream_id: int) -> None:
        """Wait until the QUIC send buffer of the stream has room (tquic.io writers)."""
        protocol = getattr(self._endpoint, "protocol", None)
        if protocol is None:
            return
        try:
            await protocol.stream_writer(stream_id).drain()
        except ConnectionError as exc:
            raise SessionClosed(f"connection closed: {exc}") from None

    def _consumed(self, size: int) -> None:
        if self._flow is not None and size:
            update = self._flow.on_consumed(size)
            if update is not None:
                self._capsule(*update)

    def _recv_done(self, stream_id: int) -> None:
        self._stream_done(stream_id, recv=True)

    def _stream_done(self, stream_id: int, *, send: bool = False, recv: bool = False) -> None:
        state = self._live.get(stream_id)
        if state is None:
            return
        state[0] = state[0] or send
        state[1] = state[1] or recv
        if state[0] and state[1]:
            del self._live[stream_id]
            self._receivers.pop(stream_id, None)
            self._senders.pop(stream_id, None)
            self._hub.disown(stream_id)
            protocol = getattr(self._endpoint, "protocol", None)
            if protocol is not None:
                protocol.drop_writer(stream_id)
            if self._flow is not None and (stream_id & 0x1) == self.is_client:  # peer's stream
                update = self._flow.on_peer_stream_closed(not stream_id & 0x2)
                if update is not None:
                    self._capsule(*update)

    def _capsule(self, capsule_type: int, value: bytes) -> None:
        with contextlib.suppress(TunnelClosed, H3UsageError):
            self._tunnel.send_capsule(capsule_type, value)

    # -- fed by the hub -------------------------------------------------------------

    def on_stream_event(self, event: object) -> None:
        if isinstance(event, WebTransportStreamDataReceived):
            self._on_stream_data(event)
        elif isinstance(event, StreamReset):
            receiver = self._receivers.get(event.stream_id)
            if receiver is not None:
                receiver._fail(WebTransportStreamError(
                    f"stream {event.stream_id} reset by the peer", event.error_code))
            self._stream_done(event.stream_id, recv=True)
        elif isinstance(event, StopSendingReceived):
            sender = self._senders.get(event.stream_id)
            if sender is not None:
                sender._fail(WebTransportStreamError(
                    f"peer stopped reading stream {event.stream_id}", event.error_code))
            self._stream_done(event.stream_id, send=True)

    def _on_stream_data(self, event: WebTransportStreamDataReceived) -> None:
        stream_id = event.stream_id
        if self.closed.done():
            self._refuse(stream_id, WT_SESSION_GONE)
            return
        receiver = self._receivers.get(stream_id)
        try:
            if receiver is None:
                if stream_id in self._live or (stream_id & 0x1) != self.is_client:
                    return  # late data for a stream we already stopped reading
                receiver = self._accept_peer_stream(stream_id)
                if receiver is None:
                    return
            if self._flow is not None:
                self._flow.on_received(len(event.data))
        except CapsuleError as exc:
            self._abort(exc.code, exc.reason)
            return
        receiver._on_data(event.data, event.stream_ended)

    def _accept_peer_stream(self, stream_id: int) -> WebTransportReceiveStream | None:
        bidirectional = not stream_id & 0x2
        queue: IncomingStreams[Any] = (self.incoming_bidirectional_streams if bidirectional
                                       else self.incoming_unidirectional_streams)
        if queue.full:
            from tquic.h3.webtransport.codes import WT_BUFFERED_STREAM_REJECTED

            self._refuse(stream_id, WT_BUFFERED_STREAM_REJECTED)
            return None
        if self._flow is not None:
            self._flow.on_peer_stream(bidirectional)
        self._hub.own(stream_id, self)
        if bidirectional:
            bidi = WebTransportBidirectionalStream(self, stream_id)
            self._receivers[stream_id], self._senders[stream_id] = bidi.readable, bidi.writable
            self._live[stream_id] = [False, False]
            queue._push(bidi)
            return bidi.readable
        uni = WebTransportReceiveStream(self, stream_id)
        self._receivers[stream_id] = uni
        self._live[stream_id] = [True, False]
        queue._push(uni)
        return uni

    def _refuse(self, stream_id: int, code: int) -> None:
        self._router.stop_sending(stream_id, code)
        if not stream_id & 0x2:
            self._router.reset(stream_id, code)
        self._endpoint.flush()

    # -- the CONNECT stream -----------------------------------------------------------

    async def _read_capsules(self) -> None:
        try:
            while True:
                capsule = await self._tunnel.receive_capsule()
                if capsule is None:
                    # §6: a clean FIN without a capsule is a close with code 0.
                    self._finish_remote(CloseInfo())
                    return
                ctype = capsule.type
                if ctype == CLOSE_WEBTRANSPORT_SESSION:
                    self._finish_remote(decode_close(capsule.value))
                    return
                if ctype == DRAIN_WEBTRANSPORT_SESSION:
                    self._set_draining()
                elif ctype == CapsuleType.DATAGRAM:
                    self._tunnel.on_datagram(capsule.value)  # RFC 9297 §3.5
                elif ctype in FLOW_CAPSULES:
                    value = decode_varint_value(ctype, capsule.value)
                    if self._flow is not None:  # §5.1: ignored unless negotiated
                        self._flow.on_peer_limit(ctype, value)
                        self._credit.set()
                elif ctype in (WT_MAX_STREAM_DATA, WT_STREAM_DATA_BLOCKED):
                    raise CapsuleError(H3ErrorCode.H3_MESSAGE_ERROR,
                                       f"capsule {ctype:#x} is not used over HTTP/3 (§5.3)")
                # other capsule types: skipped (RFC 9297 §3.2)
        except CapsuleError as exc:
            self._abort(exc.code, exc.reason)
        except H3Error as exc:
            self._abort(int(exc.code), exc.reason)
        except TunnelClosed as exc:
            self._terminate(CloseInfo(0, str(exc), abrupt=True))

    def _finish_remote(self, info: CloseInfo) -> None:
        # §6: the recipient of WT_CLOSE_SESSION closes its side of the CONNECT stream.
        with contextlib.suppress(TunnelClosed, H3UsageError):
            self._tunnel.close()
        self._terminate(info)

    def _abort(self, code: int, reason: str) -> None:
        """A session error: reset the CONNECT stream with ``code``."""
        with contextlib.suppress(TunnelClosed, H3UsageError):
            self._tunnel.abort(code)
        self._terminate(CloseInfo(code, reason, abrupt=True))

    def _set_draining(self) -> None:
        if not self.draining.done():
            self.draining.set_result(None)

    def on_goaway(self) -> None:
        """HTTP/3 GOAWAY is a drain signal for every session (§4.6)."""
        self._set_draining()

    def on_connection_closed(self, reason: str) -> None:
        self._terminate(CloseInfo(0, reason, abrupt=True))

    def _terminate(self, info: CloseInfo) -> None:
        """§6: reset and stop every stream of the session with WT_SESSION_GONE."""
        if self.closed.done():
            return
        error = SessionClosed(f"session closed ({info.code}: {info.reason})")
        for stream_id in list(self._live):
            with contextlib.suppress(StreamUsageError, H3UsageError):
                self._router.reset(stream_id, WT_SESSION_GONE)
                self._router.stop_sending(stream_id, WT_SESSION_GONE)
            self._hub.disown(stream_id)
        for receiver in self._receivers.values():
            receiver._fail(error)
        for sender in self._senders.values():
            sender._fail(error)
        self._receivers.clear()
        self._senders.clear()
        self._live.clear()
        self.incoming_bidirectional_streams._close()
        self.incoming_unidirectional_streams._close()
        self.closed.set_result(info)
        self._credit.set()
        self._tunnel.on_terminated(0)  # wakes datagram readers
        self._hub.session_ended(self.session_id)
        self._endpoint.flush()
