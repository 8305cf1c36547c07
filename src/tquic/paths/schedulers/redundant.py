"""redundant: every packet on every usable path (for real-time traffic).

Latency and loss of the flow become those of the best path at each instant, at
the cost of sending everything N times (draft-ietf-quic-multipath
"Retransmissions", strategy c: "not recommended for general purpose use due to
the network overhead").  ``select_many`` returns the primary path first (the
fastest with window room) and then every other path with room; the engine sends
the packet on the first and a copy of its retransmittable frames on each other,
in the same send round, from that path's own copy queue (``Path.copies``).
A path whose window is full gets no copy: redundancy never overrides congestion
control (draft §"Congestion Control": no path may send more than its window).
"""

from __future__ import annotations

from collections.abc import Sequence

from tquic.paths.path import Path
from tquic.paths.schedulers.extended import (
    SchedulerBase,
    candidates,
    fastest,
    has_room,
    ready,
    wait_for,
)


class RedundantScheduler(SchedulerBase):
    __slots__ = ()
    name = "redundant"
    pacing_aware = True

    def select(self, paths: Sequence[Path], now: float) -> Path | None:
        if len(paths) <= 1:
            return paths[0] if paths else None
        pool = candidates(paths)
        able = [p for p in pool if ready(p, now)]
        return fastest(able) if able else wait_for(pool, now)

    def select_many(self, paths: Sequence[Path], now: float) -> list[Path]:
        if len(paths) <= 1:
            return list(paths)
        pool = candidates(paths)
        able = [p for p in pool if ready(p, now)]
        primary = fastest(able) if able else wait_for(pool, now)
        if primary is None:
            return []
        # A copy goes with its original in the same send round whenever the other
        # path's WINDOW has room; its pacer is charged but does not hold the copy
        # back (a copy that waits for a pacer would arrive after the original).
        return [primary, *(p for p in pool if p is not primary and has_room(p))]
