"""tquic.sim's event-loop interface on top of asyncio's real clock.

``tquic.sim.link.Pipe`` reads ``loop.now`` and schedules each datagram's arrival
with ``loop.call_at(when, callback, arg)``.  :class:`RealtimeClock` gives it
exactly that, with ``now`` in seconds since the emulator started and arrivals
turned into asyncio timers, so the simulator's link model (loss, bursts, queue,
serialisation, delay, jitter, reordering, outages) runs unchanged in real time.
It also counts pending arrivals, which bounds what one direction may hold.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tquic.sim.clock import Callback, EventLoop


class RealtimeClock(EventLoop):
    """One direction's clock: virtual time = asyncio time - ``origin``."""

    __slots__ = ("_aio", "_origin", "closed", "pending")

    def __init__(self, aio_loop: asyncio.AbstractEventLoop, origin: float) -> None:
        super().__init__(0.0)
        self._aio = aio_loop
        self._origin = origin
        self.pending = 0  # arrivals scheduled and not yet delivered
        self.closed = False

    @property
    def now(self) -> float:
        return self._aio.time() - self._origin

    def call_at(self, when: float, callback: Callback, arg: Any = None) -> None:
        self.pending += 1
        self._aio.call_at(self._origin + when, self._fire, callback, arg)

    def call_later(self, delay: float, callback: Callback, arg: Any = None) -> None:
        self.call_at(self.now + delay, callback, arg)

    def _fire(self, callback: Callback, arg: Any) -> None:
        self.pending -= 1
        if not self.closed:
            callback(arg)

    def run(self, until: float = float("inf"), max_events: int | None = None) -> float:
        raise RuntimeError("a RealtimeClock is driven by the asyncio loop, not run()")
