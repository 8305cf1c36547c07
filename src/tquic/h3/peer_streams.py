"""The peer's unidirectional streams: control, QPACK encoder/decoder, push, unknown.

RFC 9114 §6.2: the first varint names the stream type.  One control stream
(SETTINGS first, never closed), one QPACK encoder and one decoder stream
(RFC 9204 §4.2) per peer; a second one is H3_STREAM_CREATION_ERROR, closing
or resetting one is H3_CLOSED_CRITICAL_STREAM.  Unknown and reserved types are
read no further (STOP_SENDING with H3_STREAM_CREATION_ERROR, never a
connection error).  Push streams: we never send MAX_PUSH_ID, so any push is
beyond the limit (H3_ID_ERROR), and a client must never open one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pylsqpack

from tquic.h3.errors import H3Error, H3ErrorCode
from tquic.h3.events import GoawayReceived, H3Event, SettingsReceived
from tquic.h3.frames import (
    CancelPushFrame,
    DataFrame,
    FrameParser,
    GoawayFrame,
    HeadersFrame,
    MaxPushIdFrame,
    PushPromiseFrame,
    SettingsFrame,
    pull_varint,
)
from tquic.h3.settings import PeerSettings
from tquic.h3.stream import PeerUniStream, StreamType
from tquic.h3.wt_streams import WT_UNI_STREAM_TYPE

if TYPE_CHECKING:
    from tquic.h3.connection import H3Connection

# We apply at most this much of the peer's QPACK table (RFC 9204 §3.2.3 lets the
# encoder choose any capacity up to the decoder's maximum).
_MAX_ENCODER_TABLE = 64 * 1024
_MAX_ENCODER_BLOCKED = 256

_CRITICAL = frozenset({StreamType.CONTROL, StreamType.QPACK_ENCODER, StreamType.QPACK_DECODER})


class PeerStreams:
    """Dispatch for the peer-initiated unidirectional streams of one H3Connection."""

    __slots__ = ("_conn", "_max_push_id", "_streams", "_typed")

    def __init__(self, conn: H3Connection) -> None:
        self._conn = conn
        self._streams: dict[int, PeerUniStream] = {}
        self._typed: dict[int, int] = {}  # critical stream type -> stream id
        self._max_push_id: int | None = None  # server: from the client's MAX_PUSH_ID

    def on_data(self, stream_id: int, data: bytes, fin: bool, events: list[H3Event]) -> None:
        stream = self._streams.get(stream_id)
        if stream is None:
            stream = self._streams[stream_id] = PeerUniStream(stream_id)
        if stream.discard:
            return
        if stream.stream_type < 0:
            data = stream.head + data
            stream_type, pos = pull_varint(data, 0)
            if stream_type < 0:
                # §6.2: tolerate a stream closed before its type arrived.
                stream.head = b"" if fin else data
                if fin:
                    del self._streams[stream_id]
                return
            stream.head = b""
            data = data[pos:]
            wt = self._conn.webtransport
            if stream_type == WT_UNI_STREAM_TYPE and wt is not None:
                # draft-ietf-webtrans-http3 §4.2: a WebTransport stream; the router owns it now.
                del self._streams[stream_id]
                wt.adopt_uni(stream_id, data, fin, events)
                return
            if not self._open(stream, stream_type, fin):
                return
        if stream.stream_type == StreamType.CONTROL:
            self._control_data(stream, data, events)
        elif stream.stream_type == StreamType.QPACK_ENCODER:
            try:
                unblocked = self._conn.decoder.feed_encoder(data)
            except pylsqpack.EncoderStreamError as exc:
                raise H3Error(H3ErrorCode.QPACK_ENCODER_STREAM_ERROR, str(exc)) from exc
            if unblocked:
                self._conn.on_qpack_unblocked(unblocked, events)
        elif stream.stream_type == StreamType.QPACK_DECODER:
            try:
                self._conn.encoder.feed_decoder(data)
            except pylsqpack.DecoderStreamError as exc:
                raise H3Error(H3ErrorCode.QPACK_DECODER_STREAM_ERROR, str(exc)) from exc
        elif stream.stream_type == StreamType.PUSH:
            self._push_data(stream, data)
        if fin and stream.stream_type in _CRITICAL:
            raise H3Error(
                H3ErrorCode.H3_CLOSED_CRITICAL_STREAM,
                f"peer closed its {StreamType(stream.stream_type).name} stream",
            )

    def on_reset(self, stream_id: int) -> None:
        stream = self._streams.get(stream_id)
        if stream is not None and stream.stream_type in _CRITICAL:
            raise H3Error(
                H3ErrorCode.H3_CLOSED_CRITICAL_STREAM,
                f"peer reset its {StreamType(stream.stream_type).name} stream",
            )
        self._streams.pop(stream_id, None)

    def _open(self, stream: PeerUniStream, stream_type: int, fin: bool) -> bool:
        """Take the stream type; False when the stream is to be ignored."""
        stream.stream_type = stream_type
        if stream_type in _CRITICAL:
            if stream_type in self._typed:
                # §6.2.1, RFC 9204 §4.2: only one of each per peer.
                raise H3Error(
                    H3ErrorCode.H3_STREAM_CREATION_ERROR,
                    f"second {StreamType(stream_type).name} stream",
                )
            self._typed[stream_type] = stream.stream_id
            if stream_type == StreamType.CONTROL:
                stream.parser = FrameParser(max_field_section=self._conn.config.max_header_frame_size)
            return True
        if stream_type == StreamType.PUSH:
            if not self._conn.is_client:
                # §6.2.2: only servers push.
                raise H3Error(H3ErrorCode.H3_STREAM_CREATION_ERROR, "push stream from a client")
            return True
        # §6.2: unknown or reserved stream type — ignore it, never a connection error.
        stream.discard = True
        if not fin:
            self._conn.stop_sending(stream.stream_id, H3ErrorCode.H3_STREAM_CREATION_ERROR)
        return False

    def _push_data(self, stream: PeerUniStream, data: bytes) -> None:
        data = stream.head + data
        push_id, _ = pull_varint(data, 0)
        if push_id < 0:
            stream.head = data
            return
        # §4.6: a push ID above the MAX_PUSH_ID we sent (we sent none) is H3_ID_ERROR.
        raise H3Error(H3ErrorCode.H3_ID_ERROR, f"push stream for push ID {push_id} never allowed")

    def _control_data(self, stream: PeerUniStream, data: bytes, events: list[H3Event]) -> None:
        parser = stream.parser
        if parser is None:
            return
        conn = self._conn
        for frame in parser.feed(data):
            if not stream.seen_first_frame:
                stream.seen_first_frame = True
                if not isinstance(frame, SettingsFrame):
                    # §6.2.1: the first frame must be SETTINGS.
                    raise H3Error(H3ErrorCode.H3_MISSING_SETTINGS, "control stream must start with SETTINGS")
                self._apply_settings(frame, events)
                continue
            if isinstance(frame, SettingsFrame):
                raise H3Error(H3ErrorCode.H3_FRAME_UNEXPECTED, "second SETTINGS frame")  # §7.2.4
            if isinstance(frame, DataFrame | HeadersFrame | PushPromiseFrame):
                # §7.2.1, §7.2.2, §7.2.5: not allowed on the control stream.
                raise H3Error(H3ErrorCode.H3_FRAME_UNEXPECTED, f"{type(frame).__name__} on control stream")
            if isinstance(frame, GoawayFrame):
                self._goaway(frame.id, events)
            elif isinstance(frame, MaxPushIdFrame):
                if conn.is_client:
                    raise H3Error(H3ErrorCode.H3_FRAME_UNEXPECTED, "MAX_PUSH_ID from a server")
                if self._max_push_id is not None and frame.push_id < self._max_push_id:
                    raise H3Error(H3ErrorCode.H3_ID_ERROR, "MAX_PUSH_ID decreased")  # §7.2.7
                self._max_push_id = frame.push_id
            elif isinstance(frame, CancelPushFrame):
                # §7.2.3: a server never promised this push (we never push); for a
                # client, the push ID exceeds the MAX_PUSH_ID we never sent.
                raise H3Error(H3ErrorCode.H3_ID_ERROR, f"CANCEL_PUSH for unknown push {frame.push_id}")
            # UnknownFrame: ignored (§9).

    def _apply_settings(self, frame: SettingsFrame, events: list[H3Event]) -> None:
        conn = self._conn
        settings = PeerSettings.from_pairs(frame.settings)
        conn.peer_settings = settings
        conn.settings_received = True
        try:
            encoder_data = conn.encoder.apply_settings(
                min(settings.qpack_max_table_capacity, _MAX_ENCODER_TABLE),
                min(settings.qpack_blocked_streams, _MAX_ENCODER_BLOCKED),
            )
        except RuntimeError as exc:
            raise H3Error(H3ErrorCode.H3_SETTINGS_ERROR, str(exc)) from exc
        conn.send_encoder(encoder_data)
        events.append(SettingsReceived(frame.settings))

    def _goaway(self, identifier: int, events: list[H3Event]) -> None:
        conn = self._conn
        if conn.is_client and identifier & 0x3 != 0:
            # §7.2.6: a server's GOAWAY names a client-initiated bidirectional stream.
            raise H3Error(H3ErrorCode.H3_ID_ERROR, f"GOAWAY with stream id {identifier}")
        if conn.goaway_received is not None and identifier > conn.goaway_received:
            raise H3Error(H3ErrorCode.H3_ID_ERROR, "GOAWAY id increased")  # §5.2
        conn.goaway_received = identifier
        events.append(GoawayReceived(identifier))
