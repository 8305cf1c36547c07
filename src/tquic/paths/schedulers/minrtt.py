"""minrtt: send on the validated path with the lowest smoothed RTT that has room.

With one path it always returns path 0 (the RFC 9000 behaviour).
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
        for path in paths:
            if not path.validated:
                continue
            rtt = path.recovery.rtt.smoothed_rtt
            if rtt < best_rtt:
                best, best_rtt = path, rtt
        return best if best is not None else paths[0]
