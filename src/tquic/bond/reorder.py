"""The receiver's reorder buffer: IP packets released in sequence order, waiting a bounded time.

Per-packet scheduling over links of different delay delivers the tunnel's IP
packets out of order, and an inner TCP reads three out-of-order segments as a
loss (RFC 5681 §3.2 fast retransmit): it halves its window for nothing.  The
sender numbers every packet (our extension context, :mod:`tquic.bond.extensions`);
this buffer releases them in order.  A missing packet is waited for at most
``bound`` seconds (measured from the moment the oldest held packet arrived);
then the gap is skipped and counted lost.  A packet that arrives after its gap
was skipped is released at once (late: the inner TCP still wants it).

``bound`` follows the paths' RTT spread (:func:`adaptive_bound`); 0 turns the
buffer into a pass-through (one path carries everything: nothing to reorder).

Sans-I/O: every call takes ``now``; released packets go to ``deliver``; the
owner arms a timer on :meth:`ReorderBuffer.next_deadline` and calls
:meth:`ReorderBuffer.expire`.  Sequence numbers are 32-bit and wrap (serial
arithmetic, RFC 1982); internally they are unwrapped to a growing integer.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

SEQ_BITS = 32
_SEQ_MOD = 1 << SEQ_BITS
_HALF = 1 << (SEQ_BITS - 1)

# Upper edges (seconds) of the added-delay histogram's buckets; the last is open.
DELAY_BUCKETS: tuple[float, ...] = (0.001, 0.002, 0.005, 0.010, 0.020, 0.050, 0.100, 0.200)


@dataclass(frozen=True, slots=True)
class ReorderStats:
    """What the buffer did (a snapshot; counters since it was created)."""

    bound: float  # the current wait bound (s); 0 = pass-through
    received: int  # packets pushed
    in_order: int  # released at once, in order
    held: int  # released after waiting for an earlier packet
    holding: int  # waiting now
    lost: int  # sequence numbers skipped after the wait bound (or the size bound)
    late: int  # arrived after their number was skipped (released at once)
    duplicates: int  # a number already held
    delay_histogram: tuple[int, ...]  # held packets per DELAY_BUCKETS bucket (+1 open bucket)

    def as_dict(self) -> dict[str, object]:
        return {"bound_ms": round(self.bound * 1000, 3), "received": self.received,
                "in_order": self.in_order, "held": self.held, "holding": self.holding,
                "lost": self.lost, "late": self.late, "duplicates": self.duplicates,
                "delay_histogram_ms": {
                    **{f"le_{edge * 1000:g}": n for edge, n in
                       zip(DELAY_BUCKETS, self.delay_histogram, strict=False)},
                    "more": self.delay_histogram[-1]}}


class ReorderBuffer:
    """Releases packets in sequence order; ``deliver(packet)`` receives each."""

    __slots__ = (
        "_arrivals",
        "_bound",
        "_deliver",
        "_dup",
        "_heap",
        "_held",
        "_hist",
        "_in_order",
        "_late",
        "_lost",
        "_max_held",
        "_next",
        "_received",
        "_released_held",
    )

    def __init__(self, deliver: Callable[[bytes], None], *, bound: float = 0.0,
                 max_held: int = 2048) -> None:
        if max_held < 1:
            raise ValueError(f"max_held: must be >= 1, got {max_held}")
        self._deliver = deliver
        self._bound = 0.0
        self._max_held = max_held
        self._next = -1  # unwrapped number expected next; -1 until the first packet
        self._held: dict[int, tuple[bytes, float]] = {}
        self._heap: list[int] = []  # unwrapped numbers held
        self._arrivals: deque[tuple[float, int]] = deque()  # (arrival, number) oldest first
        self._received = self._in_order = self._released_held = 0
        self._lost = self._late = self._dup = 0
        self._hist = [0] * (len(DELAY_BUCKETS) + 1)
        self.set_bound(bound, 0.0)

    @property
    def bound(self) -> float:
        return self._bound

    @property
    def holding(self) -> int:
        """Packets waiting now."""
        return len(self._held)

    def set_bound(self, bound: float, now: float) -> None:
        """Change the wait bound; 0 releases everything held and passes packets through."""
        if not bound >= 0:
            raise ValueError(f"bound: must be >= 0 seconds, got {bound}")
        self._bound = bound
        if bound == 0 and self._held:
            self._flush(now)
        elif self._held:
            self.expire(now)

    def push(self, seq: int, packet: bytes, now: float) -> None:
        """A packet with 32-bit sequence number ``seq`` arrived."""
        self._received += 1
        expected = self._next
        if expected < 0:
            self._next = expected = seq  # the first packet defines the start
        diff = (seq - expected) % _SEQ_MOD
        if diff == 0 and not self._held:
            self._next = expected + 1  # the common case: in order, nothing held
            self._in_order += 1
            self._deliver(packet)
            return
        if diff >= _HALF:  # behind: its number was skipped (or released) already
            self._late += 1
            self._deliver(packet)
            return
        number = expected + diff
        if self._bound == 0:
            # Pass-through: what is skipped here may still come (then it counts late).
            self._lost += diff
            self._next = number + 1
            self._in_order += 1
            self._deliver(packet)
            return
        if diff == 0:  # fills the gap: goes at once, then whatever it unblocks
            self._next = number + 1
            self._in_order += 1
            self._deliver(packet)
            self._release_ready(now)
            return
        if number in self._held:
            self._dup += 1
            return
        self._held[number] = (packet, now)
        heapq.heappush(self._heap, number)
        self._arrivals.append((now, number))
        self._release_ready(now)
        if len(self._held) > self._max_held:
            self._skip_to(self._heap[0], now)
            self._release_ready(now)

    def next_deadline(self) -> float | None:
        """When :meth:`expire` has something to do (None: nothing is held)."""
        arrivals = self._arrivals
        held = self._held
        while arrivals and arrivals[0][1] not in held:
            arrivals.popleft()
        if not arrivals:
            return None
        return arrivals[0][0] + self._bound

    def expire(self, now: float) -> None:
        """Skip the gaps that were waited for long enough and release what follows them."""
        while True:
            deadline = self.next_deadline()
            if deadline is None or deadline > now:
                return
            self._skip_to(self._arrivals[0][1], now)
            self._release_ready(now)

    def stats(self) -> ReorderStats:
        return ReorderStats(self._bound, self._received, self._in_order, self._released_held,
                            len(self._held), self._lost, self._late, self._dup, tuple(self._hist))

    # -- internals ------------------------------------------------------------------------

    def _release_ready(self, now: float) -> None:
        heap = self._heap
        held = self._held
        expected = self._next
        while heap and heap[0] == expected:
            number = heapq.heappop(heap)
            packet, arrived = held.pop(number)
            self._count_delay(now - arrived)
            self._deliver(packet)
            expected += 1
        self._next = expected

    def _skip_to(self, number: int, now: float) -> None:
        """Give up on everything before ``number`` (it is held): release what is held there."""
        expected = self._next
        heap = self._heap
        held = self._held
        while heap and heap[0] < number:
            earlier = heapq.heappop(heap)
            packet, arrived = held.pop(earlier)
            self._lost += earlier - expected
            self._count_delay(now - arrived)
            self._deliver(packet)
            expected = earlier + 1
        self._lost += number - expected
        self._next = number

    def _flush(self, now: float) -> None:
        while self._heap:
            self._skip_to(self._heap[0], now)
            self._release_ready(now)
        self._arrivals.clear()

    def _count_delay(self, delay: float) -> None:
        self._released_held += 1
        hist = self._hist
        for i, edge in enumerate(DELAY_BUCKETS):
            if delay <= edge:
                hist[i] += 1
                return
        hist[-1] += 1


def adaptive_bound(srtts: Sequence[float], *, factor: float = 1.0, margin: float = 0.002,
                   max_wait: float = 0.1) -> float:
    """The wait bound for packets spread over paths with smoothed RTTs ``srtts``.

    Only paths that carried data recently count.  One (or none): 0, pass-through.
    Otherwise the RTT spread (slowest - fastest: the most a packet sent at the same
    time on the slow path can trail its neighbour, queueing included) times
    ``factor``, plus ``margin`` for jitter, capped at ``max_wait``.
    """
    live = [s for s in srtts if s > 0]
    if len(live) < 2:
        return 0.0
    spread = max(live) - min(live)
    return min(max_wait, spread * factor + margin)
