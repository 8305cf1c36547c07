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

_INF = float("inf")

NAME = "bond"


class EarliestArrivalScheduler(SchedulerBase):
    __slots__ = ("_chosen", "_chosen_now", "_chosen_paths", "_last_used", "_second_at",
                 "probe_interval")
    name = NAME
    pacing_aware = True

    def __init__(self, probe_interval: float = 0.2) -> None:
        if not probe_interval > 0:
            raise ValueError(f"probe_interval: must be > 0, got {probe_interval}")
        self.probe_interval = probe_interval
        self._last_used: dict[int, float] = {}
        # The last answer when it was the earliest arrival (not a probe, not a wait),
        # the paths and instant it was for, and the earliest arrival among the other
        # paths then (``still_selects``).
        self._chosen: Path | None = None
        self._chosen_paths: Sequence[Path] = ()
        self._chosen_now = 0.0
        self._second_at = _INF

    def select(self, paths: Sequence[Path], now: float) -> Path | None:
        if len(paths) <= 1:
            return paths[0] if paths else None
        self._chosen = None
        pool = candidates(paths)
        # Called for every packet the scheduler places: ``ready`` (window room, RFC 9002
        # §7, and the pacer's release time, §7.7) is inlined, as the window room it
        # computes is the arrival's queue too, and the paths are walked
        # once; the first ready path not used for ``probe_interval`` wins outright.
        last = self._last_used
        interval = self.probe_interval
        best: Path | None = None
        best_at = second_at = _INF
        for path in pool:
            recovery = path.recovery
            size = path.max_datagram_size
            in_flight = recovery.bytes_in_flight
            if (in_flight + size > recovery.controller.congestion_window
                    or recovery.pacer.next_send_time(now, size) > now):
                continue
            used = last.get(path.path_id)
            if used is None:
                last[path.path_id] = now
            elif now - used > interval:
                last[path.path_id] = now
                return path  # keep its measurements fresh
            at = _arrival(path, in_flight + size)
            if at < best_at:
                best, best_at, second_at = path, at, best_at
            elif at < second_at:
                second_at = at
        if best is None:
            return wait_for(pool, now)
        last[best.path_id] = now
        if len(last) > 4 * len(paths) + 8:
            live = {p.path_id for p in paths}
            for path_id in [k for k in last if k not in live]:
                del last[path_id]
        self._chosen, self._chosen_paths, self._chosen_now = best, paths, now
        self._second_at = second_at
        return best

    def still_selects(self, paths: Sequence[Path], now: float, path: Path) -> bool:
        """After one packet on the path chosen as the earliest arrival, at the same
        instant and nothing else changed: the other paths are as ready as they were and
        their arrivals the same, so ``select`` would answer that path again while it is
        still ready and its own arrival (later by the packet just sent) stays strictly
        before the best of the others'."""
        if (path is not self._chosen or paths is not self._chosen_paths
                or now != self._chosen_now or not ready(path, now)):
            return False
        return _arrival(path, path.recovery.bytes_in_flight + path.max_datagram_size
                        ) < self._second_at


def _arrival(path: Path, queued: int) -> float:
    """When a packet sent now on ``path`` would arrive, ``queued`` bytes (in flight and
    its own) ahead of its end: half the minimum RTT plus their time at the path's rate."""
    recovery = path.recovery
    rtt = recovery.rtt
    base = float(rtt.min_rtt if rtt.has_sample else rtt.smoothed_rtt) / 2.0
    rate = recovery.pacing_rate()
    if rate is None or rate <= 0:
        return base
    return base + queued / float(rate)


def register() -> None:
    """Make ``--scheduler bond`` (and the config key) available; idempotent."""
    if NAME not in available_schedulers():
        register_scheduler(NAME, EarliestArrivalScheduler)
