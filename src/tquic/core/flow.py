"""Flow control: the peer's credit we spend, and the window we grant (RFC 9000 §4).

The same two classes serve a stream (MAX_STREAM_DATA / STREAM_DATA_BLOCKED)
and the connection (MAX_DATA / DATA_BLOCKED):

- ``SendCredit``: the limit the peer advertised and how much of it we used.
- ``ReceiveWindow``: the limit we advertised, how much the peer used, how
  much the application consumed, and when to advertise more -- with
  auto-tuning of the window size (RFC 9000 §4.2 suggests it; the doubling
  when a window lasts under ~2 RTTs follows common TCP/QUIC practice).

Nothing here reads a clock: ``now`` and the RTT are passed in.
"""

from __future__ import annotations

from tquic.wire.errors import QuicError, TransportErrorCode

VARINT_MAX = (1 << 62) - 1


class SendCredit:
    """Credit granted by the peer (initial transport parameter, then MAX_DATA/MAX_STREAM_DATA)."""

    __slots__ = ("_blocked_signalled", "limit", "used")

    def __init__(self, limit: int = 0) -> None:
        if not 0 <= limit <= VARINT_MAX:
            raise ValueError(f"flow-control limit out of range: {limit}")
        self.limit = limit
        self.used = 0
        self._blocked_signalled = -1  # limit value for which a *_BLOCKED was produced

    @property
    def available(self) -> int:
        return self.limit - self.used

    @property
    def blocked(self) -> bool:
        return self.used >= self.limit

    def consume(self, n: int) -> None:
        """Spend ``n`` bytes of credit (a programming error if not available)."""
        if n > self.limit - self.used or n < 0:
            raise QuicError(
                TransportErrorCode.INTERNAL_ERROR,
                f"flow-control credit overrun: {n} > {self.limit - self.used}",
            )
        self.used += n

    def raise_limit(self, limit: int) -> bool:
        """Apply MAX_DATA / MAX_STREAM_DATA; True if it increased the limit.

        RFC 9000 §4.1: a sender MUST ignore values that do not increase it.
        """
        if limit <= self.limit:
            return False
        self.limit = limit
        return True

    def take_blocked_signal(self) -> int | None:
        """The limit to put in DATA_BLOCKED / STREAM_DATA_BLOCKED, once per limit value.

        Call it when there is data waiting to be sent; it returns None unless
        the credit is exhausted and this limit has not been signalled yet
        (RFC 9000 §4.1: a sender SHOULD send it when blocked).
        """
        if self.used < self.limit or self._blocked_signalled == self.limit:
            return None
        self._blocked_signalled = self.limit
        return self.limit

    def __repr__(self) -> str:
        return f"SendCredit(limit={self.limit}, used={self.used})"


DEFAULT_MAX_CONNECTION_PIECES = 1 << 16


class ReceiveWindow:
    """The limit we advertise and its accounting.

    ``received`` is the flow-control credit the peer used: for a stream the
    largest offset received, for the connection the sum over streams (RFC
    9000 §4.1).  ``consumed`` is what the application read (or what was
    discarded: reset / STOP_SENDING) and so may be re-granted.
    """

    __slots__ = (
        "_last_update_time",
        "consumed",
        "limit",
        "max_pieces",
        "max_window",
        "pieces",
        "received",
        "window",
    )

    def __init__(self, window: int, max_window: int | None = None) -> None:
        if not 0 <= window <= VARINT_MAX:
            raise ValueError(f"flow-control window out of range: {window}")
        if max_window is None:
            max_window = window
        if max_window < window:
            raise ValueError(f"max_window ({max_window}) is below the initial window ({window})")
        self.window = window
        self.max_window = min(max_window, VARINT_MAX)
        self.limit = window
        self.received = 0
        self.consumed = 0
        self._last_update_time: float | None = None
        # A connection's window also counts the out-of-order fragments its streams hold
        # (RFC 9000 §21.10: bound reassembly across streams, not only per stream).
        self.pieces = 0
        self.max_pieces = DEFAULT_MAX_CONNECTION_PIECES

    def add_received(self, n: int, frame_type: int | None = None) -> None:
        """The peer used ``n`` more bytes of credit; FLOW_CONTROL_ERROR beyond the limit."""
        received = self.received + n
        if received > self.limit:
            raise QuicError(
                TransportErrorCode.FLOW_CONTROL_ERROR,
                f"peer sent {received} bytes, limit is {self.limit}",
                frame_type=frame_type,
            )
        self.received = received

    def add_consumed(self, n: int) -> None:
        """The application consumed (or we discarded) ``n`` bytes."""
        self.consumed += n

    def should_send_update(self, now: float, rtt: float | None = None) -> int | None:
        """A new limit to advertise, or None while more than half the window remains.

        Auto-tuning: if the previous update was less than 2 RTTs ago, the peer
        uses a window faster than it can be refreshed, so the window doubles
        (bounded by ``max_window``).  The returned limit is committed: it is
        what MAX_DATA / MAX_STREAM_DATA must carry (resend ``limit`` if lost).
        """
        if self.limit - self.consumed >= (self.window + 1) // 2:
            return None
        last = self._last_update_time
        if (
            rtt is not None
            and rtt > 0.0
            and last is not None
            and now - last < 2.0 * rtt
            and self.window < self.max_window
        ):
            self.window = min(self.window * 2, self.max_window)
        self._last_update_time = now
        new_limit = min(self.consumed + self.window, VARINT_MAX)
        if new_limit <= self.limit:
            return None
        self.limit = new_limit
        return new_limit

    def __repr__(self) -> str:
        return (
            f"ReceiveWindow(limit={self.limit}, window={self.window}, "
            f"received={self.received}, consumed={self.consumed})"
        )
