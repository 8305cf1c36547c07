"""Frame encoding: frame values -> bytes, sizes, and the codepoint of a value.

Encoders refuse (ValueError) what a peer would reject as malformed: a
connection ID outside 1..20 bytes, Retire Prior To above the Sequence Number,
ACK ranges out of order, offsets past 2^62-1, stream counts past 2^60, path IDs
past 2^32-1 (RFC 9000 §19; multipath §"New Frames").

STREAM and DATAGRAM frames are written with a Length field; the packet
builder's fast paths (:func:`encode_stream_frame`, :func:`encode_datagram_frame`)
can omit it for the last frame of a packet.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tquic.wire.buffer import VARINT_MAX, Buffer, encode_varint, varint_size
from tquic.wire.frame_types import (
    CID_MAX_LENGTH,
    CID_MIN_LENGTH,
    MAX_ACK_DELAY_LIMIT_US,
    MAX_PATH_ID_LIMIT,
    MAX_STREAMS_LIMIT,
    PATH_DATA_SIZE,
    STATELESS_RESET_TOKEN_SIZE,
    STREAM_FIN_BIT,
    STREAM_LEN_BIT,
    STREAM_OFF_BIT,
    AckFrame,
    AckFrequencyFrame,
    ConnectionCloseFrame,
    CryptoFrame,
    DataBlockedFrame,
    DatagramFrame,
    Frame,
    FrameType,
    HandshakeDoneFrame,
    ImmediateAckFrame,
    MaxDataFrame,
    MaxPathIdFrame,
    MaxStreamDataFrame,
    MaxStreamsFrame,
    NewConnectionIdFrame,
    NewTokenFrame,
    PaddingFrame,
    PathAbandonFrame,
    PathAckFrame,
    PathChallengeFrame,
    PathCidsBlockedFrame,
    PathNewConnectionIdFrame,
    PathResponseFrame,
    PathRetireConnectionIdFrame,
    PathsBlockedFrame,
    PathStatusAvailableFrame,
    PathStatusBackupFrame,
    PingFrame,
    ResetStreamFrame,
    RetireConnectionIdFrame,
    StopSendingFrame,
    StreamDataBlockedFrame,
    StreamFrame,
    StreamsBlockedFrame,
)


def _check_ranges(ranges: tuple[tuple[int, int], ...]) -> None:
    if not ranges:
        raise ValueError("an ACK frame needs at least one range")


def _ack_body(ranges: tuple[tuple[int, int], ...], ack_delay: int,
              ecn: tuple[int, int, int] | None) -> bytes:
    # Built whole before anything is written, so a refused frame leaves the
    # packet buffer untouched.
    _check_ranges(ranges)
    smallest, largest = ranges[0]
    if smallest > largest or smallest < 0:
        raise ValueError(f"bad ACK range {ranges[0]}")
    parts = [encode_varint(largest), encode_varint(ack_delay),
             encode_varint(len(ranges) - 1), encode_varint(largest - smallest)]
    for range_smallest, range_largest in ranges[1:]:
        gap = smallest - range_largest - 2
        if gap < 0 or range_smallest > range_largest or range_smallest < 0:
            raise ValueError("ACK ranges must be descending, disjoint and non-adjacent")
        parts.append(encode_varint(gap))
        parts.append(encode_varint(range_largest - range_smallest))
        smallest = range_smallest
    if ecn is not None:
        parts.extend(encode_varint(count) for count in ecn)
    return b"".join(parts)


def _encode_ack(buf: Buffer, frame: AckFrame) -> None:
    body = _ack_body(frame.ranges, frame.ack_delay, frame.ecn)
    buf.push_uint8(FrameType.ACK if frame.ecn is None else FrameType.ACK_ECN)
    buf.push_bytes(body)


def _encode_path_ack(buf: Buffer, frame: PathAckFrame) -> None:
    _check_limit(frame.path_id, MAX_PATH_ID_LIMIT, "path ID")
    body = encode_varint(frame.path_id) + _ack_body(frame.ranges, frame.ack_delay, frame.ecn)
    buf.push_uint8(FrameType.PATH_ACK if frame.ecn is None else FrameType.PATH_ACK_ECN)
    buf.push_bytes(body)


_STREAM = int(FrameType.STREAM)
_STREAM_FIN = _STREAM | STREAM_FIN_BIT


def encode_stream_frame(buf: Buffer, stream_id: int, offset: int, data: bytes, fin: bool,
                        *, with_length: bool = True) -> None:
    """Write a STREAM frame without building a StreamFrame (the packet builder's path).

    ``with_length=False`` omits the Length field; the frame then runs to the
    end of the packet, so it must be the packet's last frame (RFC 9000 §19.8).
    """
    if offset + len(data) > VARINT_MAX:
        raise ValueError("stream offset + length exceeds 2^62-1")
    frame_type = _STREAM_FIN if fin else _STREAM
    head = encode_varint(stream_id)
    if offset:
        frame_type |= STREAM_OFF_BIT
        head += encode_varint(offset)
    if with_length:
        frame_type |= STREAM_LEN_BIT
        head += encode_varint(len(data))
    buf.push_bytes(b"".join((bytes((frame_type,)), head, data)))


def _encode_stream(buf: Buffer, frame: StreamFrame) -> None:
    encode_stream_frame(buf, frame.stream_id, frame.offset, frame.data, frame.fin)


def encode_datagram_frame(buf: Buffer, data: bytes, *, with_length: bool = True) -> None:
    """Write a DATAGRAM frame (0x31, or 0x30 running to the end of the packet)."""
    if with_length:
        buf.push_bytes(b"".join((b"\x31", encode_varint(len(data)), data)))
    else:
        buf.push_bytes(b"\x30" + data)


def _encode_datagram(buf: Buffer, frame: DatagramFrame) -> None:
    encode_datagram_frame(buf, frame.data)


def _encode_crypto(buf: Buffer, frame: CryptoFrame) -> None:
    if frame.offset + len(frame.data) > VARINT_MAX:
        raise ValueError("crypto offset + length exceeds 2^62-1")
    buf.push_bytes(b"".join((b"\x06", encode_varint(frame.offset),
                             encode_varint(len(frame.data)), frame.data)))


def _encode_padding(buf: Buffer, frame: PaddingFrame) -> None:
    if frame.length < 1:
        raise ValueError("PADDING length must be at least 1")
    buf.push_bytes(bytes(frame.length))


def _type_only(frame_type: int) -> Callable[[Buffer, Any], None]:
    def encode(buf: Buffer, frame: Any) -> None:
        buf.push_varint(frame_type)
    return encode


def _varints(frame_type: int, *fields: str) -> Callable[[Buffer, Any], None]:
    """An encoder for a frame that is its type followed by varint fields."""
    def encode(buf: Buffer, frame: Any) -> None:
        buf.push_bytes(encode_varint(frame_type)
                       + b"".join(encode_varint(getattr(frame, name)) for name in fields))
    return encode


def _check_limit(value: int, limit: int, what: str) -> None:
    if value > limit:
        raise ValueError(f"{what} {value} exceeds {limit}")


def _encode_max_streams(buf: Buffer, frame: MaxStreamsFrame) -> None:
    _check_limit(frame.maximum_streams, MAX_STREAMS_LIMIT, "stream count")
    buf.push_uint8(FrameType.MAX_STREAMS_BIDI if frame.bidirectional
                   else FrameType.MAX_STREAMS_UNI)
    buf.push_varint(frame.maximum_streams)


def _encode_streams_blocked(buf: Buffer, frame: StreamsBlockedFrame) -> None:
    _check_limit(frame.maximum_streams, MAX_STREAMS_LIMIT, "stream count")
    buf.push_uint8(FrameType.STREAMS_BLOCKED_BIDI if frame.bidirectional
                   else FrameType.STREAMS_BLOCKED_UNI)
    buf.push_varint(frame.maximum_streams)


def _new_cid_body(sequence_number: int, retire_prior_to: int, connection_id: bytes,
                  token: bytes) -> bytes:
    if not CID_MIN_LENGTH <= len(connection_id) <= CID_MAX_LENGTH:
        raise ValueError(f"connection ID length {len(connection_id)} outside 1..20")
    if retire_prior_to > sequence_number:
        raise ValueError("retire_prior_to exceeds sequence_number")
    if len(token) != STATELESS_RESET_TOKEN_SIZE:
        raise ValueError("stateless reset token must be 16 bytes")
    return b"".join((encode_varint(sequence_number), encode_varint(retire_prior_to),
                     bytes((len(connection_id),)), connection_id, token))


def _encode_new_connection_id(buf: Buffer, frame: NewConnectionIdFrame) -> None:
    body = _new_cid_body(frame.sequence_number, frame.retire_prior_to,
                         frame.connection_id, frame.stateless_reset_token)
    buf.push_uint8(FrameType.NEW_CONNECTION_ID)
    buf.push_bytes(body)


def _encode_path_new_connection_id(buf: Buffer, frame: PathNewConnectionIdFrame) -> None:
    _check_limit(frame.path_id, MAX_PATH_ID_LIMIT, "path ID")
    body = _new_cid_body(frame.sequence_number, frame.retire_prior_to,
                         frame.connection_id, frame.stateless_reset_token)
    buf.push_bytes(encode_varint(FrameType.PATH_NEW_CONNECTION_ID)
                   + encode_varint(frame.path_id) + body)


def _encode_new_token(buf: Buffer, frame: NewTokenFrame) -> None:
    if not frame.token:
        raise ValueError("NEW_TOKEN token must not be empty")
    buf.push_uint8(FrameType.NEW_TOKEN)
    buf.push_varint_bytes(frame.token)


def _path_data(frame_type: int) -> Callable[[Buffer, Any], None]:
    def encode(buf: Buffer, frame: Any) -> None:
        if len(frame.data) != PATH_DATA_SIZE:
            raise ValueError("PATH_CHALLENGE / PATH_RESPONSE data must be 8 bytes")
        buf.push_uint8(frame_type)
        buf.push_bytes(frame.data)
    return encode


def _encode_connection_close(buf: Buffer, frame: ConnectionCloseFrame) -> None:
    if frame.is_application:
        head = b"\x1d" + encode_varint(frame.error_code)
    else:
        # Frame Type 0 when the offending type is unknown (RFC 9000 §19.19).
        head = b"\x1c" + encode_varint(frame.error_code) + encode_varint(frame.frame_type or 0)
    buf.push_bytes(head + encode_varint(len(frame.reason)) + frame.reason)


_ENCODE_ACK_FREQUENCY_FIELDS = _varints(
    FrameType.ACK_FREQUENCY, "sequence_number", "ack_eliciting_threshold",
    "requested_max_ack_delay", "reordering_threshold",
)


def _encode_ack_frequency(buf: Buffer, frame: AckFrequencyFrame) -> None:
    _check_limit(frame.requested_max_ack_delay, MAX_ACK_DELAY_LIMIT_US - 1,
                 "requested_max_ack_delay")
    _ENCODE_ACK_FREQUENCY_FIELDS(buf, frame)


def _path_varints(frame_type: int, *fields: str) -> Callable[[Buffer, Any], None]:
    """Encoder for a multipath frame whose first field is a 32-bit-bounded path ID."""
    encode_fields = _varints(frame_type, *fields)

    def encode(buf: Buffer, frame: Any) -> None:
        _check_limit(getattr(frame, fields[0]), MAX_PATH_ID_LIMIT, fields[0])
        encode_fields(buf, frame)
    return encode


_ENCODERS: dict[type, Callable[[Buffer, Any], None]] = {
    PaddingFrame: _encode_padding,
    PingFrame: _type_only(FrameType.PING),
    AckFrame: _encode_ack,
    ResetStreamFrame: _varints(FrameType.RESET_STREAM, "stream_id",
                               "application_protocol_error_code", "final_size"),
    StopSendingFrame: _varints(FrameType.STOP_SENDING, "stream_id",
                               "application_protocol_error_code"),
    CryptoFrame: _encode_crypto,
    NewTokenFrame: _encode_new_token,
    StreamFrame: _encode_stream,
    MaxDataFrame: _varints(FrameType.MAX_DATA, "maximum_data"),
    MaxStreamDataFrame: _varints(FrameType.MAX_STREAM_DATA, "stream_id", "maximum_stream_data"),
    MaxStreamsFrame: _encode_max_streams,
    DataBlockedFrame: _varints(FrameType.DATA_BLOCKED, "maximum_data"),
    StreamDataBlockedFrame: _varints(FrameType.STREAM_DATA_BLOCKED, "stream_id",
                                     "maximum_stream_data"),
    StreamsBlockedFrame: _encode_streams_blocked,
    NewConnectionIdFrame: _encode_new_connection_id,
    RetireConnectionIdFrame: _varints(FrameType.RETIRE_CONNECTION_ID, "sequence_number"),
    PathChallengeFrame: _path_data(FrameType.PATH_CHALLENGE),
    PathResponseFrame: _path_data(FrameType.PATH_RESPONSE),
    ConnectionCloseFrame: _encode_connection_close,
    HandshakeDoneFrame: _type_only(FrameType.HANDSHAKE_DONE),
    ImmediateAckFrame: _type_only(FrameType.IMMEDIATE_ACK),
    AckFrequencyFrame: _encode_ack_frequency,
    DatagramFrame: _encode_datagram,
    PathAckFrame: _encode_path_ack,
    PathAbandonFrame: _path_varints(FrameType.PATH_ABANDON, "path_id", "error_code"),
    PathStatusBackupFrame: _path_varints(FrameType.PATH_STATUS_BACKUP, "path_id",
                                         "path_status_sequence_number"),
    PathStatusAvailableFrame: _path_varints(FrameType.PATH_STATUS_AVAILABLE, "path_id",
                                            "path_status_sequence_number"),
    PathNewConnectionIdFrame: _encode_path_new_connection_id,
    PathRetireConnectionIdFrame: _path_varints(FrameType.PATH_RETIRE_CONNECTION_ID,
                                               "path_id", "sequence_number"),
    MaxPathIdFrame: _path_varints(FrameType.MAX_PATH_ID, "maximum_path_id"),
    PathsBlockedFrame: _path_varints(FrameType.PATHS_BLOCKED, "maximum_path_id"),
    PathCidsBlockedFrame: _path_varints(FrameType.PATH_CIDS_BLOCKED, "path_id",
                                        "next_sequence_number"),
}


# Codepoint of each frame class when encoded by encode_frame (the classes that
# span several codepoints are resolved in frame_type_of).
_TYPE_OF_CLASS: dict[type, int] = {
    PaddingFrame: FrameType.PADDING, PingFrame: FrameType.PING,
    ResetStreamFrame: FrameType.RESET_STREAM, StopSendingFrame: FrameType.STOP_SENDING,
    CryptoFrame: FrameType.CRYPTO, NewTokenFrame: FrameType.NEW_TOKEN,
    MaxDataFrame: FrameType.MAX_DATA, MaxStreamDataFrame: FrameType.MAX_STREAM_DATA,
    DataBlockedFrame: FrameType.DATA_BLOCKED,
    StreamDataBlockedFrame: FrameType.STREAM_DATA_BLOCKED,
    NewConnectionIdFrame: FrameType.NEW_CONNECTION_ID,
    RetireConnectionIdFrame: FrameType.RETIRE_CONNECTION_ID,
    PathChallengeFrame: FrameType.PATH_CHALLENGE, PathResponseFrame: FrameType.PATH_RESPONSE,
    HandshakeDoneFrame: FrameType.HANDSHAKE_DONE, ImmediateAckFrame: FrameType.IMMEDIATE_ACK,
    AckFrequencyFrame: FrameType.ACK_FREQUENCY, DatagramFrame: FrameType.DATAGRAM_LEN,
    PathAbandonFrame: FrameType.PATH_ABANDON, PathStatusBackupFrame: FrameType.PATH_STATUS_BACKUP,
    PathStatusAvailableFrame: FrameType.PATH_STATUS_AVAILABLE,
    PathNewConnectionIdFrame: FrameType.PATH_NEW_CONNECTION_ID,
    PathRetireConnectionIdFrame: FrameType.PATH_RETIRE_CONNECTION_ID,
    MaxPathIdFrame: FrameType.MAX_PATH_ID, PathsBlockedFrame: FrameType.PATHS_BLOCKED,
    PathCidsBlockedFrame: FrameType.PATH_CIDS_BLOCKED,
}


def frame_type_of(frame: Frame) -> int:
    """The codepoint :func:`encode_frame` writes for ``frame`` (for frame_allowed,
    CONNECTION_CLOSE's Frame Type field and qlog)."""
    if isinstance(frame, StreamFrame):
        frame_type = FrameType.STREAM | STREAM_LEN_BIT
        if frame.offset:
            frame_type |= STREAM_OFF_BIT
        if frame.fin:
            frame_type |= STREAM_FIN_BIT
        return frame_type
    if isinstance(frame, AckFrame):
        return FrameType.ACK if frame.ecn is None else FrameType.ACK_ECN
    if isinstance(frame, PathAckFrame):
        return FrameType.PATH_ACK if frame.ecn is None else FrameType.PATH_ACK_ECN
    if isinstance(frame, MaxStreamsFrame):
        return FrameType.MAX_STREAMS_BIDI if frame.bidirectional else FrameType.MAX_STREAMS_UNI
    if isinstance(frame, StreamsBlockedFrame):
        return (FrameType.STREAMS_BLOCKED_BIDI if frame.bidirectional
                else FrameType.STREAMS_BLOCKED_UNI)
    if isinstance(frame, ConnectionCloseFrame):
        return FrameType.APPLICATION_CLOSE if frame.is_application else FrameType.CONNECTION_CLOSE
    return _TYPE_OF_CLASS[type(frame)]


def encode_frame(buf: Buffer, frame: Frame) -> None:
    """Append ``frame`` to ``buf``.  Raises ValueError for a frame that cannot be
    encoded validly (e.g. a 21-byte connection ID, ACK ranges out of order)."""
    encoder = _ENCODERS.get(type(frame))
    if encoder is None:
        raise TypeError(f"not a frame: {frame!r}")
    encoder(buf, frame)


def encode_frames(frames: list[Frame] | tuple[Frame, ...]) -> bytes:
    """The payload made of ``frames`` (a convenience for tests and small packets)."""
    buf = Buffer()
    for frame in frames:
        encode_frame(buf, frame)
    return buf.data


def stream_frame_overhead(stream_id: int, offset: int, length: int) -> int:
    """Bytes a STREAM frame adds around ``length`` bytes of data (Length field included)."""
    size = 1 + varint_size(stream_id) + varint_size(length)
    if offset:
        size += varint_size(offset)
    return size


def stream_data_capacity(stream_id: int, offset: int, space: int) -> int:
    """The most stream data a STREAM frame with a Length field can carry in ``space`` bytes
    (0 when not even an empty frame fits)."""
    # Called for every packet a sender fills: the varint sizes (RFC 9000 §16) are
    # written out for the common small values.
    fixed = 2 if stream_id < 0x40 else 3 if stream_id < 0x4000 else 1 + varint_size(stream_id)
    if offset:
        fixed += 4 if 0x4000 <= offset < 0x40000000 else varint_size(offset)
    room = space - fixed
    # The Length field takes 1, 2, 4 or 8 bytes, whichever holds room - its own size.
    if room <= 0x40:
        return room - 1 if room > 1 else 0
    if room <= 0x4001:
        return room - 2
    if room <= 0x40000003:
        return room - 4
    return room - 8


def frame_size(frame: Frame) -> int:
    """Encoded size of ``frame`` in bytes (as :func:`encode_frame` writes it)."""
    if isinstance(frame, StreamFrame):
        length = len(frame.data)
        return stream_frame_overhead(frame.stream_id, frame.offset, length) + length
    if isinstance(frame, CryptoFrame):
        length = len(frame.data)
        return 1 + varint_size(frame.offset) + varint_size(length) + length
    if isinstance(frame, DatagramFrame):
        length = len(frame.data)
        return 1 + varint_size(length) + length
    if isinstance(frame, PaddingFrame):
        return frame.length
    scratch = Buffer()
    encode_frame(scratch, frame)
    return len(scratch)
