"""redundant: every packet on every usable path (for real-time traffic).

Latency and loss of the flow become those of the best path at each instant, at
the cost of sending everything N times (draft-ietf-quic-multipath
"Retransmissions", strategy c: "not recommended for general purpose use due to
the network overhead").  ``select_many`` returns the primary path first (the
fastest with window room) and then every other path with room; the engine sends
the packet on the first and a copy of its retransmittable frames on each other.
A path whose window is full gets no copy: redundancy never overrides congestion
control (draft §"Congestion Control": no path may send more than its window).
"""

from __future__ import annotations

from collections.abc import Sequence

from tquic.paths.path import Path
from tquic.paths.schedulers.extended import SchedulerBase, candidates, fastest, has_room


class RedundantScheduler(SchedulerBase):
    __slots__ = ()
    name = "redundant"

    def select(self, paths: Sequence[Path], now: float) -> Path | None:
        if len(paths) <= 1:
            return paths[0] if paths else None
        pool = candidates(paths)
        ready = [p for p in pool if has_room(p)]
        return fastest(ready) if ready else fastest(pool)

    def select_many(self, paths: Sequence[Path], now: float) -> list[Path]:
        if len(paths) <= 1:
            return list(paths)
        pool = candidates(paths)
        ready = [p for p in pool if has_room(p)]
        primary = fastest(ready) if ready else fastest(pool)
        if primary is None:
            return []
        return [primary, *(p for p in ready if p is not primary)]
