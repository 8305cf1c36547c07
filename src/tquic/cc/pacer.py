"""A token-bucket pacer for one path (RFC 9002 §7.7).

The bucket fills at the pacing rate and holds at most ``burst_packets`` full
datagrams, so a sender that was idle may send a burst of about ten datagrams
(the initial window, RFC 9002 §7.7 "Senders SHOULD limit bursts to the initial
congestion window") and is then spread out at the rate.  At high rates the
bucket also holds ``BURST_INTERVAL`` worth of the rate (at most
``MAX_BURST_PACKETS`` datagrams): an event loop cannot sleep for less than
about a millisecond (epoll's timeout is in whole milliseconds), so a bucket of
ten datagrams would cap the sender at ten datagrams per wakeup, far below the
rate.  RFC 9002 §7.7 allows for it: "Practical considerations, such as
packetization, scheduling delays, and computational efficiency, can cause a
sender to deviate from this rate over time periods that are much shorter than
an RTT", and a sender that knows the path absorbs larger bursts "MAY use a
higher limit".  A rate of ``None`` means "do not pace": that is the state
before the first RTT sample, when the congestion window (the initial window)
is the only limit.

The path sets the rate before asking (``set_rate``), from the controller's
``pacing_rate`` when it has one, else ``N * cwnd / smoothed_rtt`` with N = 1.25
(RFC 9002 §7.7); see :func:`window_pacing_rate`.
"""

from __future__ import annotations

import math

# RFC 9002 §7.7: "Using a value for N that is small, but at least 1 (for example,
# 1.25) ensures that variations in RTT do not result in underutilization".
PACING_GAIN = 1.25
DEFAULT_BURST_PACKETS = 10
# A wakeup's worth of the rate: timers fire at millisecond granularity or later.
BURST_INTERVAL = 0.002  # seconds
MAX_BURST_PACKETS = 64
# A wait shorter than this is not worth a timer: the loop would sleep at least a
# millisecond anyway (and, on a busy machine, a scheduler slice), so the packet
# leaves now and the debt it leaves in the bucket lengthens the next wait instead.
# The average rate is unchanged.
TIMER_GRANULARITY = 0.001  # seconds
_TOKEN_EPSILON = 1e-6  # bytes


def window_pacing_rate(congestion_window: int, smoothed_rtt: float) -> float | None:
    """RFC 9002 §7.7: rate = N * congestion_window / smoothed_rtt (bytes per second)."""
    if smoothed_rtt <= 0 or congestion_window <= 0:
        return None
    return PACING_GAIN * congestion_window / smoothed_rtt


class Pacer:
    """Token bucket: ``next_send_time(now, size)`` says when ``size`` bytes may leave."""

    __slots__ = ("_last_update", "_max_capacity", "_min_capacity", "_rate", "_tokens",
                 "capacity", "max_datagram_size")

    def __init__(self, max_datagram_size: int, burst_packets: int = DEFAULT_BURST_PACKETS) -> None:
        if max_datagram_size <= 0:
            raise ValueError(f"max_datagram_size must be positive, got {max_datagram_size!r}")
        if burst_packets < 1:
            raise ValueError(f"burst_packets must be at least 1, got {burst_packets!r}")
        self.max_datagram_size = max_datagram_size
        self._min_capacity = float(burst_packets * max_datagram_size)
        self._max_capacity = float(max(burst_packets, MAX_BURST_PACKETS) * max_datagram_size)
        self.capacity = self._min_capacity
        self._tokens = self.capacity
        self._rate: float | None = None
        self._last_update: float | None = None

    @property
    def rate(self) -> float | None:
        """Bytes per second, or None when not pacing."""
        return self._rate

    @property
    def tokens(self) -> float:
        """Bytes that may be sent right now (as of the last update)."""
        return self._tokens

    def set_rate(self, rate: float | None, now: float) -> None:
        """Change the rate; tokens earned so far are credited at the old rate first."""
        if rate == self._rate:  # the common case: called for every packet
            # _refill has nothing to do when already refilled at ``now`` (paced): it is
            # called only otherwise, here and below (several calls per packet).
            if now != self._last_update or rate is None:
                self._refill(now)
            return
        if rate is not None and not (rate > 0 and math.isfinite(rate)):
            rate = None
        self._refill(now)
        self._rate = rate
        if rate is None:
            self.capacity = self._min_capacity
        else:
            self.capacity = min(max(self._min_capacity, rate * BURST_INTERVAL),
                                self._max_capacity)
        if self._tokens > self.capacity:
            self._tokens = self.capacity

    def _refill(self, now: float) -> None:
        last = self._last_update
        if now == last and self._rate is not None:
            return  # nothing earned since the last call (several calls per packet)
        self._last_update = now
        if self._rate is None:
            # Unpaced: the bucket stays full so that pacing, once it starts, begins
            # with one burst rather than a stall.
            self._tokens = self.capacity
            return
        if last is not None and now > last:
            self._tokens = min(self.capacity, self._tokens + (now - last) * self._rate)

    def next_send_time(self, now: float, size: int) -> float:
        """``now`` if ``size`` bytes may be sent now, else the time they may."""
        if self._rate is None:
            return now
        if now != self._last_update:
            self._refill(now)
        # A datagram larger than the bucket would otherwise wait forever.
        need = min(float(size), self.capacity)
        # A small tolerance: at the time this method returned earlier, the refill
        # can fall short by a rounding step, which would only cause another wakeup.
        missing = need - self._tokens
        if missing <= _TOKEN_EPSILON:
            return now
        wait = missing / self._rate
        if wait < TIMER_GRANULARITY:
            return now
        return now + wait

    def on_packet_sent(self, now: float, size: int) -> None:
        """Spend ``size`` bytes of tokens (probes may overdraw; the debt is bounded)."""
        if self._rate is None:
            self._refill(now)
            return
        if now != self._last_update:
            self._refill(now)
        self._tokens = max(self._tokens - size, -self.capacity)
