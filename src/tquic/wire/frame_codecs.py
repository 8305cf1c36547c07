"""Frame codecs: bytes <-> frame values, one parser per codepoint.

``parse_frames`` is on the per-packet hot path: one dict lookup per frame, no
per-byte loops (a PADDING run is measured with one regex search), and data
fields are single slices of the payload.

Decoding rules enforced here (the ones checkable without connection state):

- unknown frame type → FRAME_ENCODING_ERROR (RFC 9000 §12.4);
- a frame type in a longer varint than necessary → PROTOCOL_VIOLATION.  RFC
  9000 §12.4 says an endpoint MAY do so; we do, because accepting two
  spellings of one type only widens the attack surface;
- a packet with no frames → PROTOCOL_VIOLATION (RFC 9000 §12.4);
- truncated fields, lengths past the payload → FRAME_ENCODING_ERROR;
- ACK / PATH_ACK ranges below packet number 0 → FRAME_ENCODING_ERROR (§19.3.1);
- STREAM / CRYPTO offset + length above 2^62-1 → FRAME_ENCODING_ERROR (§19.6, §19.8);
- empty NEW_TOKEN → FRAME_ENCODING_ERROR (§19.7);
- MAX_STREAMS / STREAMS_BLOCKED above 2^60 → FRAME_ENCODING_ERROR (§4.6, §19.11, §19.14);
- (PATH_)NEW_CONNECTION_ID length outside 1..20 or Retire Prior To above the
  Sequence Number → FRAME_ENCODING_ERROR (§19.15);
- ACK_FREQUENCY Requested Max Ack Delay of 2^14 ms or more → PROTOCOL_VIOLATION
  (ack-frequency §4);
- a multipath path ID or Maximum Path Identifier above 2^32-1 → PROTOCOL_VIOLATION
  (multipath §"New Frames", MAX_PATH_ID: no allowed limit can be that high).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, cast

from tquic.wire.buffer import VARINT_MAX, Buffer, encode_varint, varint_size
from tquic.wire.errors import BufferReadError, QuicDecodeError, TransportErrorCode
from tquic.wire.frame_types import (
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

FRAME_ENCODING_ERROR = TransportErrorCode.FRAME_ENCODING_ERROR
PROTOCOL_VIOLATION = TransportErrorCode.PROTOCOL_VIOLATION

MAX_STREAMS_LIMIT = 1 << 60  # RFC 9000 §4.6
MAX_PATH_ID_LIMIT = (1 << 32) - 1  # multipath: the path ID is 32 bits in the nonce
MAX_ACK_DELAY_LIMIT_US = (1 << 14) * 1000  # RFC 9000 §18.2 max_ack_delay < 2^14 ms
CID_MIN, CID_MAX = 1, 20  # RFC 9000 §19.15
STATELESS_RESET_TOKEN_SIZE = 16
PATH_DATA_SIZE = 8  # RFC 9000 §19.17

_NONZERO = re.compile(b"[^\x00]")


def _error(code: int, reason: str, frame_type: int) -> QuicDecodeError:
    return QuicDecodeError(code, reason, frame_type)


# --- parsers: (buffer positioned after the type, type) -> frame -------------------

Parser = Callable[[Buffer, int], Frame]

# The hot frames are built by writing their slots directly: a frozen dataclass
# __init__ pays object.__setattr__ per field (see packet._slot_setter).
_new_object = object.__new__


def _slot_setter(cls: type, name: str) -> Callable[[object, object], None]:
    return cast(Callable[[object, object], None], cls.__dict__[name].__set__)


_set_stream_id, _set_stream_offset, _set_stream_data, _set_stream_fin = (
    _slot_setter(StreamFrame, name) for name in ("stream_id", "offset", "data", "fin"))
_set_crypto_offset, _set_crypto_data = (
    _slot_setter(CryptoFrame, name) for name in ("offset", "data"))
_set_ack_ranges, _set_ack_delay, _set_ack_ecn = (
    _slot_setter(AckFrame, name) for name in ("ranges", "ack_delay", "ecn"))

_PING = PingFrame()
_HANDSHAKE_DONE = HandshakeDoneFrame()
_IMMEDIATE_ACK = ImmediateAckFrame()


def _pull_ack_body(
    buf: Buffer, frame_type: int
) -> tuple[tuple[tuple[int, int], ...], int, tuple[int, int, int] | None]:
    # RFC 9000 §19.3: Largest Acknowledged, ACK Delay, ACK Range Count, First
    # ACK Range, then (Gap, ACK Range Length) pairs, then ECN counts for odd types.
    pull = buf.pull_varint
    largest = pull()
    ack_delay = pull()
    count = pull()
    if count > buf.remaining // 2:
        # Each range takes at least two bytes; refuse before looping.
        raise _error(FRAME_ENCODING_ERROR, f"ACK range count {count} exceeds the frame",
                     frame_type)
    smallest = largest - pull()
    if smallest < 0:
        raise _error(FRAME_ENCODING_ERROR, "first ACK range below packet number 0", frame_type)
    ranges = [(smallest, largest)]
    append = ranges.append
    for _ in range(count):
        largest = smallest - pull() - 2
        smallest = largest - pull()
        if smallest < 0:
            raise _error(FRAME_ENCODING_ERROR, "ACK range below packet number 0", frame_type)
        append((smallest, largest))
    ecn = (pull(), pull(), pull()) if frame_type & 1 else None
    return tuple(ranges), ack_delay, ecn


def _parse_ack(buf: Buffer, frame_type: int) -> Frame:
    ranges, ack_delay, ecn = _pull_ack_body(buf, frame_type)
    frame = _new_object(AckFrame)
    _set_ack_ranges(frame, ranges)
    _set_ack_delay(frame, ack_delay)
    _set_ack_ecn(frame, ecn)
    return frame


def _parse_path_ack(buf: Buffer, frame_type: int) -> Frame:
    path_id = _pull_path_id(buf, frame_type)
    ranges, ack_delay, ecn = _pull_ack_body(buf, frame_type)
    return PathAckFrame(path_id, ranges, ack_delay, ecn)


def _parse_stream(buf: Buffer, frame_type: int) -> Frame:
    stream_id = buf.pull_varint()
    offset = buf.pull_varint() if frame_type & STREAM_OFF_BIT else 0
    data = buf.pull_bytes(buf.pull_varint()) if frame_type & STREAM_LEN_BIT else buf.pull_rest()
    if offset + len(data) > VARINT_MAX:
        raise _error(FRAME_ENCODING_ERROR, "stream offset + length exceeds 2^62-1", frame_type)
    frame = _new_object(StreamFrame)
    _set_stream_id(frame, stream_id)
    _set_stream_offset(frame, offset)
    _set_stream_data(frame, data)
    _set_stream_fin(frame, frame_type & STREAM_FIN_BIT == STREAM_FIN_BIT)
    return frame


def _parse_crypto(buf: Buffer, frame_type: int) -> Frame:
    offset = buf.pull_varint()
    data = buf.pull_bytes(buf.pull_varint())
    if offset + len(data) > VARINT_MAX:
        raise _error(FRAME_ENCODING_ERROR, "crypto offset + length exceeds 2^62-1", frame_type)
    frame = _new_object(CryptoFrame)
    _set_crypto_offset(frame, offset)
    _set_crypto_data(frame, data)
    return frame


def _parse_datagram(buf: Buffer, frame_type: int) -> Frame:
    if frame_type & 1:
        return DatagramFrame(buf.pull_bytes(buf.pull_varint()))
    return DatagramFrame(buf.pull_rest())


def _parse_ping(buf: Buffer, frame_type: int) -> Frame:
    return _PING


def _parse_handshake_done(buf: Buffer, frame_type: int) -> Frame:
    return _HANDSHAKE_DONE


def _parse_immediate_ack(buf: Buffer, frame_type: int) -> Frame:
    return _IMMEDIATE_ACK


def _parse_reset_stream(buf: Buffer, frame_type: int) -> Frame:
    pull = buf.pull_varint
    return ResetStreamFrame(pull(), pull(), pull())


def _parse_stop_sending(buf: Buffer, frame_type: int) -> Frame:
    pull = buf.pull_varint
    return StopSendingFrame(pull(), pull())


def _parse_new_token(buf: Buffer, frame_type: int) -> Frame:
    token = buf.pull_bytes(buf.pull_varint())
    if not token:
        raise _error(FRAME_ENCODING_ERROR, "NEW_TOKEN with an empty token", frame_type)
    return NewTokenFrame(token)


def _parse_max_data(buf: Buffer, frame_type: int) -> Frame:
    return MaxDataFrame(buf.pull_varint())


def _parse_max_stream_data(buf: Buffer, frame_type: int) -> Frame:
    pull = buf.pull_varint
    return MaxStreamDataFrame(pull(), pull())


def _pull_stream_count(buf: Buffer, frame_type: int) -> int:
    value = buf.pull_varint()
    if value > MAX_STREAMS_LIMIT:
        raise _error(FRAME_ENCODING_ERROR, f"stream count {value} exceeds 2^60", frame_type)
    return value


def _parse_max_streams(buf: Buffer, frame_type: int) -> Frame:
    return MaxStreamsFrame(_pull_stream_count(buf, frame_type),
                           frame_type == FrameType.MAX_STREAMS_BIDI)


def _parse_data_blocked(buf: Buffer, frame_type: int) -> Frame:
    return DataBlockedFrame(buf.pull_varint())


def _parse_stream_data_blocked(buf: Buffer, frame_type: int) -> Frame:
    pull = buf.pull_varint
    return StreamDataBlockedFrame(pull(), pull())


def _parse_streams_blocked(buf: Buffer, frame_type: int) -> Frame:
    return StreamsBlockedFrame(_pull_stream_count(buf, frame_type),
                               frame_type == FrameType.STREAMS_BLOCKED_BIDI)


def _pull_new_cid_body(buf: Buffer, frame_type: int) -> tuple[int, int, bytes, bytes]:
    # RFC 9000 §19.15: Sequence Number, Retire Prior To, Length (8), CID, token (128).
    sequence_number = buf.pull_varint()
    retire_prior_to = buf.pull_varint()
    length = buf.pull_uint8()
    if not CID_MIN <= length <= CID_MAX:
        raise _error(FRAME_ENCODING_ERROR, f"connection ID length {length} outside 1..20",
                     frame_type)
    if retire_prior_to > sequence_number:
        raise _error(FRAME_ENCODING_ERROR, "Retire Prior To exceeds the Sequence Number",
                     frame_type)
    cid = buf.pull_bytes(length)
    return sequence_number, retire_prior_to, cid, buf.pull_bytes(STATELESS_RESET_TOKEN_SIZE)


def _parse_new_connection_id(buf: Buffer, frame_type: int) -> Frame:
    return NewConnectionIdFrame(*_pull_new_cid_body(buf, frame_type))


def _parse_retire_connection_id(buf: Buffer, frame_type: int) -> Frame:
    return RetireConnectionIdFrame(buf.pull_varint())


def _parse_path_challenge(buf: Buffer, frame_type: int) -> Frame:
    return PathChallengeFrame(buf.pull_bytes(PATH_DATA_SIZE))


def _parse_path_response(buf: Buffer, frame_type: int) -> Frame:
    return PathResponseFrame(buf.pull_bytes(PATH_DATA_SIZE))


def _parse_connection_close(buf: Buffer, frame_type: int) -> Frame:
    error_code = buf.pull_varint()
    if frame_type == FrameType.CONNECTION_CLOSE:
        offending: int | None = buf.pull_varint()
        is_application = False
    else:
        offending = None
        is_application = True
    reason = buf.pull_bytes(buf.pull_varint())
    return ConnectionCloseFrame(error_code, offending, reason, is_application)


def _parse_ack_frequency(buf: Buffer, frame_type: int) -> Frame:
    pull = buf.pull_varint
    frame = AckFrequencyFrame(pull(), pull(), pull(), pull())
    if frame.requested_max_ack_delay >= MAX_ACK_DELAY_LIMIT_US:
        raise _error(PROTOCOL_VIOLATION, "Requested Max Ack Delay of 2^14 ms or more",
                     frame_type)
    return frame


def _pull_path_id(buf: Buffer, frame_type: int) -> int:
    path_id = buf.pull_varint()
    if path_id > MAX_PATH_ID_LIMIT:
        raise _error(PROTOCOL_VIOLATION, f"path ID {path_id} exceeds 2^32-1", frame_type)
    return path_id


def _parse_path_abandon(buf: Buffer, frame_type: int) -> Frame:
    return PathAbandonFrame(_pull_path_id(buf, frame_type), buf.pull_varint())


def _parse_path_status_backup(buf: Buffer, frame_type: int) -> Frame:
    return PathStatusBackupFrame(_pull_path_id(buf, frame_type), buf.pull_varint())


def _parse_path_status_available(buf: Buffer, frame_type: int) -> Frame:
    return PathStatusAvailableFrame(_pull_path_id(buf, frame_type), buf.pull_varint())


def _parse_path_new_connection_id(buf: Buffer, frame_type: int) -> Frame:
    path_id = _pull_path_id(buf, frame_type)
    return PathNewConnectionIdFrame(path_id, *_pull_new_cid_body(buf, frame_type))


def _parse_path_retire_connection_id(buf: Buffer, frame_type: int) -> Frame:
    return PathRetireConnectionIdFrame(_pull_path_id(buf, frame_type), buf.pull_varint())


def _parse_max_path_id(buf: Buffer, frame_type: int) -> Frame:
    return MaxPathIdFrame(_pull_path_id(buf, frame_type))


def _parse_paths_blocked(buf: Buffer, frame_type: int) -> Frame:
    return PathsBlockedFrame(_pull_path_id(buf, frame_type))


def _parse_path_cids_blocked(buf: Buffer, frame_type: int) -> Frame:
    return PathCidsBlockedFrame(_pull_path_id(buf, frame_type), buf.pull_varint())


# The codec table: codepoint -> parser.  PADDING is handled inline by parse_frames.
_PARSERS: dict[int, Parser] = {
    FrameType.PING: _parse_ping,
    FrameType.ACK: _parse_ack,
    FrameType.ACK_ECN: _parse_ack,
    FrameType.RESET_STREAM: _parse_reset_stream,
    FrameType.STOP_SENDING: _parse_stop_sending,
    FrameType.CRYPTO: _parse_crypto,
    FrameType.NEW_TOKEN: _parse_new_token,
    **{t: _parse_stream for t in range(FrameType.STREAM, FrameType.STREAM_OFF_LEN_FIN + 1)},
    FrameType.MAX_DATA: _parse_max_data,
    FrameType.MAX_STREAM_DATA: _parse_max_stream_data,
    FrameType.MAX_STREAMS_BIDI: _parse_max_streams,
    FrameType.MAX_STREAMS_UNI: _parse_max_streams,
    FrameType.DATA_BLOCKED: _parse_data_blocked,
    FrameType.STREAM_DATA_BLOCKED: _parse_stream_data_blocked,
    FrameType.STREAMS_BLOCKED_BIDI: _parse_streams_blocked,
    FrameType.STREAMS_BLOCKED_UNI: _parse_streams_blocked,
    FrameType.NEW_CONNECTION_ID: _parse_new_connection_id,
    FrameType.RETIRE_CONNECTION_ID: _parse_retire_connection_id,
    FrameType.PATH_CHALLENGE: _parse_path_challenge,
    FrameType.PATH_RESPONSE: _parse_path_response,
    FrameType.CONNECTION_CLOSE: _parse_connection_close,
    FrameType.APPLICATION_CLOSE: _parse_connection_close,
    FrameType.HANDSHAKE_DONE: _parse_handshake_done,
    FrameType.IMMEDIATE_ACK: _parse_immediate_ack,
    FrameType.ACK_FREQUENCY: _parse_ack_frequency,
    FrameType.DATAGRAM: _parse_datagram,
    FrameType.DATAGRAM_LEN: _parse_datagram,
    FrameType.PATH_ACK: _parse_path_ack,
    FrameType.PATH_ACK_ECN: _parse_path_ack,
    FrameType.PATH_ABANDON: _parse_path_abandon,
    FrameType.PATH_STATUS_BACKUP: _parse_path_status_backup,
    FrameType.PATH_STATUS_AVAILABLE: _parse_path_status_available,
    FrameType.PATH_NEW_CONNECTION_ID: _parse_path_new_connection_id,
    FrameType.PATH_RETIRE_CONNECTION_ID: _parse_path_retire_connection_id,
    FrameType.MAX_PATH_ID: _parse_max_path_id,
    FrameType.PATHS_BLOCKED: _parse_paths_blocked,
    FrameType.PATH_CIDS_BLOCKED: _parse_path_cids_blocked,
}
# Plain int keys, so the per-frame lookup compares ints, not enum members.
_PARSERS = {int(k): v for k, v in _PARSERS.items()}


def parse_frames(payload: bytes) -> list[Frame]:
    """Every frame in a decrypted packet payload, in order.

    Raises QuicDecodeError (FRAME_ENCODING_ERROR or PROTOCOL_VIOLATION, with
    ``frame_type`` set when a frame is at fault); see the module docstring.
    """
    end = len(payload)
    if not end:
        raise QuicDecodeError(PROTOCOL_VIOLATION, "packet contains no frames")
    buf = Buffer(payload)
    frames: list[Frame] = []
    append = frames.append
    parsers = _PARSERS
    pos = 0
    frame_type = 0
    try:
        while pos < end:
            first = payload[pos]
            if first == 0:
                # A run of PADDING: one regex search, not a byte loop.
                match = _NONZERO.search(payload, pos)
                stop = match.start() if match is not None else end
                append(PaddingFrame(stop - pos))
                pos = stop
                buf.seek(pos)
                continue
            frame_type = buf.pull_varint()
            if first >= 0x40 and buf.tell() - pos != varint_size(frame_type):
                raise _error(PROTOCOL_VIOLATION, "frame type not minimally encoded", frame_type)
            parser = parsers.get(frame_type)
            if parser is None:
                raise _error(FRAME_ENCODING_ERROR, f"unknown frame type {frame_type:#x}",
                             frame_type)
            append(parser(buf, frame_type))
            pos = buf.tell()
    except BufferReadError as exc:
        raise _error(FRAME_ENCODING_ERROR, f"truncated frame: {exc.reason}",
                     frame_type) from None
    return frames


# --- encoders -------------------------------------------------------------------


def _check_ranges(ranges: tuple[tuple[int, int], ...]) -> None:
    if not ranges:
        raise ValueError("an ACK frame needs at least one range")


def _push_ack_body(buf: Buffer, ranges: tuple[tuple[int, int], ...], ack_delay: int,
                   ecn: tuple[int, int, int] | None) -> None:
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
    buf.push_bytes(b"".join(parts))


def _encode_ack(buf: Buffer, frame: AckFrame) -> None:
    buf.push_uint8(FrameType.ACK if frame.ecn is None else FrameType.ACK_ECN)
    _push_ack_body(buf, frame.ranges, frame.ack_delay, frame.ecn)


def _encode_path_ack(buf: Buffer, frame: PathAckFrame) -> None:
    buf.push_uint8(FrameType.PATH_ACK if frame.ecn is None else FrameType.PATH_ACK_ECN)
    buf.push_varint(frame.path_id)
    _push_ack_body(buf, frame.ranges, frame.ack_delay, frame.ecn)


def encode_stream_frame(buf: Buffer, stream_id: int, offset: int, data: bytes, fin: bool,
                        *, with_length: bool = True) -> None:
    """Write a STREAM frame without building a StreamFrame (the packet builder's path).

    ``with_length=False`` omits the Length field; the frame then runs to the
    end of the packet, so it must be the packet's last frame (RFC 9000 §19.8).
    """
    if offset + len(data) > VARINT_MAX:
        raise ValueError("stream offset + length exceeds 2^62-1")
    frame_type = int(FrameType.STREAM)
    parts = [b"", encode_varint(stream_id)]
    if offset:
        frame_type |= STREAM_OFF_BIT
        parts.append(encode_varint(offset))
    if with_length:
        frame_type |= STREAM_LEN_BIT
        parts.append(encode_varint(len(data)))
    if fin:
        frame_type |= STREAM_FIN_BIT
    parts[0] = bytes((frame_type,))
    parts.append(data)
    buf.push_bytes(b"".join(parts))


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


def _push_new_cid_body(buf: Buffer, sequence_number: int, retire_prior_to: int,
                       connection_id: bytes, token: bytes) -> None:
    if not CID_MIN <= len(connection_id) <= CID_MAX:
        raise ValueError(f"connection ID length {len(connection_id)} outside 1..20")
    if retire_prior_to > sequence_number:
        raise ValueError("retire_prior_to exceeds sequence_number")
    if len(token) != STATELESS_RESET_TOKEN_SIZE:
        raise ValueError("stateless reset token must be 16 bytes")
    buf.push_bytes(b"".join((encode_varint(sequence_number), encode_varint(retire_prior_to),
                             bytes((len(connection_id),)), connection_id, token)))


def _encode_new_connection_id(buf: Buffer, frame: NewConnectionIdFrame) -> None:
    buf.push_uint8(FrameType.NEW_CONNECTION_ID)
    _push_new_cid_body(buf, frame.sequence_number, frame.retire_prior_to,
                       frame.connection_id, frame.stateless_reset_token)


def _encode_path_new_connection_id(buf: Buffer, frame: PathNewConnectionIdFrame) -> None:
    _check_limit(frame.path_id, MAX_PATH_ID_LIMIT, "path ID")
    buf.push_varint(FrameType.PATH_NEW_CONNECTION_ID)
    buf.push_varint(frame.path_id)
    _push_new_cid_body(buf, frame.sequence_number, frame.retire_prior_to,
                       frame.connection_id, frame.stateless_reset_token)


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
        buf.push_uint8(FrameType.APPLICATION_CLOSE)
        buf.push_varint(frame.error_code)
    else:
        buf.push_uint8(FrameType.CONNECTION_CLOSE)
        buf.push_varint(frame.error_code)
        buf.push_varint(frame.frame_type or 0)  # 0 when the frame type is unknown (§19.19)
    buf.push_varint_bytes(frame.reason)


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
    fixed = 1 + varint_size(stream_id) + (varint_size(offset) if offset else 0)
    room = space - fixed
    for length_size, limit in ((1, 0x3F), (2, 0x3FFF), (4, 0x3FFFFFFF)):
        if room - length_size <= limit:
            return max(0, room - length_size)
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
