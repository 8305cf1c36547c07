"""HTTP/3 frames (RFC 9114 §7): values, encoders and a streaming parser.

Frames arrive on QUIC streams split at arbitrary points, so :class:`FrameParser`
is fed chunks and returns the frames completed so far.  DATA payloads are
passed on as they arrive (a DATA frame may be delivered as several
:class:`DataFrame` pieces) so that a large body is never buffered here; every
other frame is buffered only up to a fixed limit.  Unknown and reserved
frame types are skipped without buffering (RFC 9114 §9) and reported as
:class:`UnknownFrame` so the caller can still enforce "SETTINGS first"
(§6.2.1).  Bad input raises :class:`~tquic.h3.errors.H3Error` with the code
§7.1/§7.2 names — never another exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from tquic.h3.errors import H3Error, H3ErrorCode
from tquic.wire.buffer import Buffer, encode_varint
from tquic.wire.errors import BufferReadError


class FrameType(IntEnum):
    """HTTP/3 frame types (RFC 9114 §7.2, §11.2.1)."""

    DATA = 0x0
    HEADERS = 0x1
    CANCEL_PUSH = 0x3
    SETTINGS = 0x4
    PUSH_PROMISE = 0x5
    GOAWAY = 0x7
    MAX_PUSH_ID = 0xD


# RFC 9114 §7.2.8 / §11.2.1: HTTP/2 frame types without an HTTP/3 counterpart
# (PRIORITY, PING, WINDOW_UPDATE, CONTINUATION); receipt is H3_FRAME_UNEXPECTED.
HTTP2_ONLY_FRAME_TYPES = frozenset({0x2, 0x6, 0x8, 0x9})


class SettingId(IntEnum):
    """Setting identifiers this implementation understands."""

    QPACK_MAX_TABLE_CAPACITY = 0x1  # RFC 9204 §5
    MAX_FIELD_SECTION_SIZE = 0x6  # RFC 9114 §7.2.4.1
    QPACK_BLOCKED_STREAMS = 0x7  # RFC 9204 §5
    ENABLE_CONNECT_PROTOCOL = 0x8  # RFC 9220 §3 (RFC 8441 §3)
    H3_DATAGRAM = 0x33  # RFC 9297 §2.1.1


# RFC 9114 §7.2.4.1 / §11.2.2: HTTP/2 settings with no HTTP/3 counterpart
# (ENABLE_PUSH, MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE).
HTTP2_ONLY_SETTINGS = frozenset({0x2, 0x3, 0x4, 0x5})

# Settings whose value must be 0 or 1 (RFC 9297 §2.1.1; RFC 8441 §3 as used by RFC 9220).
_BOOLEAN_SETTINGS = frozenset({SettingId.ENABLE_CONNECT_PROTOCOL, SettingId.H3_DATAGRAM})

# Frames whose payload is exactly one varint (§7.2.3, §7.2.6, §7.2.7).
_VARINT_FRAMES = frozenset({FrameType.CANCEL_PUSH, FrameType.GOAWAY, FrameType.MAX_PUSH_ID})

DEFAULT_MAX_FIELD_SECTION_FRAME = 64 * 1024
DEFAULT_MAX_SETTINGS_FRAME = 4 * 1024


@dataclass(frozen=True, slots=True)
class DataFrame:
    """DATA (§7.2.1) — or one piece of it, as delivered by the streaming parser."""

    data: bytes


@dataclass(frozen=True, slots=True)
class HeadersFrame:
    """HEADERS (§7.2.2): a QPACK-encoded field section."""

    data: bytes


@dataclass(frozen=True, slots=True)
class CancelPushFrame:
    """CANCEL_PUSH (§7.2.3)."""

    push_id: int


@dataclass(frozen=True, slots=True)
class SettingsFrame:
    """SETTINGS (§7.2.4): (identifier, value) pairs in wire order, unknown ones included."""

    settings: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class PushPromiseFrame:
    """PUSH_PROMISE (§7.2.5)."""

    push_id: int
    data: bytes


@dataclass(frozen=True, slots=True)
class GoawayFrame:
    """GOAWAY (§7.2.6): a client-initiated bidirectional stream ID or a push ID."""

    id: int


@dataclass(frozen=True, slots=True)
class MaxPushIdFrame:
    """MAX_PUSH_ID (§7.2.7)."""

    push_id: int


@dataclass(frozen=True, slots=True)
class UnknownFrame:
    """A frame of a type we do not know (or a reserved one); its payload was skipped (§9)."""

    frame_type: int
    length: int


Frame = (
    DataFrame
    | HeadersFrame
    | CancelPushFrame
    | SettingsFrame
    | PushPromiseFrame
    | GoawayFrame
    | MaxPushIdFrame
    | UnknownFrame
)


# -- encoding ---------------------------------------------------------------


def encode_frame_header(frame_type: int, length: int) -> bytes:
    """Type and Length fields of a frame (§7.1)."""
    return encode_varint(frame_type) + encode_varint(length)


def encode_settings(settings: tuple[tuple[int, int], ...]) -> bytes:
    """The payload of a SETTINGS frame (§7.2.4)."""
    return b"".join(encode_varint(k) + encode_varint(v) for k, v in settings)


def encode_frame(frame: Frame, *, unknown_payload: bytes = b"") -> bytes:
    """The wire form of ``frame``.

    For :class:`UnknownFrame` (used to send GREASE frames) the payload is
    ``unknown_payload`` and ``frame.length`` must match it.
    """
    payload: bytes
    if isinstance(frame, DataFrame):
        return encode_frame_header(FrameType.DATA, len(frame.data)) + frame.data
    if isinstance(frame, HeadersFrame):
        return encode_frame_header(FrameType.HEADERS, len(frame.data)) + frame.data
    if isinstance(frame, CancelPushFrame):
        ftype, payload = FrameType.CANCEL_PUSH, encode_varint(frame.push_id)
    elif isinstance(frame, SettingsFrame):
        ftype, payload = FrameType.SETTINGS, encode_settings(frame.settings)
    elif isinstance(frame, PushPromiseFrame):
        ftype, payload = FrameType.PUSH_PROMISE, encode_varint(frame.push_id) + frame.data
    elif isinstance(frame, GoawayFrame):
        ftype, payload = FrameType.GOAWAY, encode_varint(frame.id)
    elif isinstance(frame, MaxPushIdFrame):
        ftype, payload = FrameType.MAX_PUSH_ID, encode_varint(frame.push_id)
    else:
        if frame.length != len(unknown_payload):
            raise ValueError("UnknownFrame.length must equal len(unknown_payload)")
        return encode_frame_header(frame.frame_type, frame.length) + unknown_payload
    return encode_frame_header(ftype, len(payload)) + payload


# -- decoding ---------------------------------------------------------------


def pull_varint(data: bytes, pos: int) -> tuple[int, int]:
    """Read a varint at ``pos``: (value, new position), or (-1, pos) if ``data`` ends first."""
    end = len(data)
    if pos >= end:
        return -1, pos
    first = data[pos]
    size = 1 << (first >> 6)
    if pos + size > end:
        return -1, pos
    if size == 1:
        return first, pos + 1
    value = int.from_bytes(data[pos : pos + size], "big") & ((1 << (8 * size - 2)) - 1)
    return value, pos + size


def decode_settings(payload: bytes) -> tuple[tuple[int, int], ...]:
    """Parse and validate a SETTINGS payload (§7.2.4, §7.2.4.1, RFC 9297 §2.1.1)."""
    buf = Buffer(payload)
    seen: set[int] = set()
    out: list[tuple[int, int]] = []
    try:
        while not buf.eof():
            ident = buf.pull_varint()
            value = buf.pull_varint()
            if ident in seen:
                # §7.2.4: duplicates MAY be treated as H3_SETTINGS_ERROR; we do.
                raise H3Error(H3ErrorCode.H3_SETTINGS_ERROR, f"duplicate setting {ident:#x}")
            if ident in HTTP2_ONLY_SETTINGS:
                raise H3Error(H3ErrorCode.H3_SETTINGS_ERROR, f"HTTP/2 setting {ident:#x}")
            if ident in _BOOLEAN_SETTINGS and value > 1:
                raise H3Error(
                    H3ErrorCode.H3_SETTINGS_ERROR, f"setting {ident:#x} must be 0 or 1, got {value}"
                )
            seen.add(ident)
            out.append((ident, value))
    except BufferReadError as exc:
        raise H3Error(H3ErrorCode.H3_FRAME_ERROR, "truncated SETTINGS payload") from exc
    return tuple(out)


def decode_frame_payload(frame_type: int, payload: bytes) -> Frame:
    """Decode a complete payload of a buffered (non-DATA, known) frame type."""
    if frame_type == FrameType.HEADERS:
        return HeadersFrame(payload)
    if frame_type == FrameType.SETTINGS:
        return SettingsFrame(decode_settings(payload))
    buf = Buffer(payload)
    try:
        value = buf.pull_varint()
        if frame_type == FrameType.PUSH_PROMISE:
            return PushPromiseFrame(value, buf.pull_rest())
    except BufferReadError as exc:
        raise H3Error(H3ErrorCode.H3_FRAME_ERROR, f"truncated frame {frame_type:#x}") from exc
    if not buf.eof():
        # §7.1: extra bytes after the identified fields.
        raise H3Error(H3ErrorCode.H3_FRAME_ERROR, f"trailing bytes in frame {frame_type:#x}")
    if frame_type == FrameType.CANCEL_PUSH:
        return CancelPushFrame(value)
    if frame_type == FrameType.GOAWAY:
        return GoawayFrame(value)
    return MaxPushIdFrame(value)


_HEAD = 0  # between frames: reading Type and Length
_DATA = 1  # inside a DATA payload: passed through
_SKIP = 2  # inside an unknown frame: discarded
_BUFFER = 3  # inside a known control frame: accumulated up to a limit


class FrameParser:
    """Incremental HTTP/3 frame parser for one stream (§7.1).

    ``feed(chunk)`` returns the frames (and DATA pieces) completed by the chunk.
    Memory is bounded: a partial frame header is at most 16 bytes and a
    buffered payload at most ``max_field_section`` (HEADERS, PUSH_PROMISE) or
    ``max_settings`` bytes; larger frames raise H3_EXCESSIVE_LOAD.
    """

    __slots__ = ("_frame_type", "_head", "_max_field_section", "_max_settings", "_payload",
                 "_remaining", "_state")

    def __init__(
        self,
        max_field_section: int = DEFAULT_MAX_FIELD_SECTION_FRAME,
        max_settings: int = DEFAULT_MAX_SETTINGS_FRAME,
    ) -> None:
        self._state = _HEAD
        self._head = b""
        self._payload = bytearray()
        self._frame_type = 0
        self._remaining = 0
        self._max_field_section = max_field_section
        self._max_settings = max_settings

    @property
    def at_frame_boundary(self) -> bool:
        """True when no frame is partially received."""
        return self._state == _HEAD and not self._head

    def finish(self) -> None:
        """The stream ended cleanly: a truncated last frame is H3_FRAME_ERROR (§7.1)."""
        if not self.at_frame_boundary:
            raise H3Error(H3ErrorCode.H3_FRAME_ERROR, "stream ended inside a frame")

    def feed(self, data: bytes) -> list[Frame]:
        frames: list[Frame] = []
        if self._head:
            data = self._head + data
            self._head = b""
        pos = 0
        end = len(data)
        while pos < end:
            state = self._state
            if state == _HEAD:
                frame_type, p = pull_varint(data, pos)
                length = -1
                if frame_type >= 0:
                    length, p = pull_varint(data, p)
                if length < 0:
                    self._head = data[pos:]
                    break
                pos = p
                self._start_frame(frame_type, length, frames)
                continue
            take = min(self._remaining, end - pos)
            if state == _DATA:
                frames.append(DataFrame(data[pos : pos + take]))
            elif state == _BUFFER:
                self._payload += data[pos : pos + take]
            pos += take
            self._remaining -= take
            if self._remaining == 0:
                if state == _BUFFER:
                    payload = bytes(self._payload)
                    self._payload.clear()
                    frames.append(decode_frame_payload(self._frame_type, payload))
                self._state = _HEAD
        return frames

    def _start_frame(self, frame_type: int, length: int, frames: list[Frame]) -> None:
        self._frame_type = frame_type
        self._remaining = length
        if frame_type == FrameType.DATA:
            if length == 0:
                frames.append(DataFrame(b""))
            else:
                self._state = _DATA
            return
        if frame_type in HTTP2_ONLY_FRAME_TYPES:
            raise H3Error(H3ErrorCode.H3_FRAME_UNEXPECTED, f"HTTP/2 frame type {frame_type:#x}")
        if frame_type in _VARINT_FRAMES:
            # A single varint: 1..8 bytes; anything else cannot be self-consistent (§7.1).
            if not 1 <= length <= 8:
                raise H3Error(H3ErrorCode.H3_FRAME_ERROR, f"frame {frame_type:#x} length {length}")
            self._state = _BUFFER
            return
        if frame_type in (FrameType.HEADERS, FrameType.PUSH_PROMISE):
            limit = self._max_field_section
        elif frame_type == FrameType.SETTINGS:
            limit = self._max_settings
        else:
            # Unknown or reserved type (§7.2.8, §9): skip the payload unread.
            frames.append(UnknownFrame(frame_type, length))
            if length:
                self._state = _SKIP
            return
        if length > limit:
            raise H3Error(
                H3ErrorCode.H3_EXCESSIVE_LOAD,
                f"frame {frame_type:#x} of {length} bytes exceeds the limit of {limit}",
            )
        if length == 0:
            frames.append(decode_frame_payload(frame_type, b""))
            return
        self._state = _BUFFER
