"""Stream IDs (RFC 9000 §2.1) and stream-count limits (RFC 9000 §4.6, §19.11, §19.14).

A stream ID's low bit is the initiator (0 client, 1 server); the next bit is
the direction (0 bidirectional, 1 unidirectional).  ``StreamLimits`` keeps
the MAX_STREAMS accounting of one stream type (bidirectional or
unidirectional) in both directions: streams we open (bounded by the peer's
MAX_STREAMS) and streams the peer opens (bounded by ours).
"""

from __future__ import annotations

from tquic.wire.errors import QuicError, TransportErrorCode

MAX_STREAMS_LIMIT = 1 << 60  # RFC 9000 §4.6, §19.11

FRAME_MAX_STREAMS_BIDI = 0x12
FRAME_MAX_STREAMS_UNI = 0x13
FRAME_STREAMS_BLOCKED_BIDI = 0x16
FRAME_STREAMS_BLOCKED_UNI = 0x17


def is_client_initiated(stream_id: int) -> bool:
    """RFC 9000 §2.1: bit 0x01 clear."""
    return not stream_id & 0x01


def is_server_initiated(stream_id: int) -> bool:
    return bool(stream_id & 0x01)


def is_unidirectional(stream_id: int) -> bool:
    """RFC 9000 §2.1: bit 0x02 set."""
    return bool(stream_id & 0x02)


def is_bidirectional(stream_id: int) -> bool:
    return not stream_id & 0x02


def is_locally_initiated(stream_id: int, is_client: bool) -> bool:
    return (stream_id & 0x01) == (0 if is_client else 1)


def stream_index(stream_id: int) -> int:
    """Position of a stream among the streams of its type (0, 1, 2, ...)."""
    return stream_id >> 2


def make_stream_id(index: int, *, client_initiated: bool, unidirectional: bool) -> int:
    return (index << 2) | (0 if client_initiated else 1) | (2 if unidirectional else 0)


def can_send(stream_id: int, is_client: bool) -> bool:
    """Whether we have a sending part: bidirectional, or a unidirectional one we opened."""
    return not stream_id & 0x02 or is_locally_initiated(stream_id, is_client)


def can_receive(stream_id: int, is_client: bool) -> bool:
    """Whether we have a receiving part: bidirectional, or a unidirectional one the peer opened."""
    return not stream_id & 0x02 or not is_locally_initiated(stream_id, is_client)


def check_frame_direction(
    stream_id: int, is_client: bool, *, for_receiving_part: bool, frame_type: int
) -> None:
    """STREAM_STATE_ERROR when a frame addresses a part of the stream we do not have.

    STREAM, RESET_STREAM and STREAM_DATA_BLOCKED address the receiving part;
    MAX_STREAM_DATA and STOP_SENDING the sending part (RFC 9000 §19.4, §19.5,
    §19.8, §19.10, §19.13).
    """
    ok = can_receive(stream_id, is_client) if for_receiving_part else can_send(stream_id, is_client)
    if not ok:
        part = "receive" if for_receiving_part else "send"
        raise QuicError(
            TransportErrorCode.STREAM_STATE_ERROR,
            f"stream {stream_id} has no {part} part at this endpoint",
            frame_type=frame_type,
        )


class StreamLimits:
    """MAX_STREAMS / STREAMS_BLOCKED accounting for one stream type.

    - ``local_max``: how many streams of this type the peer may open (ours).
    - ``peer_max``: how many we may open (the peer's transport parameter,
      then MAX_STREAMS).
    - ``window``: the number of concurrently open peer streams we aim to
      allow; MAX_STREAMS is raised as peer streams close (RFC 9000 §4.6).
    """

    __slots__ = (
        "_blocked_signalled",
        "_remote_closed",
        "is_client",
        "local_max",
        "local_opened",
        "peer_max",
        "remote_opened",
        "unidirectional",
        "window",
    )

    def __init__(
        self,
        *,
        is_client: bool,
        unidirectional: bool,
        local_max: int,
        peer_max: int = 0,
    ) -> None:
        if not 0 <= local_max <= MAX_STREAMS_LIMIT:
            raise ValueError(f"local max_streams must be in [0, 2^60], got {local_max}")
        if not 0 <= peer_max <= MAX_STREAMS_LIMIT:
            raise QuicError(
                TransportErrorCode.TRANSPORT_PARAMETER_ERROR,
                f"peer max_streams {peer_max} exceeds 2^60",
            )
        self.is_client = is_client
        self.unidirectional = unidirectional
        self.local_max = local_max
        self.window = local_max
        self.peer_max = peer_max
        self.local_opened = 0  # streams of this type we opened
        self.remote_opened = 0  # streams of this type the peer opened (incl. implicitly)
        self._remote_closed = 0
        self._blocked_signalled = -1

    # -- streams we open ----------------------------------------------------

    def open_local(self) -> int | None:
        """The next stream ID we may open, or None when the peer's limit is reached.

        When None, ``take_blocked_signal`` yields the value for STREAMS_BLOCKED.
        """
        if self.local_opened >= self.peer_max:
            return None
        stream_id = make_stream_id(
            self.local_opened, client_initiated=self.is_client, unidirectional=self.unidirectional
        )
        self.local_opened += 1
        return stream_id

    @property
    def can_open_local(self) -> bool:
        return self.local_opened < self.peer_max

    def take_blocked_signal(self) -> int | None:
        """The Maximum Streams for a STREAMS_BLOCKED frame, once per limit value."""
        if self.local_opened < self.peer_max or self._blocked_signalled == self.peer_max:
            return None
        self._blocked_signalled = self.peer_max
        return self.peer_max

    def on_max_streams(self, maximum: int, *, from_transport_parameters: bool = False) -> bool:
        """Apply MAX_STREAMS (or the initial_max_streams parameter); True if it increased.

        RFC 9000 §19.11: a value above 2^60 is FRAME_ENCODING_ERROR (in a frame)
        or TRANSPORT_PARAMETER_ERROR (§4.6, in a transport parameter);
        values that do not increase the limit are ignored.
        """
        if maximum > MAX_STREAMS_LIMIT:
            if from_transport_parameters:
                raise QuicError(
                    TransportErrorCode.TRANSPORT_PARAMETER_ERROR,
                    f"initial_max_streams {maximum} exceeds 2^60",
                )
            raise QuicError(
                TransportErrorCode.FRAME_ENCODING_ERROR,
                f"MAX_STREAMS {maximum} exceeds 2^60",
                frame_type=FRAME_MAX_STREAMS_UNI if self.unidirectional else FRAME_MAX_STREAMS_BIDI,
            )
        if maximum <= self.peer_max:
            return False
        self.peer_max = maximum
        return True

    # -- streams the peer opens / frames naming a stream ----------------------

    def on_peer_frame(self, stream_id: int, frame_type: int | None = None) -> range:
        """Validate a stream ID received in a frame; return the stream IDs it opens.

        For a peer-initiated stream: STREAM_LIMIT_ERROR beyond our MAX_STREAMS;
        otherwise the stream and every lower-numbered one of its type not yet
        opened are opened (RFC 9000 §3.2) -- the returned range lists them
        (empty when the stream was opened before, perhaps already closed).
        For a locally initiated stream: STREAM_STATE_ERROR if we never opened it
        (RFC 9000 §19.4, §19.5, §19.8, §19.10, §19.13); returns an empty range.
        """
        index = stream_id >> 2
        if is_locally_initiated(stream_id, self.is_client):
            if index >= self.local_opened:
                raise QuicError(
                    TransportErrorCode.STREAM_STATE_ERROR,
                    f"frame for locally initiated stream {stream_id} that was never opened",
                    frame_type=frame_type,
                )
            return range(0)
        if index >= self.local_max:
            raise QuicError(
                TransportErrorCode.STREAM_LIMIT_ERROR,
                f"stream {stream_id} exceeds our limit of {self.local_max} streams",
                frame_type=frame_type,
            )
        if index < self.remote_opened:
            return range(0)
        first = make_stream_id(
            self.remote_opened,
            client_initiated=not self.is_client,
            unidirectional=self.unidirectional,
        )
        self.remote_opened = index + 1
        return range(first, stream_id + 1, 4)

    def on_streams_blocked(self, maximum: int) -> None:
        """Validate STREAMS_BLOCKED (RFC 9000 §19.14: above 2^60 is an error)."""
        if maximum > MAX_STREAMS_LIMIT:
            raise QuicError(
                TransportErrorCode.FRAME_ENCODING_ERROR,
                f"STREAMS_BLOCKED {maximum} exceeds 2^60",
                frame_type=(
                    FRAME_STREAMS_BLOCKED_UNI if self.unidirectional else FRAME_STREAMS_BLOCKED_BIDI
                ),
            )

    def on_remote_stream_closed(self) -> None:
        """A peer-initiated stream of this type reached a terminal state and was freed."""
        self._remote_closed += 1

    def max_streams_update(self) -> int | None:
        """A new MAX_STREAMS value to send, or None.

        RFC 9000 §4.6 leaves the policy to us: keep about ``window`` peer
        streams available, and send an update once half a window's worth of
        streams has closed (so updates are not sent one stream at a time).
        """
        target = min(self._remote_closed + self.window, MAX_STREAMS_LIMIT)
        if target - self.local_max < max(1, self.window // 2):
            return None
        self.local_max = target
        return target
