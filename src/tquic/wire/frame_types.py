"""Frame types: the codepoint table, one value class per frame, and the per-type rules.

Codepoints live in ONE place, :class:`FrameType`; the codec table, the
packet-type rules and the ack-eliciting / probing sets are all keyed by it, so a
draft renumbering (ack-frequency, multipath) is a one-line edit here.

Sources: RFC 9000 §12.4 (Table 3), §12.5, §19; RFC 9221 §4 (DATAGRAM);
draft-ietf-quic-ack-frequency §4, §5 (ACK_FREQUENCY, IMMEDIATE_ACK);
draft-ietf-quic-multipath §"New Frames" (PATH_ACK … PATH_CIDS_BLOCKED).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from tquic.wire.packet import PacketType


class FrameType(IntEnum):
    """Every frame codepoint this implementation understands."""

    # RFC 9000 §19
    PADDING = 0x00
    PING = 0x01
    ACK = 0x02
    ACK_ECN = 0x03
    RESET_STREAM = 0x04
    STOP_SENDING = 0x05
    CRYPTO = 0x06
    NEW_TOKEN = 0x07
    STREAM = 0x08  # 0x08..0x0f: low bits OFF (0x04), LEN (0x02), FIN (0x01)
    STREAM_FIN = 0x09
    STREAM_LEN = 0x0A
    STREAM_LEN_FIN = 0x0B
    STREAM_OFF = 0x0C
    STREAM_OFF_FIN = 0x0D
    STREAM_OFF_LEN = 0x0E
    STREAM_OFF_LEN_FIN = 0x0F
    MAX_DATA = 0x10
    MAX_STREAM_DATA = 0x11
    MAX_STREAMS_BIDI = 0x12
    MAX_STREAMS_UNI = 0x13
    DATA_BLOCKED = 0x14
    STREAM_DATA_BLOCKED = 0x15
    STREAMS_BLOCKED_BIDI = 0x16
    STREAMS_BLOCKED_UNI = 0x17
    NEW_CONNECTION_ID = 0x18
    RETIRE_CONNECTION_ID = 0x19
    PATH_CHALLENGE = 0x1A
    PATH_RESPONSE = 0x1B
    CONNECTION_CLOSE = 0x1C
    APPLICATION_CLOSE = 0x1D
    HANDSHAKE_DONE = 0x1E
    # draft-ietf-quic-ack-frequency §5, §4
    IMMEDIATE_ACK = 0x1F
    ACK_FREQUENCY = 0xAF
    # RFC 9221 §4
    DATAGRAM = 0x30
    DATAGRAM_LEN = 0x31
    # draft-ietf-quic-multipath §"New Frames" (provisional codepoints)
    PATH_ACK = 0x3E
    PATH_ACK_ECN = 0x3F
    PATH_ABANDON = 0x3E75
    PATH_STATUS_BACKUP = 0x3E76
    PATH_STATUS_AVAILABLE = 0x3E77
    PATH_NEW_CONNECTION_ID = 0x3E78
    PATH_RETIRE_CONNECTION_ID = 0x3E79
    MAX_PATH_ID = 0x3E7A
    PATHS_BLOCKED = 0x3E7B
    PATH_CIDS_BLOCKED = 0x3E7C


# STREAM type bits (RFC 9000 §19.8).
STREAM_FIN_BIT = 0x01
STREAM_LEN_BIT = 0x02
STREAM_OFF_BIT = 0x04

# Field limits the frame encodings carry (checked by both parser and encoder).
MAX_STREAMS_LIMIT = 1 << 60  # RFC 9000 §4.6, §19.11, §19.14
MAX_PATH_ID_LIMIT = (1 << 32) - 1  # multipath: the path ID is 32 bits of the nonce
MAX_ACK_DELAY_LIMIT_US = (1 << 14) * 1000  # RFC 9000 §18.2 max_ack_delay < 2^14 ms
CID_MIN_LENGTH, CID_MAX_LENGTH = 1, 20  # RFC 9000 §19.15
STATELESS_RESET_TOKEN_SIZE = 16  # RFC 9000 §19.15
PATH_DATA_SIZE = 8  # RFC 9000 §19.17, §19.18


# --- frame values -------------------------------------------------------------
# Field names follow the RFC's field names in snake_case.


@dataclass(frozen=True, slots=True)
class PaddingFrame:
    """A run of ``length`` PADDING bytes (RFC 9000 §19.1); parsed as one value."""

    length: int = 1


@dataclass(frozen=True, slots=True)
class PingFrame:
    """RFC 9000 §19.2."""


@dataclass(frozen=True, slots=True)
class AckFrame:
    """RFC 9000 §19.3.  ``ranges``: inclusive (smallest, largest), largest range first.

    ``ack_delay`` is the raw field (scaled by the sender's ack_delay_exponent);
    ``ecn`` is (ECT0, ECT1, ECN-CE) for type 0x03, else None.
    """

    ranges: tuple[tuple[int, int], ...]
    ack_delay: int
    ecn: tuple[int, int, int] | None = None

    @property
    def largest_acknowledged(self) -> int:
        return self.ranges[0][1]


@dataclass(frozen=True, slots=True)
class ResetStreamFrame:
    """RFC 9000 §19.4."""

    stream_id: int
    application_protocol_error_code: int
    final_size: int


@dataclass(frozen=True, slots=True)
class StopSendingFrame:
    """RFC 9000 §19.5."""

    stream_id: int
    application_protocol_error_code: int


@dataclass(frozen=True, slots=True)
class CryptoFrame:
    """RFC 9000 §19.6."""

    offset: int
    data: bytes


@dataclass(frozen=True, slots=True)
class NewTokenFrame:
    """RFC 9000 §19.7 (token is never empty)."""

    token: bytes


@dataclass(frozen=True, slots=True)
class StreamFrame:
    """RFC 9000 §19.8.  Encoded with an explicit Length unless the caller asks otherwise."""

    stream_id: int
    offset: int
    data: bytes
    fin: bool = False


@dataclass(frozen=True, slots=True)
class MaxDataFrame:
    """RFC 9000 §19.9."""

    maximum_data: int


@dataclass(frozen=True, slots=True)
class MaxStreamDataFrame:
    """RFC 9000 §19.10."""

    stream_id: int
    maximum_stream_data: int


@dataclass(frozen=True, slots=True)
class MaxStreamsFrame:
    """RFC 9000 §19.11 (type 0x12 bidirectional, 0x13 unidirectional)."""

    maximum_streams: int
    bidirectional: bool


@dataclass(frozen=True, slots=True)
class DataBlockedFrame:
    """RFC 9000 §19.12."""

    maximum_data: int


@dataclass(frozen=True, slots=True)
class StreamDataBlockedFrame:
    """RFC 9000 §19.13."""

    stream_id: int
    maximum_stream_data: int


@dataclass(frozen=True, slots=True)
class StreamsBlockedFrame:
    """RFC 9000 §19.14 (type 0x16 bidirectional, 0x17 unidirectional)."""

    maximum_streams: int
    bidirectional: bool


@dataclass(frozen=True, slots=True)
class NewConnectionIdFrame:
    """RFC 9000 §19.15."""

    sequence_number: int
    retire_prior_to: int
    connection_id: bytes
    stateless_reset_token: bytes


@dataclass(frozen=True, slots=True)
class RetireConnectionIdFrame:
    """RFC 9000 §19.16."""

    sequence_number: int


@dataclass(frozen=True, slots=True)
class PathChallengeFrame:
    """RFC 9000 §19.17 (8 bytes of data)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class PathResponseFrame:
    """RFC 9000 §19.18 (8 bytes of data)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class ConnectionCloseFrame:
    """RFC 9000 §19.19.  Type 0x1d (``is_application``) carries no frame type."""

    error_code: int
    frame_type: int | None
    reason: bytes
    is_application: bool


@dataclass(frozen=True, slots=True)
class HandshakeDoneFrame:
    """RFC 9000 §19.20."""


@dataclass(frozen=True, slots=True)
class ImmediateAckFrame:
    """draft-ietf-quic-ack-frequency §5."""


@dataclass(frozen=True, slots=True)
class AckFrequencyFrame:
    """draft-ietf-quic-ack-frequency §4 (requested_max_ack_delay in microseconds)."""

    sequence_number: int
    ack_eliciting_threshold: int
    requested_max_ack_delay: int
    reordering_threshold: int


@dataclass(frozen=True, slots=True)
class DatagramFrame:
    """RFC 9221 §4.  Encoded as type 0x31 (with Length) unless the caller asks otherwise."""

    data: bytes


@dataclass(frozen=True, slots=True)
class PathAckFrame:
    """draft-ietf-quic-multipath PATH_ACK: an ACK for one path's packet number space."""

    path_id: int
    ranges: tuple[tuple[int, int], ...]
    ack_delay: int
    ecn: tuple[int, int, int] | None = None

    @property
    def largest_acknowledged(self) -> int:
        return self.ranges[0][1]


@dataclass(frozen=True, slots=True)
class PathAbandonFrame:
    """draft-ietf-quic-multipath PATH_ABANDON (error_code: see PathAbandonCode)."""

    path_id: int
    error_code: int


@dataclass(frozen=True, slots=True)
class PathStatusBackupFrame:
    """draft-ietf-quic-multipath PATH_STATUS_BACKUP."""

    path_id: int
    path_status_sequence_number: int


@dataclass(frozen=True, slots=True)
class PathStatusAvailableFrame:
    """draft-ietf-quic-multipath PATH_STATUS_AVAILABLE."""

    path_id: int
    path_status_sequence_number: int


@dataclass(frozen=True, slots=True)
class PathNewConnectionIdFrame:
    """draft-ietf-quic-multipath PATH_NEW_CONNECTION_ID (sequence numbers are per path)."""

    path_id: int
    sequence_number: int
    retire_prior_to: int
    connection_id: bytes
    stateless_reset_token: bytes


@dataclass(frozen=True, slots=True)
class PathRetireConnectionIdFrame:
    """draft-ietf-quic-multipath PATH_RETIRE_CONNECTION_ID."""

    path_id: int
    sequence_number: int


@dataclass(frozen=True, slots=True)
class MaxPathIdFrame:
    """draft-ietf-quic-multipath MAX_PATH_ID."""

    maximum_path_id: int


@dataclass(frozen=True, slots=True)
class PathsBlockedFrame:
    """draft-ietf-quic-multipath PATHS_BLOCKED."""

    maximum_path_id: int


@dataclass(frozen=True, slots=True)
class PathCidsBlockedFrame:
    """draft-ietf-quic-multipath PATH_CIDS_BLOCKED."""

    path_id: int
    next_sequence_number: int


Frame = (
    PaddingFrame | PingFrame | AckFrame | ResetStreamFrame | StopSendingFrame | CryptoFrame
    | NewTokenFrame | StreamFrame | MaxDataFrame | MaxStreamDataFrame | MaxStreamsFrame
    | DataBlockedFrame | StreamDataBlockedFrame | StreamsBlockedFrame | NewConnectionIdFrame
    | RetireConnectionIdFrame | PathChallengeFrame | PathResponseFrame | ConnectionCloseFrame
    | HandshakeDoneFrame | ImmediateAckFrame | AckFrequencyFrame | DatagramFrame | PathAckFrame
    | PathAbandonFrame | PathStatusBackupFrame | PathStatusAvailableFrame
    | PathNewConnectionIdFrame | PathRetireConnectionIdFrame | MaxPathIdFrame
    | PathsBlockedFrame | PathCidsBlockedFrame
)


# --- per-type rules -------------------------------------------------------------

# Packet types as bits, for the "Pkts" column of RFC 9000 Table 3.
_I = 1 << PacketType.INITIAL
_H = 1 << PacketType.HANDSHAKE
_0 = 1 << PacketType.ZERO_RTT
_1 = 1 << PacketType.ONE_RTT


@dataclass(frozen=True, slots=True)
class FrameRules:
    """What RFC 9000 Table 3 (and the extensions) say about one frame type.

    ``packets``: bit set of PacketType values the frame may appear in;
    ``ack_eliciting``: not marked "N" (RFC 9000 §13.2.1, §1.2 "ack-eliciting");
    ``probing``: marked "P" (RFC 9000 §9.1).
    """

    packets: int
    ack_eliciting: bool = True
    probing: bool = False


_NON_0RTT = _I | _H | _1
# RFC 9000 §12.5: ACK, CRYPTO, HANDSHAKE_DONE, NEW_TOKEN, PATH_RESPONSE and
# RETIRE_CONNECTION_ID cannot be sent in 0-RTT; we apply that strictly
# (Table 3 lists RETIRE_CONNECTION_ID as "__01", §12.5 lets a server reject it).
_APP = _0 | _1

FRAME_RULES: dict[int, FrameRules] = {
    FrameType.PADDING: FrameRules(_I | _H | _0 | _1, ack_eliciting=False, probing=True),
    FrameType.PING: FrameRules(_I | _H | _0 | _1),
    FrameType.ACK: FrameRules(_NON_0RTT, ack_eliciting=False),
    FrameType.ACK_ECN: FrameRules(_NON_0RTT, ack_eliciting=False),
    FrameType.RESET_STREAM: FrameRules(_APP),
    FrameType.STOP_SENDING: FrameRules(_APP),
    FrameType.CRYPTO: FrameRules(_NON_0RTT),
    FrameType.NEW_TOKEN: FrameRules(_1),
    **{t: FrameRules(_APP) for t in range(FrameType.STREAM, FrameType.STREAM_OFF_LEN_FIN + 1)},
    FrameType.MAX_DATA: FrameRules(_APP),
    FrameType.MAX_STREAM_DATA: FrameRules(_APP),
    FrameType.MAX_STREAMS_BIDI: FrameRules(_APP),
    FrameType.MAX_STREAMS_UNI: FrameRules(_APP),
    FrameType.DATA_BLOCKED: FrameRules(_APP),
    FrameType.STREAM_DATA_BLOCKED: FrameRules(_APP),
    FrameType.STREAMS_BLOCKED_BIDI: FrameRules(_APP),
    FrameType.STREAMS_BLOCKED_UNI: FrameRules(_APP),
    FrameType.NEW_CONNECTION_ID: FrameRules(_APP, probing=True),
    FrameType.RETIRE_CONNECTION_ID: FrameRules(_1),
    FrameType.PATH_CHALLENGE: FrameRules(_APP, probing=True),
    FrameType.PATH_RESPONSE: FrameRules(_1, probing=True),
    # "ih01": only the transport variant (0x1c) in Initial/Handshake.
    FrameType.CONNECTION_CLOSE: FrameRules(_I | _H | _0 | _1, ack_eliciting=False),
    FrameType.APPLICATION_CLOSE: FrameRules(_APP, ack_eliciting=False),
    FrameType.HANDSHAKE_DONE: FrameRules(_1),
    # ack-frequency §3: min_ack_delay is not remembered, so never in 0-RTT.
    FrameType.IMMEDIATE_ACK: FrameRules(_1),
    FrameType.ACK_FREQUENCY: FrameRules(_1),
    # RFC 9221 §4: DATAGRAM may be sent in 0-RTT and 1-RTT packets.
    FrameType.DATAGRAM: FrameRules(_APP),
    FrameType.DATAGRAM_LEN: FrameRules(_APP),
    # multipath §"New Frames": 1-RTT only; PATH_ACK, like ACK, is not ack-eliciting.
    FrameType.PATH_ACK: FrameRules(_1, ack_eliciting=False),
    FrameType.PATH_ACK_ECN: FrameRules(_1, ack_eliciting=False),
    FrameType.PATH_ABANDON: FrameRules(_1),
    FrameType.PATH_STATUS_BACKUP: FrameRules(_1),
    FrameType.PATH_STATUS_AVAILABLE: FrameRules(_1),
    FrameType.PATH_NEW_CONNECTION_ID: FrameRules(_1),
    FrameType.PATH_RETIRE_CONNECTION_ID: FrameRules(_1),
    FrameType.MAX_PATH_ID: FrameRules(_1),
    FrameType.PATHS_BLOCKED: FrameRules(_1),
    FrameType.PATH_CIDS_BLOCKED: FrameRules(_1),
}

MULTIPATH_FRAME_TYPES = frozenset((
    FrameType.PATH_ACK, FrameType.PATH_ACK_ECN, FrameType.PATH_ABANDON,
    FrameType.PATH_STATUS_BACKUP, FrameType.PATH_STATUS_AVAILABLE,
    FrameType.PATH_NEW_CONNECTION_ID, FrameType.PATH_RETIRE_CONNECTION_ID,
    FrameType.MAX_PATH_ID, FrameType.PATHS_BLOCKED, FrameType.PATH_CIDS_BLOCKED,
))

# Classes whose frames never make a packet ack-eliciting ("N" in Table 3).
_NOT_ACK_ELICITING: frozenset[type] = frozenset(
    (PaddingFrame, AckFrame, PathAckFrame, ConnectionCloseFrame)
)
_PROBING: frozenset[type] = frozenset(
    (PaddingFrame, NewConnectionIdFrame, PathChallengeFrame, PathResponseFrame)
)


def is_ack_eliciting(frame: Frame) -> bool:
    """True unless the frame is PADDING, ACK, PATH_ACK or CONNECTION_CLOSE (RFC 9000 §13.2.1)."""
    return type(frame) not in _NOT_ACK_ELICITING


def is_ack_eliciting_type(frame_type: int) -> bool:
    """:func:`is_ack_eliciting` by codepoint; unknown types count as ack-eliciting."""
    rules = FRAME_RULES.get(frame_type)
    return rules is None or rules.ack_eliciting


def is_probing(frame_type: int) -> bool:
    """True for the probing frames of RFC 9000 §9.1 (PATH_CHALLENGE, PATH_RESPONSE,
    NEW_CONNECTION_ID, PADDING)."""
    rules = FRAME_RULES.get(frame_type)
    return rules is not None and rules.probing


def is_probing_frame(frame: Frame) -> bool:
    """:func:`is_probing` for a frame value."""
    return type(frame) in _PROBING


def frame_allowed(frame_type: int, packet_type: PacketType) -> bool:
    """May ``frame_type`` appear in a packet of ``packet_type``? (RFC 9000 §12.4 Table 3,
    §12.5; RFC 9221 §4; ack-frequency §3; multipath §"New Frames").

    Receipt of a frame where this is False is a PROTOCOL_VIOLATION.  Retry and
    Version Negotiation packets carry no frames, unknown types none either.
    """
    rules = FRAME_RULES.get(frame_type)
    return rules is not None and bool(rules.packets & (1 << packet_type))
