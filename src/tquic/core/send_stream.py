"""SendStream: the sending part of a stream (RFC 9000 §2.2, §3.1, §4).

Application data is kept as written (``SendBuffer``, core/send_buffer.py) until
the peer acknowledges it, then the acknowledged prefix is dropped.  Acknowledged and lost
byte ranges beyond the prefix are ``RangeSet``s, so no work is ever done per
byte.  ``next_chunk`` hands out retransmissions first, then new data within
the stream's and the connection's flow-control credit.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from tquic.core.flow import VARINT_MAX, SendCredit
from tquic.core.send_buffer import SendBuffer
from tquic.paths.ackranges import RangeSet


class SendState(IntEnum):
    """RFC 9000 §3.1, Figure 2."""

    READY = 0
    SEND = 1
    DATA_SENT = 2
    DATA_RECVD = 3  # terminal
    RESET_SENT = 4
    RESET_RECVD = 5  # terminal


class StreamUsageError(Exception):
    """The application used a stream in a way its state does not allow (not a protocol error)."""


@dataclass(frozen=True, slots=True)
class SendProgress:
    """Where the sending part of a stream is (``QuicConnection.send_progress``)."""

    state: SendState  # RFC 9000 §3.1
    written: int  # bytes the application wrote
    sent: int  # the highest offset sent + 1 (the stream credit used)
    acked_prefix: int  # every byte below this offset is acknowledged and freed
    lost: bool  # data or the FIN was declared lost and waits to be sent again
    final_size: int | None  # known once the stream is ended or reset


DEFAULT_MAX_BUFFER = 1 << 20

# Aliases for the hot paths (no enum class attribute lookups per call).
_SEND = SendState.SEND
_DATA_SENT = SendState.DATA_SENT


class SendStream:
    """Sending part of one stream.

    ``max_stream_data`` is the peer's initial limit for this stream (from its
    transport parameters); ``connection_credit`` is the connection-level
    ``SendCredit`` shared by all streams, charged for every new byte.
    ``max_buffer`` bounds the unsent bytes the application should queue:
    ``writable`` turns False at that point (backpressure); ``write`` itself
    never drops data.
    """

    __slots__ = (
        "_acked",
        "_buf_offset",
        "_conn",
        "_data",
        "_fin_acked",
        "_fin_lost",
        "_fin_sent",
        "_final_size",
        "_has_acked",
        "_has_lost",
        "_lost",
        "_next_offset",
        "_reset_pending",
        "_write_offset",
        "credit",
        "max_buffer",
        "reset_error_code",
        "state",
        "stream_id",
    )

    def __init__(
        self,
        stream_id: int,
        *,
        max_stream_data: int = 0,
        connection_credit: SendCredit | None = None,
        max_buffer: int = DEFAULT_MAX_BUFFER,
    ) -> None:
        if max_buffer < 1:
            raise ValueError(f"max_buffer must be positive, got {max_buffer}")
        self.stream_id = stream_id
        self.state = SendState.READY
        self.credit = SendCredit(max_stream_data)
        self._conn = connection_credit
        self.max_buffer = max_buffer
        self._data = SendBuffer()  # the bytes from _buf_offset to _write_offset
        self._buf_offset = 0  # everything below this offset is acked (and freed)
        self._write_offset = 0  # end of the data the application wrote
        self._next_offset = 0  # next byte never sent before (= flow-control credit used)
        self._acked = RangeSet()  # acked byte ranges above _buf_offset (inclusive)
        self._lost = RangeSet()  # byte ranges to retransmit (inclusive)
        # Cheap emptiness flags for the two sets (checked on every chunk and ack).
        self._has_acked = False
        self._has_lost = False
        self._final_size: int | None = None
        self._fin_sent = False
        self._fin_acked = False
        self._fin_lost = False
        self._reset_pending = False
        self.reset_error_code: int | None = None

    # -- application side ---------------------------------------------------

    def write(self, data: bytes, end_stream: bool = False) -> None:
        """Queue ``data`` (and optionally the end of the stream)."""
        if self._final_size is not None:
            raise StreamUsageError(f"stream {self.stream_id}: write after end of stream or reset")
        n = len(data)
        if self._write_offset + n > VARINT_MAX:
            raise StreamUsageError(f"stream {self.stream_id}: more than 2^62-1 bytes")
        if n:
            self._data.append(data)
            self._write_offset += n
        if end_stream:
            self._final_size = self._write_offset

    def end(self) -> None:
        """End the stream cleanly (FIN); no more writes."""
        self.write(b"", end_stream=True)

    @property
    def buffered(self) -> int:
        """Bytes written but not yet sent once."""
        return self._write_offset - self._next_offset

    @property
    def writable_bytes(self) -> int:
        if self._final_size is not None:
            return 0
        return max(0, self.max_buffer - (self._write_offset - self._next_offset))

    @property
    def writable(self) -> bool:
        """False when the application should wait (buffer full, ended or reset)."""
        return self.writable_bytes > 0

    def reset(self, error_code: int) -> bool:
        """Abandon the stream (RESET_STREAM); False if already reset or fully acknowledged.

        RFC 9000 §3.1: possible from Ready, Send and Data Sent.  The final size
        is the flow-control credit consumed so far (§4.5).
        """
        if self.state > SendState.DATA_SENT:
            return False
        self.state = SendState.RESET_SENT
        self.reset_error_code = error_code
        self._final_size = self._next_offset
        self._reset_pending = True
        self._data.clear(self._next_offset)
        self._buf_offset = self._write_offset = self._next_offset
        self._acked.clear()
        self._lost.clear()
        self._has_acked = self._has_lost = False
        self._fin_lost = False
        return True

    # -- peer signals ---------------------------------------------------------

    def on_stop_sending(self, error_code: int) -> bool:
        """STOP_SENDING received: reset with the peer's code (RFC 9000 §3.5).

        Returns True if a RESET_STREAM is now due.  In Data Sent the RFC lets us
        defer; resetting right away means lost data is never retransmitted.
        """
        return self.reset(error_code)

    def on_max_stream_data(self, limit: int) -> bool:
        """MAX_STREAM_DATA: True if new credit arrived (ignored unless it increases)."""
        return self.credit.raise_limit(limit)

    # -- packet builder side --------------------------------------------------

    @property
    def final_size(self) -> int | None:
        return self._final_size

    @property
    def highest_sent(self) -> int:
        """Largest offset sent + 1: the stream flow-control credit consumed."""
        return self._next_offset

    @property
    def acked_prefix(self) -> int:
        """Every byte below this offset is acknowledged (and freed)."""
        return self._buf_offset

    @property
    def held_bytes(self) -> int:
        """Bytes held in memory: unacknowledged plus unsent."""
        return len(self._data)

    def progress(self) -> SendProgress:
        """A snapshot of the figures above (``SendProgress``)."""
        return SendProgress(SendState(self.state), self._write_offset, self._next_offset,
                            self._buf_offset, self._has_lost or self._fin_lost, self._final_size)

    @property
    def reset_pending(self) -> bool:
        """A RESET_STREAM must be (re)sent: see ``reset_frame``."""
        return self._reset_pending

    def reset_frame(self) -> tuple[int, int] | None:
        """(error code, final size) for RESET_STREAM while one is due; marks it sent."""
        if not self._reset_pending or self.reset_error_code is None or self._final_size is None:
            return None
        self._reset_pending = False
        return self.reset_error_code, self._final_size

    def on_reset_acked(self) -> None:
        if self.state == SendState.RESET_SENT:
            self.state = SendState.RESET_RECVD

    def on_reset_lost(self) -> None:
        if self.state == SendState.RESET_SENT:
            self._reset_pending = True

    def has_data_to_send(self) -> bool:
        """Whether ``next_chunk`` would return something (given connection credit)."""
        if self.state > SendState.DATA_SENT:
            return False
        if self._has_lost or self._fin_lost:
            return True
        if self.state == SendState.DATA_SENT:
            return False
        unsent = self._write_offset - self._next_offset
        if unsent and self.credit.used < self.credit.limit:
            return self._conn is None or self._conn.used < self._conn.limit
        return self._final_size is not None and not unsent and not self._fin_sent

    def next_chunk(self, max_bytes: int) -> tuple[int, bytes, bool] | None:
        """(offset, data, fin) for the next STREAM frame, at most ``max_bytes`` of data.

        Retransmissions come first (they need no new credit), then new data
        limited by the stream's and the connection's credit.  A FIN with no
        data is returned even when ``max_bytes`` is 0.
        """
        state = self.state
        if state > _DATA_SENT:
            return None
        if self._has_lost or self._fin_lost:
            chunk = self._next_retransmission(max_bytes)
            if chunk is not None:
                return chunk
        if state == _DATA_SENT:
            return None

        offset = self._next_offset
        credit = self.credit
        n = self._write_offset - offset
        if max_bytes < n:
            n = max_bytes
        room = credit.limit - credit.used
        if room < n:
            n = room
        conn = self._conn
        if conn is not None:
            room = conn.limit - conn.used
            if room < n:
                n = room
        final_size = self._final_size
        if n <= 0:
            if final_size is None or offset != final_size or self._fin_sent:
                return None
            n = 0  # a bare FIN: no credit needed
        stop = offset + n
        if n:
            data = self._data.read(offset, stop)
            credit.used += n
            if conn is not None:
                conn.used += n
            self._next_offset = stop
        else:
            data = b""
        if stop == final_size:
            self._fin_sent = True
            self.state = _DATA_SENT
            return offset, data, True
        self.state = _SEND
        return offset, data, False

    def _next_retransmission(self, max_bytes: int) -> tuple[int, bytes, bool] | None:
        """The first lost range (up to ``max_bytes``), else a lost bare FIN, else None."""
        lost = self._lost
        first = lost.first()
        if first is not None:
            if max_bytes <= 0:
                return None
            start = first[0]
            stop = min(first[1] + 1, start + max_bytes)
            lost.discard_range(start, stop - 1)
            self._has_lost = bool(lost)
            data = self._data.read(start, stop)
            fin = stop == self._final_size and self._fin_sent
            if fin:
                self._fin_lost = False
            return start, data, fin
        if self._fin_lost:
            self._fin_lost = False
            final = self._final_size if self._final_size is not None else self._next_offset
            return final, b"", True
        return None

    def copy_range(self, offset: int, length: int, fin: bool,
                   max_bytes: int) -> tuple[int, bytes, bool] | None:
        """(offset, data, fin) to send ANOTHER copy of a STREAM frame already sent
        (multipath redundant/deadline scheduling): the part of [offset, offset+length)
        not yet acknowledged, at most ``max_bytes`` of it; None when nothing of it is
        left.  Changes nothing: the original stays in flight, and whichever copy is
        acknowledged first completes the range (``on_ack``)."""
        if self.state > _DATA_SENT:
            return None
        start = max(offset, self._buf_offset)
        stop = min(offset + length, self._next_offset, start + max(0, max_bytes))
        with_fin = fin and not self._fin_acked and stop == offset + length
        if stop <= start and not with_fin:
            return None
        if stop < start:
            stop = start
        return start, self._data.read(start, stop), with_fin

    def take_blocked_signal(self) -> int | None:
        """The limit for STREAM_DATA_BLOCKED when data waits on stream credit (once per limit)."""
        if self.state > SendState.SEND or self._write_offset == self._next_offset:
            return None
        limit = self.credit.take_blocked_signal()
        if limit is not None:
            self.state = SendState.SEND  # §3.1: sending STREAM_DATA_BLOCKED leaves Ready
        return limit

    def on_ack(self, offset: int, length: int, fin: bool) -> None:
        """A STREAM frame (offset, length, fin) we sent was acknowledged."""
        if self.state > _DATA_SENT:
            return  # already terminal or reset: nothing more to track
        end = offset + length
        if end > self._next_offset:
            end = self._next_offset
        if end > offset:
            if self._has_lost:
                self._lost.discard_range(offset, end - 1)
                self._has_lost = bool(self._lost)
            prefix = self._buf_offset
            if offset <= prefix and not self._has_acked:
                new_prefix = end  # in-order ack: the common case
            else:
                acked = self._acked
                acked.add_range(offset, end - 1)
                first = acked.first()
                if first is None or first[0] > prefix:
                    new_prefix = prefix
                else:
                    new_prefix = first[1] + 1
                    acked.remove_below(new_prefix, raise_floor=False)
                self._has_acked = bool(acked)
            if new_prefix > prefix:
                self._data.drop_below(new_prefix)
                self._buf_offset = new_prefix
        if fin:
            self._fin_acked = True
            self._fin_lost = False
        if self._fin_acked and self._buf_offset == self._final_size:
            # §3.1: all data and the FIN acknowledged -> Data Recvd (terminal).
            self.state = SendState.DATA_RECVD
            self._data.clear(self._buf_offset)

    def on_lost(self, offset: int, length: int, fin: bool) -> None:
        """A STREAM frame we sent was declared lost: queue what is still unacknowledged."""
        if self.state not in (SendState.SEND, SendState.DATA_SENT):
            return
        start = max(offset, self._buf_offset)
        end = min(offset + length, self._next_offset)
        if start < end:
            if self._has_acked:
                for first, last in self._acked.missing_in(start, end - 1):
                    self._lost.add_range(first, last)
            else:
                self._lost.add_range(start, end - 1)
            self._has_lost = bool(self._lost)
        if fin and not self._fin_acked:
            self._fin_lost = True

    @property
    def is_finished(self) -> bool:
        """Terminal state reached (Data Recvd or Reset Recvd): the stream can be freed."""
        return self.state in (SendState.DATA_RECVD, SendState.RESET_RECVD)

    def __repr__(self) -> str:
        return (
            f"SendStream(id={self.stream_id}, state={self.state.name}, "
            f"acked={self._buf_offset}, sent={self._next_offset}, written={self._write_offset})"
        )
