"""``bond``: the tunnel's scheduler — each packet on the path where it arrives first.

Fill-first schedulers (min-RTT, BLEST, ECF) use the second path only when the
first one's congestion window is full.  A tunnel's traffic is an inner TCP's:
ACK-clocked and limited by its own window, it seldom fills the outer window, so
a fill-first scheduler keeps almost everything on one link and the bond is no
faster than that link.  This scheduler instead estimates, for every path that
can send, when a packet sent now would arrive:

    arrival = min_rtt / 2 + (bytes_in_flight + size) / rate

(``rate``: the path's pacing rate — the bandwidth estimate of a model-based
controller, 1.25 x cwnd / srtt for a window-based one) and picks the earliest.
Packets then spread in proportion to the paths' rates, the low-delay path first
while it is lightly loaded.  A path not chosen for ``probe_interval`` is chosen
once, so an idle path's RTT and rate stay measured (a stale RTT from a slow
handshake would otherwise keep it idle for good).

Registered under the name ``bond`` through :func:`tquic.paths.schedulers.register_scheduler`
(the public extension point, DESIGN.md "Multipath is the normal case").
"""

from __future__ import annotations

from collections.abc import Sequence

from tquic.paths.path import Path
from tquic.paths.schedulers import available_schedulers, register_scheduler
from tquic.paths.schedulers.extended import SchedulerBase, candidates, ready, wait_for

NAME = "bond"


class EarliestArrivalScheduler(SchedulerBase):
    __slots__ = ("_last_used", "probe_interval")
    name = NAME
    pacing_aware = True

    def __init__(self, probe_interval: float = 0.2) -> None:
        if not probe_interval > 0:
            raise ValueError(f"probe_interval: must be > 0, got {probe_interval}")
        self.probe_interval = probe_interval
        self._last_used: dict[int, float] = {}

    def select(self, paths: Sequence[Path], now: float) -> Path | None:
        if len(paths) <= 1:
            return paths[0] if paths else None
        pool = candidates(paths)
        able = [p for p in pool if ready(p, now)]
        if not able:
            return wait_for(pool, now)
        last = self._last_used
        best: Path | None = None
        best_at = float("inf")
        for path in able:
            used = last.get(path.path_id)
            if used is None:
                last[path.path_id] = now
            elif now - used > self.probe_interval:
                best = path  # keep its measurements fresh
                break
            recovery = path.recovery
            rtt = recovery.rtt
            base = float(rtt.min_rtt if rtt.has_sample else rtt.smoothed_rtt) / 2.0
            rate = recovery.pacing_rate()
            if rate is None or rate <= 0:
                at = base
            else:
                at = base + (recovery.bytes_in_flight + path.max_datagram_size) / rate
            if at < best_at:
                best, best_at = path, at
        if best is None:
            return wait_for(pool, now)
        last[best.path_id] = now
        if len(last) > 4 * len(paths) + 8:
            live = {p.path_id for p in paths}
            for path_id in [k for k in last if k not in live]:
                del last[path_id]
        return best


def register() -> None:
    """Make ``--scheduler bond`` (and the config key) available; idempotent."""
    if NAME not in available_schedulers():
        register_scheduler(NAME, EarliestArrivalScheduler)
