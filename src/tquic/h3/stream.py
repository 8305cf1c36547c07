"""Per-stream state of the HTTP/3 connection: request streams and peer unidirectional streams."""

from __future__ import annotations

from enum import IntEnum

from tquic.h3.frames import Frame, FrameParser


class StreamType(IntEnum):
    """Unidirectional stream types (RFC 9114 §6.2, RFC 9204 §4.2)."""

    CONTROL = 0x00
    PUSH = 0x01
    QPACK_ENCODER = 0x02
    QPACK_DECODER = 0x03


class RecvState(IntEnum):
    """Where the receive side of a request stream is in the message (RFC 9114 §4.1)."""

    HEADERS = 0  # expecting the (final) header section; interim 1xx keep us here
    BODY = 1  # final header section seen: DATA, then maybe trailers
    TRAILERS = 2  # trailer section seen: nothing but unknown frames may follow


class SendState(IntEnum):
    HEADERS = 0
    BODY = 1
    DONE = 2  # trailers sent or stream ended


class RequestStream:
    """A client-initiated bidirectional stream carrying one request/response exchange."""

    __slots__ = (
        "aborted",
        "blocked",
        "content_length",
        "data_received",
        "is_tunnel",
        "no_content",
        "parser",
        "pending",
        "pending_bytes",
        "pending_fin",
        "recv_ended",
        "recv_state",
        "request_method",
        "send_ended",
        "send_state",
        "stream_id",
    )

    def __init__(self, stream_id: int, max_header_frame_size: int) -> None:
        self.stream_id = stream_id
        self.parser = FrameParser(max_field_section=max_header_frame_size)
        self.recv_state = RecvState.HEADERS
        self.send_state = SendState.HEADERS
        self.recv_ended = False
        self.send_ended = False
        self.aborted = False
        # QPACK: a HEADERS frame waiting for encoder-stream instructions (RFC 9204 §2.1.2);
        # frames parsed after it wait in ``pending``.
        self.blocked = False
        self.pending: list[Frame] = []
        self.pending_bytes = 0
        self.pending_fin = False
        self.request_method: bytes | None = None
        # CONNECT (RFC 9114 §4.4) or extended CONNECT (RFC 9220): after the
        # headers only DATA may follow, and the content is tunnel data.
        self.is_tunnel = False
        self.content_length: int | None = None
        self.no_content = False
        self.data_received = 0

    @property
    def finished(self) -> bool:
        """Nothing more will happen on this stream in either direction."""
        return self.aborted or (self.recv_ended and self.send_ended)


class PeerUniStream:
    """A unidirectional stream opened by the peer, identified by its first varint (§6.2)."""

    __slots__ = ("discard", "head", "parser", "seen_first_frame", "stream_id", "stream_type")

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id
        self.stream_type = -1  # not read yet
        self.head = b""  # bytes of a partial stream-type (or push ID) varint
        self.parser: FrameParser | None = None  # control stream only
        self.seen_first_frame = False
        self.discard = False  # unknown stream type: data is dropped (§6.2)
