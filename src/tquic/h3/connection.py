"""The HTTP/3 connection (RFC 9114) over a sans-I/O QUIC engine.

``H3Connection(quic, is_client)`` opens its control and QPACK streams at once
(so create it when the engine can open streams — after the handshake, or
before it if the engine queues), then turns every engine event passed to
:meth:`H3Connection.handle_event` into HTTP/3 events.  Nothing here does I/O or
reads a clock; the engine sends what we queue on it.

Errors: a connection error (:class:`H3Error`) closes the QUIC connection with
its code as the application error (§8); a stream error
(:class:`H3StreamError`) resets that request stream in both directions.  The
control-stream and unidirectional-stream rules live in
:mod:`tquic.h3.peer_streams`, a request stream's frames and messages in
:mod:`tquic.h3.request_receive`; this module owns the request streams and
handles their errors, sending, datagrams and GOAWAY.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import partial

import pylsqpack

from tquic.core.events import ConnectionTerminated as QuicConnectionTerminated
from tquic.core.events import DatagramReceived as QuicDatagramReceived
from tquic.core.events import StopSendingReceived as QuicStopSendingReceived
from tquic.core.events import StreamDataReceived as QuicStreamDataReceived
from tquic.core.events import StreamReset as QuicStreamReset
from tquic.core.send_stream import StreamUsageError
from tquic.h3.errors import H3Error, H3ErrorCode, H3StreamError, H3UsageError
from tquic.h3.events import (
    ConnectionTerminated,
    DatagramReceived,
    H3Event,
    Headers,
    StopSendingReceived,
    StreamReset,
)
from tquic.h3.frames import (
    FrameType,
    GoawayFrame,
    SettingsFrame,
    UnknownFrame,
    encode_frame,
    encode_frame_header,
    pull_varint,
)
from tquic.h3.headers import (
    field_section_size,
    validate_request_headers,
    validate_response_headers,
    validate_trailers,
)
from tquic.h3.peer_streams import PeerStreams
from tquic.h3.request_receive import RequestReceiver
from tquic.h3.settings import H3Config, PeerSettings, grease_value
from tquic.h3.stream import RequestStream, SendState, StreamType
from tquic.h3.transport import QuicStreamTransport, peer_max_datagram_frame_size
from tquic.h3.wt_streams import WtStreamRouter
from tquic.wire.buffer import encode_varint

_MAX_QUARTER_STREAM_ID = (1 << 60) - 1  # RFC 9297 §2.1
# The largest GOAWAY identifiers (RFC 9114 §5.2): a server names a client bidi stream.
MAX_GOAWAY_STREAM_ID = (1 << 62) - 4
MAX_GOAWAY_PUSH_ID = (1 << 62) - 1


def _is_client_bidi(stream_id: int) -> bool:
    return stream_id & 0x3 == 0  # RFC 9000 §2.1


class H3Connection:
    """One HTTP/3 connection, client or server side (sans-I/O)."""

    def __init__(
        self,
        quic: QuicStreamTransport,
        is_client: bool,
        config: H3Config | None = None,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self._quic = quic
        self._is_client = is_client
        self._config = config or H3Config()
        self._rng = rng or random.Random()
        self._closed = False
        self._streams: dict[int, RequestStream] = {}
        self._max_request_stream_seen = -1  # server: largest client bidi id received
        self._aborted: set[int] = set()  # request streams we reset, until the peer's reset
        self.peer_settings = PeerSettings()
        self.settings_received = False
        self.goaway_received: int | None = None  # last GOAWAY id from the peer
        self.goaway_sent: int | None = None
        self._decoder = pylsqpack.Decoder(
            self._config.qpack_max_table_capacity, self._config.qpack_blocked_streams
        )
        self._encoder = pylsqpack.Encoder()
        self._peer = PeerStreams(self)
        self._receive = RequestReceiver(self)
        # WebTransport data streams (draft-ietf-webtrans-http3 §4.2-4.3), when enabled.
        self.webtransport: WtStreamRouter | None = (
            WtStreamRouter(quic, is_client) if self._config.webtransport else None
        )
        # RFC 9114 §6.2.1, RFC 9204 §4.2: our control stream (SETTINGS first)
        # and the QPACK encoder and decoder streams, opened at once.
        self._control_id = self._open_uni(StreamType.CONTROL)
        control = encode_frame(SettingsFrame(self._config.local_settings(self._rng)))
        if self._config.grease:
            control += self._grease_frame()
        self._quic.send_stream_data(self._control_id, control)
        self._encoder_id = self._open_uni(StreamType.QPACK_ENCODER)
        self._decoder_id = self._open_uni(StreamType.QPACK_DECODER)
        if self._config.grease:
            self._open_grease_stream()

    # -- properties ----------------------------------------------------------

    @property
    def is_client(self) -> bool:
        return self._is_client

    @property
    def config(self) -> H3Config:
        return self._config

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def local_stream_ids(self) -> frozenset[int]:
        """Our control, QPACK encoder and QPACK decoder stream ids (critical streams)."""
        return frozenset({self._control_id, self._encoder_id, self._decoder_id})

    def datagrams_enabled(self) -> bool:
        """RFC 9297 §2.1.1: H3_DATAGRAM sent and received as 1, and the peer takes DATAGRAM."""
        return (
            self._config.enable_datagrams
            and self.peer_settings.h3_datagram
            and peer_max_datagram_frame_size(self._quic) is not None
        )

    # -- engine events -------------------------------------------------------

    def handle_event(self, event: object) -> list[H3Event]:
        """Process one engine event; return the HTTP/3 events it produced."""
        events: list[H3Event] = []
        if self._closed:
            return events
        try:
            if isinstance(event, QuicStreamDataReceived):
                self._on_stream_data(event.stream_id, event.data, event.end_stream, events)
            elif isinstance(event, QuicDatagramReceived):
                self._on_datagram(event.data, events)
            elif isinstance(event, QuicStreamReset):
                self._on_stream_reset(event.stream_id, event.error_code, events)
            elif isinstance(event, QuicStopSendingReceived):
                self._on_stop_sending(event.stream_id, event.error_code, events)
            elif isinstance(event, QuicConnectionTerminated):
                self._closed = True
                events.append(ConnectionTerminated(event.error_code, event.reason, event.by_peer))
        except H3Error as exc:
            self._fail(exc, events)
        return events

    def _fail(self, exc: H3Error, events: list[H3Event]) -> None:
        """A connection error (§8): close QUIC with the H3 code as the application error."""
        self._closed = True
        self._quic.close(error_code=int(exc.code), reason=exc.reason, application=True)
        events.append(ConnectionTerminated(int(exc.code), exc.reason, by_peer=False))

    def _on_stream_data(self, stream_id: int, data: bytes, fin: bool, events: list[H3Event]) -> None:
        wt = self.webtransport
        if wt is not None and wt.tracks(stream_id):
            wt.on_data(stream_id, data, fin, events)
            return
        if stream_id & 0x2:
            self._peer.on_data(stream_id, data, fin, events)
            return
        # A new peer bidi stream may be WebTransport's (0x41 signal) instead of a request.
        if (wt is not None and (stream_id & 0x1) == self._is_client  # the peer opened it
                and stream_id not in self._streams and stream_id not in self._aborted):
            rest = wt.sniff_bidi(stream_id, data, fin, events)
            if rest is None:
                return
            data = rest
        if not _is_client_bidi(stream_id):
            # §6.1: HTTP/3 does not use server-initiated bidirectional streams.
            raise H3Error(
                H3ErrorCode.H3_STREAM_CREATION_ERROR, f"server-initiated bidi stream {stream_id}"
            )
        stream = self._streams.get(stream_id)
        if stream is None:
            if self._is_client or stream_id in self._aborted:
                # Not ours, or aborted by us: what was in flight before the peer
                # saw our STOP_SENDING is dropped.  (Finished streams get nothing
                # more from the engine after their FIN.)
                return
            # Request streams may open in any order (RFC 9000 §2.1 only orders ids per type).
            self._max_request_stream_seen = max(self._max_request_stream_seen, stream_id)
            stream = self._streams[stream_id] = RequestStream(
                stream_id, self._config.max_header_frame_size
            )
            if self.goaway_sent is not None and stream_id >= self.goaway_sent:
                # §5.2: requests at or above our GOAWAY id are rejected unprocessed.
                self._abort(stream, H3ErrorCode.H3_REQUEST_REJECTED)
                return
        if stream.aborted or stream.recv_ended:
            return
        self._guarded(stream, events, partial(self._receive.feed, stream, data, fin, events))

    def _guarded(
        self, stream: RequestStream, events: list[H3Event], work: Callable[[], None]
    ) -> None:
        """Run ``work`` for one request stream, turning a stream error into a reset."""
        mark = len(events)
        try:
            work()
        except H3StreamError as exc:
            del events[mark:]  # the message is malformed: do not deliver parts of it
            if self._answers_malformed(stream):
                self._answer_bad_request(stream, exc.reason)
            self._abort(stream, exc.code)
            events.append(StreamReset(stream.stream_id, int(exc.code), by_peer=False))
        self._forget_if_finished(stream)

    def _answers_malformed(self, stream: RequestStream) -> bool:
        return (not self._is_client and self._config.answer_malformed_requests
                and stream.send_state == SendState.HEADERS and not stream.send_ended
                and not stream.is_tunnel)

    def _answer_bad_request(self, stream: RequestStream, reason: str) -> None:
        """§4.1.2: "a server MAY send an HTTP response indicating the error prior to
        closing or resetting the stream" -- a 400 that ends our side with FIN, so
        ``_abort`` then only stops the receiving side (STOP_SENDING)."""
        body = f"malformed request: {reason}\n".encode("utf-8", "replace")
        try:
            self.send_headers(stream.stream_id, [
                (b":status", b"400"), (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode())])
            self.send_data(stream.stream_id, body, end_stream=True)
        except (H3UsageError, StreamUsageError):
            return  # the stream cannot take it: the reset alone says it

    def _abort(self, stream: RequestStream, code: int) -> None:
        """Reset both directions of a request stream (RFC 9114 §4.1.1, §8)."""
        stream.aborted = True
        if not stream.recv_ended:
            self._aborted.add(stream.stream_id)
        if stream.blocked:
            # RFC 9204 §4.4.2: tell the peer's encoder this field section is abandoned.
            stream.blocked = False
            self.send_decoder(self._decoder.cancel_stream(stream.stream_id))
        stream.pending.clear()
        if not stream.send_ended:
            stream.send_ended = True
            self._quic.reset_stream(stream.stream_id, code)
        if not stream.recv_ended:
            self._quic.stop_sending(stream.stream_id, code)

    def _forget_if_finished(self, stream: RequestStream) -> None:
        if stream.finished:
            self._streams.pop(stream.stream_id, None)

    def on_qpack_unblocked(self, stream_ids: list[int], events: list[H3Event]) -> None:
        """The encoder stream unblocked these header blocks (RFC 9204 §2.1.2)."""
        for stream_id in stream_ids:
            stream = self._streams.get(stream_id)
            if stream is None or not stream.blocked:
                continue
            self._guarded(stream, events, partial(self._receive.resume, stream, events))

    # -- other engine events --------------------------------------------------

    def _on_stream_reset(self, stream_id: int, error_code: int, events: list[H3Event]) -> None:
        if self.webtransport is not None and self.webtransport.tracks(stream_id):
            self.webtransport.on_reset(stream_id, error_code, events)
            return
        if stream_id & 0x2:
            self._peer.on_reset(stream_id)
            return
        self._aborted.discard(stream_id)  # the peer acknowledged our STOP_SENDING
        stream = self._streams.get(stream_id)
        if stream is None or stream.aborted:
            return
        stream.recv_ended = True
        if stream.blocked:
            stream.blocked = False
            self.send_decoder(self._decoder.cancel_stream(stream_id))
        stream.pending.clear()
        events.append(StreamReset(stream_id, error_code, by_peer=True))
        self._forget_if_finished(stream)

    def _on_stop_sending(self, stream_id: int, error_code: int, events: list[H3Event]) -> None:
        if stream_id in self.local_stream_ids:
            # §6.2.1 / RFC 9204 §4.2: the receiver must not ask us to close a critical stream.
            raise H3Error(H3ErrorCode.H3_CLOSED_CRITICAL_STREAM, "STOP_SENDING on a critical stream")
        if self.webtransport is not None and self.webtransport.tracks(stream_id):
            self.webtransport.on_stop_sending(stream_id, error_code, events)
            return
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        stream.send_ended = True  # the engine answered with RESET_STREAM (RFC 9000 §3.5)
        stream.send_state = SendState.DONE
        events.append(StopSendingReceived(stream_id, error_code))
        self._forget_if_finished(stream)

    def _on_datagram(self, data: bytes, events: list[H3Event]) -> None:
        if not self._config.enable_datagrams:
            raise H3Error(H3ErrorCode.H3_DATAGRAM_ERROR, "DATAGRAM without SETTINGS_H3_DATAGRAM")
        quarter, pos = pull_varint(data, 0)
        if quarter < 0:
            raise H3Error(H3ErrorCode.H3_DATAGRAM_ERROR, "datagram too short for a stream id")
        if quarter > _MAX_QUARTER_STREAM_ID:
            raise H3Error(H3ErrorCode.H3_DATAGRAM_ERROR, "quarter stream id above 2^60-1")
        stream = self._streams.get(quarter * 4)
        # RFC 9297 §2.1: unknown (not yet created) or closed streams: drop silently.
        if stream is None or stream.aborted or stream.recv_ended:
            return
        if not stream.is_tunnel:
            # RFC 9297 §2: a request without datagram semantics is aborted.
            self._abort(stream, H3ErrorCode.H3_DATAGRAM_ERROR)
            events.append(StreamReset(stream.stream_id, H3ErrorCode.H3_DATAGRAM_ERROR, False))
            self._forget_if_finished(stream)
            return
        events.append(DatagramReceived(stream.stream_id, data[pos:]))

    # -- sending ---------------------------------------------------------------

    def get_next_available_stream_id(self) -> int:
        """Client: open the next request stream and return its id.

        Raises H3UsageError after the server's GOAWAY (§5.2: no new requests).
        """
        if not self._is_client:
            raise H3UsageError("only clients open request streams")
        self._check_open()
        if self.goaway_received is not None:
            raise H3UsageError("GOAWAY received: no new requests on this connection")
        stream_id = self._quic.open_stream(bidirectional=True)
        self._streams[stream_id] = RequestStream(stream_id, self._config.max_header_frame_size)
        return stream_id

    def send_headers(self, stream_id: int, headers: Headers, end_stream: bool = False) -> None:
        """Send a header section: the request or response head, or trailers once the body began."""
        self._check_open()
        stream = self._sendable(stream_id)
        status = 200
        try:
            if stream.send_state == SendState.BODY:
                validate_trailers(headers)
                if not end_stream:
                    raise H3UsageError("trailers end the message: use end_stream=True")
            elif self._is_client:
                request = validate_request_headers(
                    headers, allow_protocol=self.peer_settings.enable_connect_protocol
                )
                if self.goaway_received is not None and stream_id >= self.goaway_received:
                    raise H3UsageError(f"stream {stream_id} is beyond the server's GOAWAY")
                stream.request_method = request.method
                stream.is_tunnel = request.method == b"CONNECT"
            else:
                status = validate_response_headers(headers).status
                if status < 200 and end_stream:
                    raise H3UsageError("an interim response cannot end the stream")
        except H3StreamError as exc:
            raise H3UsageError(f"invalid header section: {exc.reason}") from exc
        limit = self.peer_settings.max_field_section_size
        if limit is not None and field_section_size(headers) > limit:
            raise H3UsageError("header section exceeds the peer's SETTINGS_MAX_FIELD_SECTION_SIZE")
        try:
            encoder_data, block = self._encoder.encode(stream_id, headers)
        except (ValueError, RuntimeError) as exc:
            raise H3UsageError(f"cannot encode headers: {exc}") from exc
        if encoder_data:
            self._quic.send_stream_data(self._encoder_id, encoder_data)
        frame = encode_frame_header(FrameType.HEADERS, len(block)) + block
        self._quic.send_stream_data(stream_id, frame, end_stream)
        if stream.send_state == SendState.BODY:
            stream.send_state = SendState.DONE
        elif self._is_client or status >= 200:
            stream.send_state = SendState.BODY
        if end_stream:
            self._end_send(stream)

    def send_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        """Send content (a DATA frame) after the header section."""
        self._check_open()
        stream = self._sendable(stream_id)
        if stream.send_state != SendState.BODY:
            raise H3UsageError("DATA must follow HEADERS and precede trailers")
        if data:
            self._quic.send_stream_data(
                stream_id, encode_frame_header(FrameType.DATA, len(data)) + data, end_stream
            )
        elif end_stream:
            self._quic.send_stream_data(stream_id, b"", True)
        if end_stream:
            self._end_send(stream)

    def send_trailers(self, stream_id: int, headers: Headers) -> None:
        """Send the trailer section, ending the message."""
        stream = self._sendable(stream_id)
        if stream.send_state != SendState.BODY:
            raise H3UsageError("trailers must follow the header section")
        self.send_headers(stream_id, headers, end_stream=True)

    def send_datagram(self, stream_id: int, data: bytes, path_id: int | None = None) -> None:
        """Send an HTTP Datagram for the request on ``stream_id`` (RFC 9297 §2.1);
        ``path_id``: the QUIC path it should prefer (multipath; not a guarantee)."""
        self._check_open()
        if not self.datagrams_enabled():
            raise H3UsageError("HTTP/3 datagrams were not negotiated (RFC 9297 §2.1.1)")
        stream = self._streams.get(stream_id)
        if stream is None or stream.aborted or stream.send_ended:
            raise H3UsageError(f"stream {stream_id} send side is not open")
        payload = encode_varint(stream_id >> 2) + data
        if path_id is None:
            self._quic.send_datagram(payload)
        else:
            self._quic.send_datagram(payload, path_id)

    def send_goaway(self, identifier: int | None = None) -> int:
        """Begin graceful shutdown (§5.2); returns the id sent.

        Server: ``identifier`` is the first request stream id it will not
        process (default: one past the last request received); requests at or
        above it are rejected with H3_REQUEST_REJECTED.  Client: a push ID
        (default 0: we accept no pushes).
        """
        self._check_open()
        if identifier is None:
            seen = self._max_request_stream_seen
            identifier = seen + 4 if not self._is_client and seen >= 0 else 0
        if not self._is_client and not _is_client_bidi(identifier):
            raise H3UsageError("a server's GOAWAY names a client-initiated bidirectional stream")
        if self.goaway_sent is not None and identifier > self.goaway_sent:
            raise H3UsageError("GOAWAY id may not increase (§5.2)")
        self.goaway_sent = identifier
        self._quic.send_stream_data(self._control_id, encode_frame(GoawayFrame(identifier)))
        if not self._is_client:
            for stream in [s for s in self._streams.values() if s.stream_id >= identifier]:
                self._abort(stream, H3ErrorCode.H3_REQUEST_REJECTED)
                self._forget_if_finished(stream)
        return identifier

    def stream_open(self, stream_id: int) -> bool:
        """Whether request stream ``stream_id`` still has a direction open (either side)."""
        return stream_id in self._streams

    def cancel_stream(self, stream_id: int, error_code: int = H3ErrorCode.H3_REQUEST_CANCELLED) -> None:
        """Abort a request in both directions (§4.1.1)."""
        stream = self._streams.get(stream_id)
        if stream is None or stream.aborted:
            return
        self._abort(stream, error_code)
        self._forget_if_finished(stream)

    def close(self, error_code: int = H3ErrorCode.H3_NO_ERROR, reason: str = "") -> None:
        """Close the connection now (§5.4)."""
        if not self._closed:
            self._closed = True
            self._quic.close(error_code=error_code, reason=reason, application=True)

    # -- helpers -------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise H3UsageError("the HTTP/3 connection is closed")

    def _sendable(self, stream_id: int) -> RequestStream:
        stream = self._streams.get(stream_id)
        if stream is None:
            if not (self._is_client and _is_client_bidi(stream_id)):
                raise H3UsageError(f"stream {stream_id} is not an open request stream")
            stream = self._streams[stream_id] = RequestStream(
                stream_id, self._config.max_header_frame_size
            )
        if stream.aborted or stream.send_ended:
            raise H3UsageError(f"stream {stream_id} is closed for sending")
        return stream

    def _end_send(self, stream: RequestStream) -> None:
        stream.send_ended = True
        stream.send_state = SendState.DONE
        self._forget_if_finished(stream)

    def _open_uni(self, stream_type: StreamType) -> int:
        stream_id = self._quic.open_stream(bidirectional=False)
        self._quic.send_stream_data(stream_id, encode_varint(stream_type))
        return stream_id

    def _open_grease_stream(self) -> None:
        # §6.2.3: a reserved stream type, some bytes, FIN.  Only when the peer's
        # unidirectional stream limit has room for a fourth stream: §6.2 asks for
        # just 3, and ngtcp2 grants exactly 3, so GREASE must never cost a
        # connection (opening beyond the limit is a usage error in the engine).
        try:
            grease_id = self._quic.open_stream(bidirectional=False)
        except StreamUsageError:
            return
        self._quic.send_stream_data(
            grease_id, encode_varint(grease_value(self._rng)) + b"GREASE", end_stream=True
        )

    def _grease_frame(self) -> bytes:
        payload = self._rng.randbytes(self._rng.randrange(0, 8))
        return encode_frame(UnknownFrame(grease_value(self._rng), len(payload)), unknown_payload=payload)

    def send_decoder(self, data: bytes) -> None:
        """Queue QPACK decoder instructions (RFC 9204 §4.4)."""
        if data:
            self._quic.send_stream_data(self._decoder_id, data)

    def send_encoder(self, data: bytes) -> None:
        """Queue QPACK encoder instructions (used when the peer's SETTINGS arrive)."""
        if data:
            self._quic.send_stream_data(self._encoder_id, data)

    # -- used by PeerStreams ----------------------------------------------------------

    @property
    def decoder(self) -> pylsqpack.Decoder:
        return self._decoder

    @property
    def encoder(self) -> pylsqpack.Encoder:
        return self._encoder

    def stop_sending(self, stream_id: int, error_code: int) -> None:
        self._quic.stop_sending(stream_id, error_code)
