"""roundrobin: each packet on the next path (in path-ID order) that has window room.

Per-packet scheduling, not flow pinning: consecutive packets of one stream
alternate between paths.  A path whose congestion window is full is skipped;
when every window is full the fastest path is returned so the engine waits
(see ``extended`` for what a full path means to the send loop).
"""

from __future__ import annotations

from collections.abc import Sequence

from tquic.paths.path import Path
from tquic.paths.schedulers.extended import SchedulerBase, candidates, ready, wait_for


class RoundRobinScheduler(SchedulerBase):
    __slots__ = ("_last_id",)
    name = "roundrobin"
    pacing_aware = True

    def __init__(self) -> None:
        self._last_id = -1  # path ID of the previous choice

    def select(self, paths: Sequence[Path], now: float) -> Path | None:
        if len(paths) <= 1:
            return paths[0] if paths else None
        pool = sorted(candidates(paths), key=_path_id)
        last = self._last_id
        # The first path with room after the previous choice, wrapping around.
        after = [p for p in pool if p.path_id > last]
        for path in (*after, *pool[: len(pool) - len(after)]):
            if ready(path, now):
                self._last_id = path.path_id
                return path
        return wait_for(pool, now)


def _path_id(path: Path) -> int:
    return path.path_id
