"""minrtt: send on the validated path with the lowest smoothed RTT that has window room.

The MPTCP default scheduler: among the paths whose congestion window can take
one more full datagram, the lowest smoothed RTT (RFC 9002 §5.3).  When every
path is full it returns the lowest-RTT one, which tells the engine to wait
for it (docs/schedulers.md: a full path means "only ACKs now").  With one path
it always returns path 0 (the RFC 9000 behaviour).
"""

from __future__ import annotations

from collections.abc import Sequence

from tquic.paths.path import Path


class MinRttScheduler:
    name = "minrtt"

    def select(self, paths: Sequence[Path], now: float) -> Path | None:
        if not paths:
            return None
        if len(paths) == 1:
            return paths[0]
        best: Path | None = None
        best_rtt = float("inf")
        best_room: Path | None = None
        best_room_rtt = float("inf")
        for path in paths:
            if not path.validated:
                continue
            rtt = path.recovery.rtt.smoothed_rtt
            if rtt < best_rtt:
                best, best_rtt = path, rtt
            if rtt < best_room_rtt and path.recovery.can_send(path.max_datagram_size):
                best_room, best_room_rtt = path, rtt
        if best_room is not None:
            return best_room
        return best if best is not None else paths[0]
