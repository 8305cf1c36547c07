"""tquic.sim's event-loop interface on top of asyncio's real clock.

``tquic.sim.link.Pipe`` reads ``loop.now`` and schedules each datagram's arrival
with ``loop.call_at(when, callback, arg)``.  :class:`RealtimeClock` gives it
exactly that, with ``now`` in seconds since the emulator started and arrivals
turned into asyncio timers, so the simulator's link model (loss, bursts, queue,
serialisation, delay, jitter, reordering, outages) runs unchanged in real time.
It also counts pending arrivals, which bounds what one direction may hold, and how
late the asyncio timers fired: the model is only as faithful as the process is
scheduled, and a loaded machine (or epoll's millisecond timeouts) delays deliveries
beyond the profile's delay.  ``lateness()`` says by how much.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from tquic.sim.clock import Callback, EventLoop

LATE = 0.002  # seconds: a delivery later than this counts as late (epoll alone adds < 1 ms)


@dataclass(frozen=True, slots=True)
class Lateness:
    """How much later than the model asked the deliveries of one direction happened."""

    delivered: int
    mean: float  # seconds
    max: float
    late: int  # deliveries more than LATE seconds behind the model


NOT_LATE = Lateness(0, 0.0, 0.0, 0)


class RealtimeClock(EventLoop):
    """One direction's clock: virtual time = asyncio time - ``origin``."""

    __slots__ = ("_aio", "_fired", "_late", "_late_max", "_late_sum", "_origin", "closed",
                 "pending")

    def __init__(self, aio_loop: asyncio.AbstractEventLoop, origin: float) -> None:
        super().__init__(0.0)
        self._aio = aio_loop
        self._origin = origin
        self.pending = 0  # arrivals scheduled and not yet delivered
        self.closed = False
        self._fired = 0
        self._late_sum = 0.0
        self._late_max = 0.0
        self._late = 0

    @property
    def now(self) -> float:
        return self._aio.time() - self._origin

    def call_at(self, when: float, callback: Callback, arg: Any = None) -> None:
        self.pending += 1
        due = self._origin + when
        self._aio.call_at(due, self._fire, due, callback, arg)

    def call_later(self, delay: float, callback: Callback, arg: Any = None) -> None:
        self.call_at(self.now + delay, callback, arg)

    def _fire(self, due: float, callback: Callback, arg: Any) -> None:
        self.pending -= 1
        if not self.closed:
            late = self._aio.time() - due
            self._fired += 1
            self._late_sum += late
            if late > self._late_max:
                self._late_max = late
            if late > LATE:
                self._late += 1
            callback(arg)

    def lateness(self) -> Lateness:
        """Deliveries so far and how late they were against the model's times."""
        n = self._fired
        return Lateness(n, self._late_sum / n if n else 0.0, self._late_max, self._late)

    def run(self, until: float = float("inf"), max_events: int | None = None) -> float:
        raise RuntimeError("a RealtimeClock is driven by the asyncio loop, not run()")
