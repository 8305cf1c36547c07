"""Receiving one HTTP/3 request stream (RFC 9114 §4.1): frames in order, QPACK, checks.

:class:`RequestReceiver` turns the bytes of a request stream into
HeadersReceived / DataReceived events: frame order (§4.1), the field sections
decoded by QPACK (RFC 9204; a blocked section waits with what follows it,
bounded), message checks (§4.1.2 content-length, §4.2 field validation) and
the end of the message.  A malformed message raises H3StreamError (the
connection resets that stream); a frame that breaks the connection's rules
raises H3Error.  :class:`~tquic.h3.connection.H3Connection` owns the streams,
the QPACK decoder and the error handling; this reads its configuration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pylsqpack

from tquic.h3.errors import H3Error, H3ErrorCode, H3StreamError
from tquic.h3.events import DataReceived, H3Event, Headers, HeadersReceived
from tquic.h3.frames import (
    CancelPushFrame,
    DataFrame,
    Frame,
    GoawayFrame,
    HeadersFrame,
    MaxPushIdFrame,
    PushPromiseFrame,
    SettingsFrame,
)
from tquic.h3.headers import (
    field_section_size,
    response_has_no_content,
    validate_request_headers,
    validate_response_headers,
    validate_trailers,
)
from tquic.h3.stream import RecvState, RequestStream
from tquic.h3.wt_streams import WT_STREAM_SIGNAL

if TYPE_CHECKING:
    from tquic.h3.connection import H3Connection


class RequestReceiver:
    """The receiving side of every request stream of one H3Connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: H3Connection) -> None:
        self._conn = conn

    def feed(self, stream: RequestStream, data: bytes, fin: bool, events: list[H3Event]) -> None:
        frames = stream.parser.feed(data)
        if stream.blocked:
            # Waiting for QPACK: keep what follows the blocked HEADERS, bounded.
            stream.pending.extend(frames)
            stream.pending_bytes += len(data)
            stream.pending_fin = fin
            if stream.pending_bytes > self._conn.config.max_blocked_stream_bytes:
                raise H3Error(H3ErrorCode.H3_EXCESSIVE_LOAD, "too much data behind blocked HEADERS")
            return
        self._process_frames(stream, frames, fin, events, len(events))

    def _process_frames(
        self, stream: RequestStream, frames: list[Frame], fin: bool, events: list[H3Event],
        mark: int,
    ) -> None:
        for index, frame in enumerate(frames):
            self._frame(stream, frame, events)
            if stream.blocked:
                stream.pending = frames[index + 1 :]
                stream.pending_bytes = sum(
                    len(f.data) for f in stream.pending if isinstance(f, DataFrame | HeadersFrame)
                )
                stream.pending_fin = fin
                return
        if fin:
            self._finish(stream, events, mark)

    def _frame(self, stream: RequestStream, frame: Frame, events: list[H3Event]) -> None:
        if isinstance(frame, DataFrame):
            # §4.1: DATA before HEADERS or after trailers is an invalid sequence.
            if stream.recv_state != RecvState.BODY:
                raise H3Error(H3ErrorCode.H3_FRAME_UNEXPECTED, "DATA outside the message body")
            if not frame.data:
                return
            stream.data_received += len(frame.data)
            if not stream.is_tunnel:
                if stream.no_content:
                    raise H3StreamError(H3ErrorCode.H3_MESSAGE_ERROR, "content on a bodiless response")
                if stream.content_length is not None and stream.data_received > stream.content_length:
                    raise H3StreamError(H3ErrorCode.H3_MESSAGE_ERROR, "DATA beyond content-length")
            events.append(DataReceived(stream.stream_id, frame.data, False))
        elif isinstance(frame, HeadersFrame):
            if stream.recv_state == RecvState.TRAILERS or (
                stream.recv_state == RecvState.BODY and stream.is_tunnel
            ):
                # §4.1 (HEADERS after trailers) and §4.4 (only DATA on a CONNECT stream).
                raise H3Error(H3ErrorCode.H3_FRAME_UNEXPECTED, "HEADERS after the message ended")
            try:
                control, headers = self._conn.decoder.feed_header(stream.stream_id, frame.data)
            except pylsqpack.StreamBlocked:
                stream.blocked = True
                return
            except pylsqpack.DecompressionFailed as exc:
                raise H3Error(H3ErrorCode.QPACK_DECOMPRESSION_FAILED, str(exc)) from exc
            self._conn.send_decoder(control)
            self.on_headers(stream, headers, events)
        elif isinstance(frame, PushPromiseFrame):
            if not self._conn.is_client:
                raise H3Error(H3ErrorCode.H3_FRAME_UNEXPECTED, "PUSH_PROMISE from a client")
            # §7.2.5: we never sent MAX_PUSH_ID, so every push ID exceeds our limit.
            raise H3Error(H3ErrorCode.H3_ID_ERROR, f"push ID {frame.push_id} was never allowed")
        elif isinstance(frame, CancelPushFrame | SettingsFrame | GoawayFrame | MaxPushIdFrame):
            raise H3Error(H3ErrorCode.H3_FRAME_UNEXPECTED, f"{type(frame).__name__} on a request stream")
        elif self._conn.webtransport is not None and frame.frame_type == WT_STREAM_SIGNAL:
            # draft-ietf-webtrans-http3 §4.3: WT_STREAM anywhere but a stream's first bytes.
            raise H3Error(H3ErrorCode.H3_FRAME_ERROR, "WT_STREAM inside a request stream")
        # UnknownFrame: reserved/extension frames are ignored (§9).

    def on_headers(self, stream: RequestStream, headers: Headers, events: list[H3Event]) -> None:
        limit = self._conn.config.max_field_section_size
        if limit is not None and field_section_size(headers) > limit:
            # §4.2.2: larger than we advertised; refuse this message, not the connection.
            raise H3StreamError(H3ErrorCode.H3_EXCESSIVE_LOAD, "field section above our limit")
        if stream.recv_state == RecvState.BODY:
            validate_trailers(headers)
            stream.recv_state = RecvState.TRAILERS
        elif not self._conn.is_client:
            request = validate_request_headers(
                headers, allow_protocol=self._conn.config.enable_connect_protocol
            )
            stream.request_method = request.method
            stream.is_tunnel = request.method == b"CONNECT"
            stream.content_length = request.content_length
            stream.recv_state = RecvState.BODY
        else:
            response = validate_response_headers(headers)
            if response.status >= 200:
                stream.recv_state = RecvState.BODY
                stream.content_length = response.content_length
                stream.no_content = response_has_no_content(stream.request_method, response.status)
                stream.is_tunnel = stream.request_method == b"CONNECT" and response.status < 300
            # 1xx: interim, the final response is still to come (§4.1).
        events.append(HeadersReceived(stream.stream_id, headers, False))

    def _finish(self, stream: RequestStream, events: list[H3Event], mark: int) -> None:
        stream.parser.finish()  # §7.1: truncated last frame → H3_FRAME_ERROR
        stream.recv_ended = True
        if stream.recv_state == RecvState.HEADERS:
            # §4.1: the stream ended without a complete request / final response.
            code = H3ErrorCode.H3_MESSAGE_ERROR if self._conn.is_client else H3ErrorCode.H3_REQUEST_INCOMPLETE
            raise H3StreamError(code, "stream ended before the header section")
        if (
            not stream.is_tunnel
            and not stream.no_content
            and stream.content_length is not None
            and stream.data_received != stream.content_length
        ):
            raise H3StreamError(H3ErrorCode.H3_MESSAGE_ERROR, "content-length mismatch")
        last = events[-1] if len(events) > mark else None
        if isinstance(last, HeadersReceived):
            events[-1] = HeadersReceived(last.stream_id, last.headers, True)
        elif isinstance(last, DataReceived):
            events[-1] = DataReceived(last.stream_id, last.data, True)
        else:
            events.append(DataReceived(stream.stream_id, b"", True))

    def resume(self, stream: RequestStream, events: list[H3Event]) -> None:
        mark = len(events)
        stream.blocked = False
        try:
            control, headers = self._conn.decoder.resume_header(stream.stream_id)
        except pylsqpack.DecompressionFailed as exc:
            raise H3Error(H3ErrorCode.QPACK_DECOMPRESSION_FAILED, str(exc)) from exc
        self._conn.send_decoder(control)
        self.on_headers(stream, headers, events)
        frames, stream.pending = stream.pending, []
        stream.pending_bytes = 0
        self._process_frames(stream, frames, stream.pending_fin, events, mark)
