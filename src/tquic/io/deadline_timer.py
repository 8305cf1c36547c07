"""DeadlineTimer: one event-loop timer that follows a moving deadline.

The sans-I/O pieces (the engine, the bond's reorder buffer and FEC stage) say when
they next need to run; the I/O side re-arms a timer for that instant whenever it may
have changed.  Re-arming only when the deadline really moved keeps the loop's timer
heap quiet on the hot path (a flush per received batch asks every time).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class DeadlineTimer:
    """``set(t)`` arms the timer for loop time ``t`` (None: disarmed); ``callback`` runs
    once when it fires, with the timer already disarmed so it may ``set`` again."""

    __slots__ = ("_callback", "_handle", "_loop", "at")

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        self._loop = loop
        self._callback = callback
        self._handle: asyncio.TimerHandle | None = None
        self.at: float | None = None  # the deadline armed, None when disarmed

    @property
    def armed(self) -> bool:
        return self._handle is not None

    def set(self, deadline: float | None) -> None:
        if deadline == self.at:
            return
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self.at = deadline
        if deadline is not None:
            self._handle = self._loop.call_at(deadline, self._fire)

    def cancel(self) -> None:
        self.set(None)

    def _fire(self) -> None:
        self._handle = None
        self.at = None
        self._callback()
