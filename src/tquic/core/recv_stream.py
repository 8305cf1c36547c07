"""RecvStream: the receiving part of a stream (RFC 9000 §2.2, §3.2, §4.5).

Data that arrives in order goes straight onto a queue of ready chunks; data
that arrives early is kept as disjoint pieces (a dict keyed by offset plus a
sorted list of offsets), trimmed against what is already held so nothing is
stored twice and no work is done per byte.  Buffering is bounded by the
stream's receive window (FLOW_CONTROL_ERROR beyond it) and by a cap on the
number of pieces (RFC 9000 §21.10: limit reassembly tracking structures).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from enum import IntEnum

from tquic.core.empty_queue import EMPTY, writable
from tquic.core.flow import ReceiveWindow
from tquic.wire.errors import QuicError, TransportErrorCode

FRAME_STREAM = 0x08
FRAME_RESET_STREAM = 0x04

DEFAULT_MAX_PIECES = 1 << 14

_RECV = 0  # RecvState.RECV, as a plain int for the hot path


class RecvState(IntEnum):
    """RFC 9000 §3.2, Figure 3."""

    RECV = 0
    SIZE_KNOWN = 1
    DATA_RECVD = 2
    DATA_READ = 3  # terminal
    RESET_RECVD = 4
    RESET_READ = 5  # terminal


class RecvStream:
    """Receiving part of one stream.

    ``max_stream_data`` is the initial window we advertised for this stream,
    ``max_window`` the bound for auto-tuning it.  ``connection_window`` is the
    connection-level ``ReceiveWindow`` shared by all streams; it is charged
    for the new flow-control credit each frame uses and credited back as the
    application reads (or as data is discarded).
    """

    __slots__ = (
        "_conn",
        "_contig",
        "_final_size",
        "_highest",
        "_pieces",
        "_read_offset",
        "_ready",
        "_ready_bytes",
        "_released",
        "_starts",
        "max_pieces",
        "reset_error_code",
        "state",
        "stop_sending_error_code",
        "stream_id",
        "window",
    )

    def __init__(
        self,
        stream_id: int,
        *,
        max_stream_data: int,
        max_window: int | None = None,
        connection_window: ReceiveWindow | None = None,
        max_pieces: int = DEFAULT_MAX_PIECES,
    ) -> None:
        self.stream_id = stream_id
        self.state = RecvState.RECV
        self.window = ReceiveWindow(max_stream_data, max_window)
        self._conn = connection_window
        self.max_pieces = max_pieces
        self._ready: deque[bytes] = EMPTY  # contiguous, unread (core/empty_queue.py)
        self._ready_bytes = 0
        self._read_offset = 0  # delivered to the application
        self._contig = 0  # end of the contiguous data received (= read + ready)
        self._highest = 0  # largest offset received + 1 (flow-control credit used)
        self._released = 0  # credit handed back to the windows (read or discarded)
        self._pieces: dict[int, bytes] = {}  # out-of-order data by offset, disjoint
        self._starts: list[int] = []  # sorted keys of _pieces
        self._final_size: int | None = None
        self.reset_error_code: int | None = None
        self.stop_sending_error_code: int | None = None

    # -- frames from the peer -------------------------------------------------

    def on_frame(self, offset: int, data: bytes, fin: bool = False) -> int:
        """Process a STREAM frame; returns the new flow-control credit it used.

        Raises QuicError: FINAL_SIZE_ERROR for data beyond a known final size or
        a changed final size (§4.5); FLOW_CONTROL_ERROR beyond the stream's or
        the connection's window (§4.1).
        """
        end = offset + len(data)
        final_size = self._final_size
        if final_size is not None:
            if end > final_size or (fin and end != final_size):
                raise QuicError(
                    TransportErrorCode.FINAL_SIZE_ERROR,
                    f"stream {self.stream_id}: data to {end}, final size is {final_size}",
                    frame_type=FRAME_STREAM,
                )
        elif fin and end < self._highest:
            raise QuicError(
                TransportErrorCode.FINAL_SIZE_ERROR,
                f"stream {self.stream_id}: final size {end} below received {self._highest}",
                frame_type=FRAME_STREAM,
            )
        delta = end - self._highest
        if delta > 0:
            # ReceiveWindow.add_received, inlined: this runs for every frame.
            window = self.window
            received = window.received + delta
            if received > window.limit:
                window.add_received(delta, FRAME_STREAM)  # raises FLOW_CONTROL_ERROR
            conn = self._conn
            if conn is not None:
                conn_received = conn.received + delta
                if conn_received > conn.limit:
                    conn.add_received(delta, FRAME_STREAM)  # raises FLOW_CONTROL_ERROR
                conn.received = conn_received
            window.received = received
            self._highest = end
        else:
            delta = 0
        if fin and final_size is None:
            self._final_size = end
            if self.state == RecvState.RECV:
                self.state = RecvState.SIZE_KNOWN
        if self.state > RecvState.SIZE_KNOWN:
            return delta  # all data already received, or reset: discard (§3.2)

        contig = self._contig
        if end > contig:
            if offset <= contig:
                # In order (possibly overlapping what we hold): ready to read.
                if offset < contig:
                    data = data[contig - offset :]
                ready = self._ready = writable(self._ready)
                ready.append(data)
                self._ready_bytes += end - contig
                self._contig = end
                if self._starts:
                    self._drain_pieces()
            elif data:
                self._insert_piece(offset, data)
        if self._contig == self._final_size:
            # A FIN that arrives after the application already read everything
            # (a bare FIN) leaves nothing to read: the stream is read to its end.
            self.state = (RecvState.DATA_READ if self._read_offset == self._contig
                          else RecvState.DATA_RECVD)
        if self.stop_sending_error_code is not None:
            self._discard_ready()
        return delta

    def _drain_pieces(self) -> None:
        """Move pieces that now touch the contiguous data onto the ready queue."""
        ready = self._ready = writable(self._ready)
        starts, pieces = self._starts, self._pieces
        contig = self._contig
        i = 0
        n = len(starts)
        while i < n and starts[i] <= contig:
            start = starts[i]
            piece = pieces.pop(start)
            end = start + len(piece)
            if end > contig:
                if start < contig:
                    piece = piece[contig - start :]
                ready.append(piece)
                self._ready_bytes += end - contig
                contig = end
            i += 1
        del starts[:i]
        self._contig = contig
        if self._conn is not None:
            self._conn.pieces -= i

    def _insert_piece(self, offset: int, data: bytes) -> None:
        """Store out-of-order data, trimmed against neighbouring pieces."""
        starts, pieces = self._starts, self._pieces
        end = offset + len(data)
        i = bisect_right(starts, offset)  # pieces [0, i) start at or before offset
        if i:
            prev_start = starts[i - 1]
            prev_end = prev_start + len(pieces[prev_start])
            if prev_end >= end:
                return  # already held entirely
            if prev_end > offset:
                data = data[prev_end - offset :]
                offset = prev_end
        j = i
        n = len(starts)
        while j < n and starts[j] < end:
            start = starts[j]
            if start + len(pieces[start]) <= end:
                del pieces[start]  # covered by the new piece: the new one replaces it
                j += 1
            else:
                data = data[: start - offset]  # keep the existing piece's bytes
                end = start
                break
        del starts[i:j]
        conn = self._conn
        if conn is not None:
            conn.pieces -= j - i
        if end <= offset:
            return
        if len(starts) >= self.max_pieces:
            # RFC 9000 §21.10: bound the reassembly structure.
            raise QuicError(
                TransportErrorCode.PROTOCOL_VIOLATION,
                f"stream {self.stream_id}: more than {self.max_pieces} out-of-order fragments",
                frame_type=FRAME_STREAM,
            )
        if conn is not None:
            if conn.pieces >= conn.max_pieces:
                raise QuicError(
                    TransportErrorCode.PROTOCOL_VIOLATION,
                    f"more than {conn.max_pieces} out-of-order fragments in the connection",
                    frame_type=FRAME_STREAM,
                )
            conn.pieces += 1
        starts.insert(i, offset)
        pieces[offset] = data

    def on_reset(self, error_code: int, final_size: int) -> bool:
        """Process RESET_STREAM; True if the application should be told of the reset.

        FINAL_SIZE_ERROR if it changes a known final size or is below data
        received (§4.5); FLOW_CONTROL_ERROR if the final size exceeds a window.
        A reset after all data arrived is suppressed (§3.2 allows it): the
        application still reads everything.
        """
        known = self._final_size
        if (known is not None and final_size != known) or final_size < self._highest:
            raise QuicError(
                TransportErrorCode.FINAL_SIZE_ERROR,
                f"stream {self.stream_id}: RESET_STREAM final size {final_size}, "
                f"known {known}, received to {self._highest}",
                frame_type=FRAME_RESET_STREAM,
            )
        delta = final_size - self._highest
        if delta:
            self.window.add_received(delta, FRAME_RESET_STREAM)
            if self._conn is not None:
                self._conn.add_received(delta, FRAME_RESET_STREAM)
            self._highest = final_size
        self._final_size = final_size
        if self.state > RecvState.SIZE_KNOWN:
            return False
        self.state = RecvState.RESET_RECVD
        self.reset_error_code = error_code
        self._drop_buffers()
        # Everything up to the final size is accounted for: give the credit back.
        self._release(final_size)
        return True

    def mark_reset_read(self) -> None:
        """The application was told of the reset (Reset Recvd -> Reset Read)."""
        if self.state == RecvState.RESET_RECVD:
            self.state = RecvState.RESET_READ

    # -- application side ---------------------------------------------------

    def read(self, max_bytes: int | None = None) -> bytes:
        """Contiguous data not yet read (at most ``max_bytes``); b"" if none."""
        ready = self._ready
        if not ready:
            data = b""
        elif max_bytes is None or max_bytes >= self._ready_bytes:
            data = ready[0] if len(ready) == 1 else b"".join(ready)
            self._ready = EMPTY  # a stream read to its last byte holds no queue
            n = self._ready_bytes
            self._ready_bytes = 0
            read_offset = self._read_offset = self._read_offset + n
            if self.state == _RECV:
                # Fast path of _release (the whole read is new credit to hand back).
                self._released = read_offset
                self.window.consumed += n
                if self._conn is not None:
                    self._conn.consumed += n
                return data
        else:
            parts: list[bytes] = []
            want = max_bytes
            while want > 0:
                chunk = ready[0]
                if len(chunk) <= want:
                    parts.append(ready.popleft())
                    want -= len(chunk)
                else:
                    parts.append(chunk[:want])
                    ready[0] = chunk[want:]
                    want = 0
            data = b"".join(parts)
            self._read_offset += max_bytes
            self._ready_bytes -= max_bytes
        if data:
            self._release(self._read_offset)
        if self.state == RecvState.DATA_RECVD and self._read_offset == self._final_size:
            self.state = RecvState.DATA_READ  # terminal
        return data

    @property
    def readable(self) -> int:
        """Bytes ready to read."""
        return self._ready_bytes

    @property
    def at_eof(self) -> bool:
        """Everything up to the final size was delivered."""
        return self.state == RecvState.DATA_READ

    def stop_sending(self, error_code: int) -> bool:
        """The application stops reading; True if a STOP_SENDING should be sent.

        RFC 9000 §3.5: useful in Recv and Size Known.  Data already buffered and
        any that still arrives is discarded, but still counts for flow control.
        """
        if self.state > RecvState.SIZE_KNOWN or self.stop_sending_error_code is not None:
            return False
        self.stop_sending_error_code = error_code
        self._discard_ready()
        return True

    @property
    def needs_stop_sending(self) -> bool:
        """A lost STOP_SENDING should be resent (§3.5: only in Recv / Size Known)."""
        return self.stop_sending_error_code is not None and self.state <= RecvState.SIZE_KNOWN

    def max_stream_data_update(self, now: float, rtt: float | None = None) -> int | None:
        """A new limit for MAX_STREAM_DATA, or None (only sent in Recv, §3.2)."""
        if self.state != RecvState.RECV or self.stop_sending_error_code is not None:
            return None
        return self.window.should_send_update(now, rtt)

    # -- introspection --------------------------------------------------------

    @property
    def final_size(self) -> int | None:
        return self._final_size

    @property
    def highest_received(self) -> int:
        return self._highest

    @property
    def read_offset(self) -> int:
        return self._read_offset

    @property
    def piece_count(self) -> int:
        return len(self._starts)

    @property
    def is_finished(self) -> bool:
        """Terminal state (Data Read or Reset Read): the stream can be freed."""
        return self.state in (RecvState.DATA_READ, RecvState.RESET_READ)

    # -- internals ----------------------------------------------------------

    def _release(self, upto: int) -> None:
        n = upto - self._released
        if n > 0:
            self._released = upto
            self.window.add_consumed(n)
            if self._conn is not None:
                self._conn.add_consumed(n)

    def _discard_ready(self) -> None:
        if self._ready_bytes:
            self._read_offset += self._ready_bytes
            self._ready.clear()
            self._ready_bytes = 0
            self._release(self._read_offset)
        if self.state == RecvState.DATA_RECVD:
            self.state = RecvState.DATA_READ  # nothing left for the application

    def _drop_buffers(self) -> None:
        self._ready.clear()
        self._ready_bytes = 0
        if self._conn is not None:
            self._conn.pieces -= len(self._starts)
        self._pieces.clear()
        self._starts.clear()

    def __repr__(self) -> str:
        return (
            f"RecvStream(id={self.stream_id}, state={self.state.name}, "
            f"read={self._read_offset}, contiguous={self._contig}, highest={self._highest})"
        )
