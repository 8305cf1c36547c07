"""DPLPMTUD for QUIC (RFC 8899 §5; RFC 9000 §14.3): search the path MTU upward from
1200 bytes with probe packets (PING + PADDING) that the loss detector acknowledges
or declares lost like any other packet.

Search: try the ceiling first (the common case on clean paths is that it
works), then binary search between the largest size acknowledged and the
smallest size lost MAX_PROBES times.  Once the window is narrower than
SEARCH_GRANULARITY the search stops until RAISE_TIMER later (§5.1.1
PMTU_RAISE_TIMER).
"""

from __future__ import annotations

MAX_PROBES = 3  # RFC 8899 §5.1.2 MAX_PROBES
SEARCH_GRANULARITY = 16
RAISE_TIMER = 600.0  # RFC 8899 §5.1.1 PMTU_RAISE_TIMER


class Pmtud:
    """The probing state of one path."""

    __slots__ = ("_failures", "ceiling", "high", "in_flight", "low", "resume_at", "searching")

    def __init__(self, base: int, ceiling: int) -> None:
        if ceiling < base:
            raise ValueError("ceiling below base")
        self.low = base  # largest size known to work
        self.high = ceiling  # largest size not yet known to fail
        self.ceiling = ceiling
        self.in_flight: int | None = None
        self._failures: dict[int, int] = {}
        self.searching = ceiling - base >= SEARCH_GRANULARITY
        self.resume_at: float | None = None

    @property
    def current(self) -> int:
        return self.low

    def probe_size(self, now: float) -> int | None:
        """The size to probe now, or None (a probe in flight, or search finished)."""
        if not self.searching:
            if self.resume_at is not None and now >= self.resume_at and self.low < self.ceiling:
                self.resume_at = None
                self.high = self.ceiling
                self._failures.clear()
                self.searching = True
            else:
                return None
        if self.in_flight is not None:
            return None
        if self.high == self.ceiling and self._failures.get(self.ceiling, 0) == 0:
            return self.ceiling
        return (self.low + self.high + 1) // 2

    def on_probe_sent(self, size: int, now: float) -> None:
        self.in_flight = size

    def on_probe_acked(self, size: int) -> int:
        """A probe arrived: the path carries ``size``; returns the new PMTU."""
        if self.in_flight == size:
            self.in_flight = None
        if size > self.low:
            self.low = size
        self._check_done()
        return self.low

    def on_probe_lost(self, size: int) -> None:
        if self.in_flight == size:
            self.in_flight = None
        count = self._failures.get(size, 0) + 1
        self._failures[size] = count
        if count >= MAX_PROBES:
            self.high = size - 1
        self._check_done()

    def _check_done(self) -> None:
        if self.high - self.low < SEARCH_GRANULARITY:
            self.searching = False
            self.resume_at = None

    def schedule_raise(self, now: float) -> None:
        if not self.searching and self.low < self.ceiling:
            self.resume_at = now + RAISE_TIMER

    def next_deadline(self) -> float | None:
        return self.resume_at
