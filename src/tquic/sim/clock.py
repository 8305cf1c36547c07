"""The virtual clock and event queue every simulated thing runs on.

Time is a float in seconds that only moves when the queue pops an event; nothing
here reads the wall clock (DESIGN.md "The sans-I/O contract").  Events that fall
due at the same instant run in the order they were scheduled: each entry carries
a sequence number that breaks ties, so a run never depends on how ``heapq``
compares callbacks and the same inputs always give the same order.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

Callback = Callable[[Any], None]


class SimulationError(Exception):
    """The simulation was driven wrongly (an event in the past, a bad limit)."""


class EventLoop:
    """A min-heap of ``(time, seq, callback, arg)``; ``run`` pops and calls them in order.

    Callbacks take exactly one argument so the hot path is a plain call with no
    closure allocation; pass a tuple when more is needed.  Cancelling is left to
    the caller (a generation counter checked in the callback), which is cheaper
    than removing entries from a heap.
    """

    __slots__ = ("_heap", "_now", "_seq", "_stopped", "events_processed")

    def __init__(self, start: float = 0.0) -> None:
        self._heap: list[tuple[float, int, Callback, Any]] = []
        self._now = start
        self._seq = 0
        self._stopped = False
        self.events_processed = 0

    @property
    def now(self) -> float:
        return self._now

    def __len__(self) -> int:
        return len(self._heap)

    def call_at(self, when: float, callback: Callback, arg: Any = None) -> None:
        """Run ``callback(arg)`` at virtual time ``when`` (not before ``now``)."""
        if when < self._now:
            raise SimulationError(f"event scheduled in the past: {when} < now {self._now}")
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, callback, arg))

    def call_later(self, delay: float, callback: Callback, arg: Any = None) -> None:
        self.call_at(self._now + delay, callback, arg)

    def next_time(self) -> float | None:
        """Time of the earliest pending event, or None when the queue is empty."""
        return self._heap[0][0] if self._heap else None

    def stop(self) -> None:
        """Make ``run`` return after the event being processed."""
        self._stopped = True

    def run(self, until: float = float("inf"), max_events: int | None = None) -> float:
        """Process events in time order until the queue is empty, ``until`` is reached,
        ``stop()`` is called or ``max_events`` were processed; returns the clock.

        When it stops at ``until`` the clock is advanced to ``until`` so that a
        later ``run`` continues from there.
        """
        heap = self._heap
        pop = heapq.heappop
        self._stopped = False
        budget = -1 if max_events is None else max_events
        processed = 0
        while heap and not self._stopped and processed != budget:
            when = heap[0][0]
            if when > until:
                break
            _, _, callback, arg = pop(heap)
            self._now = when
            callback(arg)
            processed += 1
        self.events_processed += processed
        if not self._stopped and processed != budget and until != float("inf") and (
            not heap or heap[0][0] > until
        ):
            self._now = max(self._now, until)
        return self._now
