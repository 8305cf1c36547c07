"""A token-bucket pacer for one path (RFC 9002 §7.7).

The bucket fills at the pacing rate and holds at most ``burst_packets`` full
datagrams, so a sender that was idle may send a burst of about ten datagrams
(the initial window, RFC 9002 §7.7 "Senders SHOULD limit bursts to the initial
congestion window") and is then spread out at the rate.  A rate of ``None``
means "do not pace": that is the state before the first RTT sample, when the
congestion window (the initial window) is the only limit.

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
_TOKEN_EPSILON = 1e-6  # bytes


def window_pacing_rate(congestion_window: int, smoothed_rtt: float) -> float | None:
    """RFC 9002 §7.7: rate = N * congestion_window / smoothed_rtt (bytes per second)."""
    if smoothed_rtt <= 0 or congestion_window <= 0:
        return None
    return PACING_GAIN * congestion_window / smoothed_rtt


class Pacer:
    """Token bucket: ``next_send_time(now, size)`` says when ``size`` bytes may leave."""

    __slots__ = ("_last_update", "_rate", "_tokens", "capacity", "max_datagram_size")

    def __init__(self, max_datagram_size: int, burst_packets: int = DEFAULT_BURST_PACKETS) -> None:
        if max_datagram_size <= 0:
            raise ValueError(f"max_datagram_size must be positive, got {max_datagram_size!r}")
        if burst_packets < 1:
            raise ValueError(f"burst_packets must be at least 1, got {burst_packets!r}")
        self.max_datagram_size = max_datagram_size
        self.capacity = float(burst_packets * max_datagram_size)
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
        if rate is not None and not (rate > 0 and math.isfinite(rate)):
            rate = None
        self._refill(now)
        self._rate = rate

    def _refill(self, now: float) -> None:
        last = self._last_update
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
        self._refill(now)
        # A datagram larger than the bucket would otherwise wait forever.
        need = min(float(size), self.capacity)
        # A small tolerance: at the time this method returned earlier, the refill
        # can fall short by a rounding step, which would only cause another wakeup.
        if self._tokens >= need - _TOKEN_EPSILON:
            return now
        return now + (need - self._tokens) / self._rate

    def on_packet_sent(self, now: float, size: int) -> None:
        """Spend ``size`` bytes of tokens (probes may overdraw; the debt is bounded)."""
        self._refill(now)
        if self._rate is None:
            return
        self._tokens = max(self._tokens - size, -self.capacity)
