"""minrtt: send on the validated path with the lowest smoothed RTT that can send now.

The MPTCP default scheduler: among the paths whose congestion window can take
one more full datagram and whose pacer is not holding packets back (RFC 9002
§7.7; ``extended.ready``), the lowest smoothed RTT (RFC 9002 §5.3).  When no
path can send it returns the lowest-RTT one, which tells the engine to wait
for it (docs/schedulers.md: a full or paced-out path means "only ACKs now").
With one path it always returns path 0 (the RFC 9000 behaviour).

The tail (ECF's insight, Lim et al., CoNEXT 2017): when the end of the data is
known (``set_remaining``) and the faster paths are busy, a packet put on a
slower path arrives after its one-way delay (smoothed RTT, queue included,
minus half the base RTT).  If the faster paths can deliver everything that is
left, this packet included, before that, the slow path is skipped and the
scheduler waits for the fastest: the last bytes of a transfer no longer sit in
a slow path's queue after the fast path has finished.  While the end is not
known (a streaming sender) or in the bulk of a transfer this never triggers,
so the aggregate throughput is the plain min-RTT one.
"""

from __future__ import annotations

from collections.abc import Sequence

from tquic.paths.path import Path
from tquic.paths.schedulers.extended import SchedulerBase, forward_delay

_INF = float("inf")


class MinRttScheduler(SchedulerBase):
    __slots__ = ("_last_now", "_last_paths", "_last_ready", "remaining", "tail_waits")
    name = "minrtt"
    pacing_aware = True

    def __init__(self) -> None:
        self.remaining: int | None = None
        self.tail_waits = 0  # slow paths skipped at the tail (for stats and tests)
        # The last answer when it was the fastest path ready to send, with the paths and
        # the instant it was for (``still_selects``).
        self._last_ready: Path | None = None
        self._last_paths: Sequence[Path] = ()
        self._last_now = 0.0

    def set_remaining(self, remaining: int | None) -> None:
        self.remaining = remaining

    def select(self, paths: Sequence[Path], now: float) -> Path | None:
        if not paths:
            return None
        if len(paths) == 1:
            return paths[0]
        # Called for every packet under multipath: ``has_room`` and ``paced_until``
        # (extended.py) are inlined (window room for a full datagram, RFC 9002 §7; the
        # pacer's release time, §7.7).
        best: Path | None = None
        best_rtt = _INF
        best_ready: Path | None = None
        best_ready_rtt = _INF
        soonest: Path | None = None  # window room, pacer frees it first
        soonest_at = _INF
        for path in paths:
            if not path.validated:
                continue
            recovery = path.recovery
            rtt = recovery.rtt.smoothed_rtt
            if rtt < best_rtt:
                best, best_rtt = path, rtt
            if rtt < best_ready_rtt:
                size = path.max_datagram_size
                if recovery.bytes_in_flight + size <= recovery.controller.congestion_window:
                    at = recovery.pacer.next_send_time(now, size)
                    if at <= now:
                        best_ready, best_ready_rtt = path, rtt
                    elif at < soonest_at:
                        soonest, soonest_at = path, at
        self._last_ready = None
        if best is None:
            return paths[0]
        # Nobody can send this instant: wait for the pacer that frees a path first (the
        # engine arms its timer), or for the fastest path's window.
        choice = best_ready or soonest or best
        if (choice is not best and self.remaining is not None
                and faster_paths_finish_first(choice, paths, self.remaining)):
            self.tail_waits += 1
            return best
        if choice is best_ready:
            self._last_ready, self._last_paths, self._last_now = choice, paths, now
        return choice

    def still_selects(self, paths: Sequence[Path], now: float, path: Path) -> bool:
        """After a packet on the path chosen as the fastest one ready, with nothing else
        changed: every other path is as ready as it was, the tail rule weighs the same
        values, so the answer is that path again while it stays ready (window room and
        its pacer lets a full datagram go).  The pacer is asked as select asks it: the
        same calls at the same instant."""
        if path is not self._last_ready or paths is not self._last_paths or now != self._last_now:
            return False
        recovery = path.recovery
        size = path.max_datagram_size
        if recovery.bytes_in_flight + size > recovery.controller.congestion_window:
            return False
        return bool(recovery.pacer.next_send_time(now, size) <= now)


def faster_paths_finish_first(slow: Path, paths: Sequence[Path], remaining: int) -> bool:
    """Would the paths faster than ``slow`` deliver ``remaining`` bytes plus this packet
    before a packet sent on ``slow`` now arrives?  Their rate is the controller's pacing
    rate when it has one (BBR: its bandwidth estimate), else cwnd / smoothed RTT; a path
    in PTO (suspect) does not count."""
    slow_rtt = slow.recovery.rtt.smoothed_rtt
    rate = 0.0
    delay = _INF
    for p in paths:
        if p is slow or not p.validated:
            continue
        recovery = p.recovery
        rtt = recovery.rtt
        srtt = rtt.smoothed_rtt
        if not rtt.has_sample or srtt >= slow_rtt or recovery.pto_count:
            continue
        controller = recovery.controller
        paced = controller.pacing_rate
        rate += paced if paced else controller.congestion_window / max(srtt, 1e-6)
        # forward_delay(p), inlined (it has a sample here).
        half = srtt / 2.0
        one_way = srtt - rtt.min_rtt / 2.0
        one_way = one_way if one_way >= half else half
        if one_way < delay:
            delay = one_way
    if rate <= 0.0:
        return False
    return (remaining + slow.max_datagram_size) / rate + delay < forward_delay(slow)
