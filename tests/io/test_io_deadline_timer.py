"""DeadlineTimer re-arms only when the deadline moves, fires once, and can re-arm from
its own callback (how the connection, reorder and FEC timers use it)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tquic.io.deadline_timer import DeadlineTimer


def test_fires_once_at_the_latest_deadline_and_rearms_from_its_callback() -> None:
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        fired: list[float] = []

        def callback() -> None:
            fired.append(loop.time())
            if len(fired) == 1:
                timer.set(loop.time() + 0.01)  # re-armed from inside

        armed: list[asyncio.TimerHandle] = []

        class CountingLoop:  # the loop as the timer sees it, its call_at calls recorded
            def call_at(self, when: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
                armed.append(loop.call_at(when, callback))
                return armed[-1]

        timer = DeadlineTimer(CountingLoop(), callback)  # type: ignore[arg-type]
        start = loop.time()
        timer.set(start + 0.5)
        timer.set(start + 0.02)  # moved earlier: the first handle is cancelled
        assert len(armed) == 2 and armed[0].cancelled() and not armed[1].cancelled()
        timer.set(start + 0.02)  # unchanged: the same handle is kept
        assert len(armed) == 2 and timer.armed and timer.at == start + 0.02
        await asyncio.sleep(0.1)
        assert not timer.armed and timer.at is None
        return [t - start for t in fired]

    fired = asyncio.run(main())
    assert len(fired) == 2 and fired[0] < 0.4


def test_cancel_disarms() -> None:
    async def main() -> int:
        calls: list[int] = []
        timer = DeadlineTimer(asyncio.get_running_loop(), lambda: calls.append(1))
        timer.set(asyncio.get_running_loop().time() + 0.01)
        timer.cancel()
        await asyncio.sleep(0.05)
        return len(calls)

    assert asyncio.run(main()) == 0
