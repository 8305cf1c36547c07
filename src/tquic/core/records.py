"""Retransmission records: what a sent packet carried, as typed values.

Frames are never retransmitted as packets (RFC 9000 §13.3): each sent packet
keeps one record per retransmittable frame in ``SentPacket.frames``, and on
loss the record says what to send again -- with current values (a new
MAX_DATA limit, the stream's current reset code).  The same records queue
control frames to send (``_control``).

One NamedTuple per kind: tuple speed (construction, field access), names at
every reading site, and ``isinstance`` dispatch.  Kinds without fields are used
through the module-level singletons below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias

if TYPE_CHECKING:
    from tquic.paths.path import PacketSpace


class StreamRecord(NamedTuple):
    """STREAM data ``[offset, offset + length)`` of ``stream_id``; acked or resent."""

    stream_id: int
    offset: int
    length: int
    fin: bool


class CryptoRecord(NamedTuple):
    """CRYPTO data at ``epoch`` (an Epoch value, RFC 9001 §4)."""

    epoch: int
    offset: int
    length: int


class AckRecord(NamedTuple):
    """An ACK frame of ``space`` up to ``largest``: once acknowledged, older ranges
    need not be reported again (RFC 9000 §13.2.4).  Never resent."""

    space: PacketSpace
    largest: int


class FrameRecord(NamedTuple):
    """A frame resent as is (NEW_CONNECTION_ID, NEW_TOKEN, PATH_ABANDON, ...)."""

    frame: Any


class HandshakeDoneRecord(NamedTuple):
    """HANDSHAKE_DONE (RFC 9000 §19.20)."""


class MaxDataRecord(NamedTuple):
    """MAX_DATA: resent with the current limit (RFC 9000 §13.3)."""


class MaxStreamDataRecord(NamedTuple):
    """MAX_STREAM_DATA for ``stream_id``, resent with the current limit."""

    stream_id: int


class ResetStreamRecord(NamedTuple):
    """RESET_STREAM of ``stream_id`` (code and final size from the stream)."""

    stream_id: int


class StopSendingRecord(NamedTuple):
    """STOP_SENDING for ``stream_id`` (code from the stream)."""

    stream_id: int


class PmtuProbeRecord(NamedTuple):
    """A PMTU probe of ``size`` bytes on ``path_id`` (RFC 8899 §4.1); never resent."""

    path_id: int
    size: int


class RetireCidRecord(NamedTuple):
    """RETIRE_CONNECTION_ID ``sequence_number`` (RFC 9000 §19.16)."""

    sequence_number: int


class MaxStreamsRecord(NamedTuple):
    """MAX_STREAMS of one direction, resent with the current limit."""

    bidirectional: bool


class NoopRecord(NamedTuple):
    """PING, PADDING, DATAGRAM, PATH_CHALLENGE/RESPONSE: nothing to do on loss."""


HANDSHAKE_DONE = HandshakeDoneRecord()
MAX_DATA = MaxDataRecord()
NOOP = NoopRecord()

Record: TypeAlias = (
    StreamRecord | CryptoRecord | AckRecord | FrameRecord | HandshakeDoneRecord
    | MaxDataRecord | MaxStreamDataRecord | ResetStreamRecord | StopSendingRecord
    | PmtuProbeRecord | RetireCidRecord | MaxStreamsRecord | NoopRecord
)

__all__ = [
    "HANDSHAKE_DONE",
    "MAX_DATA",
    "NOOP",
    "AckRecord",
    "CryptoRecord",
    "FrameRecord",
    "HandshakeDoneRecord",
    "MaxDataRecord",
    "MaxStreamDataRecord",
    "MaxStreamsRecord",
    "NoopRecord",
    "PmtuProbeRecord",
    "Record",
    "ResetStreamRecord",
    "RetireCidRecord",
    "StopSendingRecord",
    "StreamRecord",
]
