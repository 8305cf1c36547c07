"""Frame decoding: ``parse_frames`` and one parser per codepoint.

This is the per-packet hot path, so it works on the payload bytes and an
integer position directly (no cursor object, no per-byte loops: a PADDING run
is measured with one regex search), dispatches with one dict lookup per frame,
and builds the busiest frames (STREAM, CRYPTO, ACK) by writing their slots.
Data fields are single slices of the payload.

Every parser has the shape ``(payload, position after the type, type) ->
(frame, position after the frame)``.  Truncation anywhere shows up as an
IndexError (from indexing past the end, or raised by the explicit checks) and
``parse_frames`` turns it into FRAME_ENCODING_ERROR.

Decoding rules enforced here (those checkable without connection state):

- unknown frame type → FRAME_ENCODING_ERROR (RFC 9000 §12.4);
- a frame type in a longer varint than necessary → PROTOCOL_VIOLATION.  RFC
  9000 §12.4 says an endpoint MAY do so; we do, because accepting two
  spellings of one type only widens what a peer can throw at us;
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
  (multipath §"New Frames": no limit a peer can announce is that high).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from typing import cast

from tquic.wire.buffer import VARINT_MAX, varint_size
from tquic.wire.errors import QuicDecodeError, TransportErrorCode
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

FRAME_ENCODING_ERROR = TransportErrorCode.FRAME_ENCODING_ERROR
PROTOCOL_VIOLATION = TransportErrorCode.PROTOCOL_VIOLATION

Parser = Callable[[bytes, int, int], tuple[Frame, int]]
AckRanges = tuple[tuple[int, int], ...]

_NONZERO = re.compile(b"[^\x00]")
_ZEROS = bytes(65536)  # longer than any UDP payload
_unpack_u32 = struct.Struct("!I").unpack_from


def _error(code: int, reason: str, frame_type: int) -> QuicDecodeError:
    return QuicDecodeError(code, reason, frame_type)


# --- field readers ---------------------------------------------------------------


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """RFC 9000 §16 varint at ``pos`` → (value, next position); IndexError if truncated."""
    first = data[pos]
    if first < 0x40:
        return first, pos + 1
    if first < 0x80:
        return ((first & 0x3F) << 8) | data[pos + 1], pos + 2
    end = pos + (4 if first < 0xC0 else 8)
    if end > len(data):
        raise IndexError("truncated varint")
    value = int.from_bytes(data[pos:end], "big")
    return (value & 0x3FFFFFFF if first < 0xC0 else value & VARINT_MAX), end


def _bytes(data: bytes, pos: int, length: int) -> tuple[bytes, int]:
    end = pos + length
    if end > len(data):
        raise IndexError(f"need {length} bytes, {len(data) - pos} left")
    return data[pos:end], end


def _length_field(data: bytes, pos: int) -> tuple[int, int]:
    """A Length varint at ``pos`` -> (where its bytes start, where they end).

    STREAM and DATAGRAM frames of a transfer carry one- or two-byte Lengths (RFC 9000
    §16), read here without the general varint call; IndexError if the bytes run past
    the packet.
    """
    first = data[pos]
    if first < 0x40:
        length = first
        pos += 1
    elif first < 0x80:
        length = ((first & 0x3F) << 8) | data[pos + 1]
        pos += 2
    else:
        length, pos = _varint(data, pos)
    end = pos + length
    if end > len(data):
        raise IndexError(f"need {length} bytes, {len(data) - pos} left")
    return pos, end


# Building a frozen dataclass goes through object.__setattr__ once per field; the
# busiest frames are built by writing their slots directly (same object, equally
# immutable afterwards).
_new_object = object.__new__


def _slot_setter(cls: type, name: str) -> Callable[[object, object], None]:
    return cast(Callable[[object, object], None], cls.__dict__[name].__set__)


_set_stream_id, _set_stream_offset, _set_stream_data, _set_stream_fin = (
    _slot_setter(StreamFrame, name) for name in ("stream_id", "offset", "data", "fin"))
_set_crypto_offset, _set_crypto_data = (
    _slot_setter(CryptoFrame, name) for name in ("offset", "data"))
_set_datagram_data = _slot_setter(DatagramFrame, "data")
_set_ack_ranges, _set_ack_delay, _set_ack_ecn = (
    _slot_setter(AckFrame, name) for name in ("ranges", "ack_delay", "ecn"))

_PING = PingFrame()
_HANDSHAKE_DONE = HandshakeDoneFrame()
_IMMEDIATE_ACK = ImmediateAckFrame()


# --- the data path: STREAM, CRYPTO, DATAGRAM, ACK, PADDING, PING ----------------------


def _parse_stream(data: bytes, pos: int, frame_type: int) -> tuple[Frame, int]:
    # RFC 9000 §19.8: Stream ID, [Offset], [Length], Stream Data.  The usual sizes
    # (a one-byte stream ID, a two-byte Length) are read inline: this runs per packet.
    stream_id = data[pos]
    if stream_id < 0x40:
        pos += 1
    else:
        stream_id, pos = _varint(data, pos)
    offset = 0
    if frame_type & STREAM_OFF_BIT:
        first = data[pos]
        if 0x80 <= first < 0xC0 and pos + 4 <= len(data):  # a four-byte offset
            offset = _unpack_u32(data, pos)[0] & 0x3FFFFFFF
            pos += 4
        else:
            offset, pos = _varint(data, pos)
    if frame_type & STREAM_LEN_BIT:
        pos, end = _length_field(data, pos)
    else:
        end = len(data)
    if offset + end - pos > VARINT_MAX:
        raise _error(FRAME_ENCODING_ERROR, "stream offset + length exceeds 2^62-1", frame_type)
    frame = _new_object(StreamFrame)
    _set_stream_id(frame, stream_id)
    _set_stream_offset(frame, offset)
    _set_stream_data(frame, data[pos:end])
    _set_stream_fin(frame, frame_type & STREAM_FIN_BIT == STREAM_FIN_BIT)
    return frame, end


def _parse_crypto(data: bytes, pos: int, frame_type: int) -> tuple[Frame, int]:
    # RFC 9000 §19.6: Offset, Length, Crypto Data.
    offset, pos = _varint(data, pos)
    length, pos = _varint(data, pos)
    payload, pos = _bytes(data, pos, length)
    if offset + length > VARINT_MAX:
        raise _error(FRAME_ENCODING_ERROR, "crypto offset + length exceeds 2^62-1", frame_type)
    frame = _new_object(CryptoFrame)
    _set_crypto_offset(frame, offset)
    _set_crypto_data(frame, payload)
    return frame, pos


def _parse_datagram(data: bytes, pos: int, frame_type: int) -> tuple[Frame, int]:
    # RFC 9221 §4: type 0x31 has a Length, 0x30 runs to the end of the packet.  One per
    # DATAGRAM received: its Length is read by _length_field's short path.
    if frame_type & 1:
        pos, end = _length_field(data, pos)
        payload = data[pos:end]
    else:
        payload = data[pos:]
        end = len(data)
    frame = _new_object(DatagramFrame)
    _set_datagram_data(frame, payload)
    return frame, end


def _parse_ack_body(data: bytes, pos: int,
                    frame_type: int) -> tuple[AckRanges, int, tuple[int, int, int] | None, int]:
    # RFC 9000 §19.3: Largest Acknowledged, ACK Delay, ACK Range Count, First ACK
    # Range, (Gap, ACK Range Length) pairs, then ECN counts for the odd type.
    largest, pos = _varint(data, pos)
    ack_delay, pos = _varint(data, pos)
    count, pos = _varint(data, pos)
    if count > (len(data) - pos) // 2:
        # Each range takes at least two bytes: refuse before looping.
        raise _error(FRAME_ENCODING_ERROR, f"ACK range count {count} exceeds the frame",
                     frame_type)
    first_range, pos = _varint(data, pos)
    smallest = largest - first_range
    if smallest < 0:
        raise _error(FRAME_ENCODING_ERROR, "first ACK range below packet number 0", frame_type)
    ranges = [(smallest, largest)]
    for _ in range(count):
        gap, pos = _varint(data, pos)
        length, pos = _varint(data, pos)
        largest = smallest - gap - 2
        smallest = largest - length
        if smallest < 0:
            raise _error(FRAME_ENCODING_ERROR, "ACK range below packet number 0", frame_type)
        ranges.append((smallest, largest))
    ecn = None
    if frame_type & 1:
        ect0, pos = _varint(data, pos)
        ect1, pos = _varint(data, pos)
        ce, pos = _varint(data, pos)
        ecn = (ect0, ect1, ce)
    return tuple(ranges), ack_delay, ecn, pos


def _parse_ack(data: bytes, pos: int, frame_type: int) -> tuple[Frame, int]:
    ranges, ack_delay, ecn, pos = _parse_ack_body(data, pos, frame_type)
    frame = _new_object(AckFrame)
    _set_ack_ranges(frame, ranges)
    _set_ack_delay(frame, ack_delay)
    _set_ack_ecn(frame, ecn)
    return frame, pos


def _parse_padding(data: bytes, pos: int, frame_type: int) -> tuple[Frame, int]:
    # A run of PADDING bytes is one value: one comparison when it fills the rest of the
    # packet (a client's padded Initials: a memcmp, ~25x faster than the regex search
    # that finds where a run in the middle ends), not a byte loop.
    end = len(data)
    if not (end - pos <= len(_ZEROS) and data.endswith(_ZEROS[:end - pos])):
        match = _NONZERO.search(data, pos)
        end = match.start() if match is not None else end
    return PaddingFrame(end - pos + 1), end


def _parse_ping(data: bytes, pos: int, frame_type: int) -> tuple[Frame, int]:
    return _PING, pos


def _parse_handshake_done(data: bytes, pos: int, frame_type: int) -> tuple[Frame, int]:
    return _HANDSHAKE_DONE, pos


def _parse_immediate_ack(data: bytes, pos: int, frame_type: int) -> tuple[Frame, int]:
    return _IMMEDIATE_ACK, pos


# --- the rest of RFC 9000 §19 ------------------------------------------------------------


def _parse_reset_stream(data: bytes, pos: int, frame_type: int) -> tuple[Frame, int]:
    stream_id, pos = _varint(data, pos)
    error_code, pos = _varint(data, pos)
    final_size, pos = _varint(data, pos)
    return ResetStreamFrame(stream_id, error_code, final_size), pos


def _parse_stop_sending(data: bytes, pos: int, frame_type: int) -> tuple[Frame, int]:
    stream_id, pos = _varint(data, pos)
    error_code, pos = _varint(data, pos)
    return StopSendingFrame(stream_id, error_code), pos


def _parse_new_token(data: bytes, pos: int, frame_type: int) -> tuple[Frame, int]:
    length, pos = _varint(data, pos)
    if not length:
        raise _error(FRAME_ENCODING_ERROR, "NEW_TOKEN with an empty token", frame_type)
    token, pos = _bytes(data, pos, length)
    return NewTokenFrame(token), pos


def _parse_max_data(data: bytes, pos: int, frame_type: int) -> tuple[Frame, int]:
    value, pos = _varint(data, pos)
    return MaxDataFrame(value), pos


def _parse_max_stream_data(data: bytes, pos: int, frame_type: int) -> tuple[Frame, int]:
    stream_id, pos = _varint(data, pos)
    value, pos = _varint(data, pos)
    return MaxStreamDataFrame(stream_id, value), pos


def _stream_count(data: bytes, pos: int, frame_type: int) -> tuple[int, int]:
    value, pos = _varint(data, pos)
    if value > MAX_STREAMS_LIMIT:
        raise _error(FRAME_ENCODING_ERROR, f"stream count {value} exceeds 2^60", frame_type)
    return value, pos


def _parse_max_streams(data: bytes, pos: int, frame_type: int) -> tuple[Frame, int]:
    value, pos = _stream_count(data, pos, frame_type)
    return MaxStreamsFrame(value, frame_type == FrameType.MAX_STREAMS_BIDI), pos


def _parse_data_blocked(data: bytes, pos: int, frame_type: int) -> tuple[Frame, int]:
    value, pos = _varint(data, pos)
    return DataBlockedFrame(value), pos


def _parse_stream_data_blocked(data: bytes, pos: int, frame_type: int) -> tuple[Frame, int]:
    stream_id, pos = _varint(data, pos)
    value, pos = _varint(data, pos)
    return StreamDataBlockedFrame(stream_id, value), pos


def _parse_streams_blocked(data: bytes, pos: int, frame_type: int) -> tuple[Frame, int]:
    value, pos = _stream_count(data, pos, frame_type)
    return StreamsBlockedFrame(value, frame_type == FrameType.STREAMS_BLOCKED_BIDI), pos


def _new_cid_body(data: bytes, pos: int,
                  frame_type: int) -> tuple[int, int, bytes, bytes, int]:
    # RFC 9000 §19.15: Sequence Number, Retire Prior To, Length (8), CID, token (128).
    sequence_number, pos = _varint(data, pos)
    retire_prior_to, pos = _varint(data, pos)
    length = data[pos]
    if not CID_MIN_LENGTH <= length <= CID_MAX_LENGTH:
        raise _error(FRAME_ENCODING_ERROR, f"connection ID length {length} outside 1..20",
                     frame_type)
    if retire_prior_to > sequence_number:
        raise _error(FRAME_ENCODING_ERROR, "Retire Prior To exceeds the Sequence Number",
                     frame_type)
    cid, pos = _bytes(data, pos + 1, length)
    token, pos = _bytes(data, pos, STATELESS_RESET_TOKEN_SIZE)
    return sequence_number, retire_prior_to, cid, token, pos


def _parse_new_connection_id(data: bytes, pos: int, frame_type: int) -> tuple[Frame, int]:
    sequence_number, retire_prior_to, cid, token, pos = _new_cid_body(data, pos, frame_type)
    return NewConnectionIdFrame(sequence_number, retire_prior_to, cid, token), pos


def _parse_retire_connection_id(data: bytes, pos: int, frame_type: int) -> tuple[Frame, int]:
    value, pos = _varint(data, pos)
    return RetireConnectionIdFrame(value), pos


def _parse_path_challenge(data: bytes, pos: int, frame_type: int) -> tuple[Frame, int]:
    value, pos = _bytes(data, pos, PATH_DATA_SIZE)
    return PathChallengeFrame(value), pos


def _parse_path_response(data: bytes, pos: int, frame_type: int) -> tuple[Frame, int]:
    value, pos = _bytes(data, pos, PATH_DATA_SIZE)
    return PathResponseFrame(value), pos


def _parse_connection_close(data: bytes, pos: int, frame_type: int) -> tuple[Frame, int]:
    # RFC 9000 §19.19: Error Code, [Frame Type] (0x1c only), Reason Phrase.
    error_code, pos = _varint(data, pos)
    offending: int | None = None
    is_application = frame_type == FrameType.APPLICATION_CLOSE
    if not is_application:
        offending, pos = _varint(data, pos)
    length, pos = _varint(data, pos)
    reason, pos = _bytes(data, pos, length)
    return ConnectionCloseFrame(error_code, offending, reason, is_application), pos


# --- ack-frequency and multipath -------------------------------------------------------


def _parse_ack_frequency(data: bytes, pos: int, frame_type: int) -> tuple[Frame, int]:
    sequence_number, pos = _varint(data, pos)
    threshold, pos = _varint(data, pos)
    max_ack_delay, pos = _varint(data, pos)
    reordering, pos = _varint(data, pos)
    if max_ack_delay >= MAX_ACK_DELAY_LIMIT_US:
        raise _error(PROTOCOL_VIOLATION, "Requested Max Ack Delay of 2^14 ms or more",
                     frame_type)
    return AckFrequencyFrame(sequence_number, threshold, max_ack_delay, reordering), pos


def _path_id(data: bytes, pos: int, frame_type: int) -> tuple[int, int]:
    path_id, pos = _varint(data, pos)
    if path_id > MAX_PATH_ID_LIMIT:
        raise _error(PROTOCOL_VIOLATION, f"path ID {path_id} exceeds 2^32-1", frame_type)
    return path_id, pos


def _parse_path_ack(data: bytes, pos: int, frame_type: int) -> tuple[Frame, int]:
    path_id, pos = _path_id(data, pos, frame_type)
    ranges, ack_delay, ecn, pos = _parse_ack_body(data, pos, frame_type)
    return PathAckFrame(path_id, ranges, ack_delay, ecn), pos


def _path_id_and_varint(
    cls: Callable[[int, int], Frame],
) -> Parser:
    """Parser for a multipath frame made of a path ID and one more varint."""
    def parse(data: bytes, pos: int, frame_type: int) -> tuple[Frame, int]:
        path_id, pos = _path_id(data, pos, frame_type)
        value, pos = _varint(data, pos)
        return cls(path_id, value), pos
    return parse


def _path_id_only(cls: Callable[[int], Frame]) -> Parser:
    """Parser for MAX_PATH_ID / PATHS_BLOCKED: one path-ID-bounded varint."""
    def parse(data: bytes, pos: int, frame_type: int) -> tuple[Frame, int]:
        value, pos = _path_id(data, pos, frame_type)
        return cls(value), pos
    return parse


def _parse_path_new_connection_id(data: bytes, pos: int,
                                  frame_type: int) -> tuple[Frame, int]:
    path_id, pos = _path_id(data, pos, frame_type)
    sequence_number, retire_prior_to, cid, token, pos = _new_cid_body(data, pos, frame_type)
    return PathNewConnectionIdFrame(path_id, sequence_number, retire_prior_to, cid, token), pos


# The codec table: codepoint -> parser.
_PARSERS: dict[int, Parser] = {
    int(frame_type): parser for frame_type, parser in (
        (FrameType.PADDING, _parse_padding),
        (FrameType.PING, _parse_ping),
        (FrameType.ACK, _parse_ack),
        (FrameType.ACK_ECN, _parse_ack),
        (FrameType.RESET_STREAM, _parse_reset_stream),
        (FrameType.STOP_SENDING, _parse_stop_sending),
        (FrameType.CRYPTO, _parse_crypto),
        (FrameType.NEW_TOKEN, _parse_new_token),
        *((t, _parse_stream) for t in range(FrameType.STREAM, FrameType.STREAM_OFF_LEN_FIN + 1)),
        (FrameType.MAX_DATA, _parse_max_data),
        (FrameType.MAX_STREAM_DATA, _parse_max_stream_data),
        (FrameType.MAX_STREAMS_BIDI, _parse_max_streams),
        (FrameType.MAX_STREAMS_UNI, _parse_max_streams),
        (FrameType.DATA_BLOCKED, _parse_data_blocked),
        (FrameType.STREAM_DATA_BLOCKED, _parse_stream_data_blocked),
        (FrameType.STREAMS_BLOCKED_BIDI, _parse_streams_blocked),
        (FrameType.STREAMS_BLOCKED_UNI, _parse_streams_blocked),
        (FrameType.NEW_CONNECTION_ID, _parse_new_connection_id),
        (FrameType.RETIRE_CONNECTION_ID, _parse_retire_connection_id),
        (FrameType.PATH_CHALLENGE, _parse_path_challenge),
        (FrameType.PATH_RESPONSE, _parse_path_response),
        (FrameType.CONNECTION_CLOSE, _parse_connection_close),
        (FrameType.APPLICATION_CLOSE, _parse_connection_close),
        (FrameType.HANDSHAKE_DONE, _parse_handshake_done),
        (FrameType.IMMEDIATE_ACK, _parse_immediate_ack),
        (FrameType.ACK_FREQUENCY, _parse_ack_frequency),
        (FrameType.DATAGRAM, _parse_datagram),
        (FrameType.DATAGRAM_LEN, _parse_datagram),
        (FrameType.PATH_ACK, _parse_path_ack),
        (FrameType.PATH_ACK_ECN, _parse_path_ack),
        (FrameType.PATH_ABANDON, _path_id_and_varint(PathAbandonFrame)),
        (FrameType.PATH_STATUS_BACKUP, _path_id_and_varint(PathStatusBackupFrame)),
        (FrameType.PATH_STATUS_AVAILABLE, _path_id_and_varint(PathStatusAvailableFrame)),
        (FrameType.PATH_NEW_CONNECTION_ID, _parse_path_new_connection_id),
        (FrameType.PATH_RETIRE_CONNECTION_ID, _path_id_and_varint(PathRetireConnectionIdFrame)),
        (FrameType.MAX_PATH_ID, _path_id_only(MaxPathIdFrame)),
        (FrameType.PATHS_BLOCKED, _path_id_only(PathsBlockedFrame)),
        (FrameType.PATH_CIDS_BLOCKED, _path_id_and_varint(PathCidsBlockedFrame)),
    )
}


def parse_frames(payload: bytes) -> list[Frame]:
    """Every frame in a decrypted packet payload, in order.

    Raises QuicDecodeError (FRAME_ENCODING_ERROR or PROTOCOL_VIOLATION, with
    ``frame_type`` set when a frame is at fault); see the module docstring.
    """
    if type(payload) is not bytes:
        payload = bytes(payload)  # frames hold bytes, never views of a reused buffer
    end = len(payload)
    if not end:
        raise QuicDecodeError(PROTOCOL_VIOLATION, "packet contains no frames")
    frames: list[Frame] = []
    append = frames.append
    parsers = _PARSERS
    pos = 0
    frame_type = 0
    try:
        while pos < end:
            frame_type = payload[pos]
            if frame_type < 0x40:
                pos += 1
            else:
                start = pos
                frame_type, pos = _varint(payload, pos)
                if pos - start != varint_size(frame_type):
                    raise _error(PROTOCOL_VIOLATION, "frame type not minimally encoded",
                                 frame_type)
            parser = parsers.get(frame_type)
            if parser is None:
                raise _error(FRAME_ENCODING_ERROR, f"unknown frame type {frame_type:#x}",
                             frame_type)
            frame, pos = parser(payload, pos, frame_type)
            append(frame)
    except IndexError as exc:
        raise _error(FRAME_ENCODING_ERROR, f"truncated frame ({exc})", frame_type) from None
    return frames
