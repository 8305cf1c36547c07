"""ecf: Earliest Completion First (Lim, Nahum, Towsley, Gibbens, CoNEXT 2017).

When the fastest path x_f has no window room, ECF asks whether waiting for it
finishes the queued data sooner than using the next path x_s (Algorithm 1):

    n     = 1 + k_f / cwnd_f               (rounds x_f needs for the backlog k)
    delta = max(rttvar_f, rttvar_s)
    if n * rtt_f < (1 + waiting * beta) * (rtt_s + delta):
        if (k_s / cwnd_s) * rtt_s >= 2 * rtt_f + delta:
            waiting = 1;  wait for x_f
        else:
            send on x_s
    else:
        waiting = 0;  send on x_s

k is the application's backlog (bytes, with windows in bytes the ratios are the
paper's packet ratios); as in the authors' Linux implementation, a path needs
at least one full round whatever the backlog, so k_f = max(k, cwnd_f) and
k_s = max(k, cwnd_s) (otherwise a one-packet tail "completes" in a fraction of
the slow path's RTT and goes there).  k is told by the engine through ``set_send_state``; while it
is unknown ECF cannot predict completion and behaves like min-RTT with overflow.
beta = 0.25 is the paper's hysteresis.
"""

from __future__ import annotations

from collections.abc import Sequence

from tquic.paths.path import Path
from tquic.paths.schedulers.extended import (
    SchedulerBase,
    fast_or_slow,
    rtt_of,
    rttvar_of,
)

BETA = 0.25


class EcfScheduler(SchedulerBase):
    __slots__ = ("backlog", "beta", "waiting")
    name = "ecf"
    pacing_aware = True

    def __init__(self, beta: float = BETA) -> None:
        if not beta >= 0:
            raise ValueError(f"beta: must be >= 0, got {beta!r}")
        self.beta = beta
        self.backlog: int | None = None
        self.waiting = False

    def set_send_state(self, backlog_bytes: int | None, send_window: int | None) -> None:
        self.backlog = backlog_bytes

    def select(self, paths: Sequence[Path], now: float) -> Path | None:
        fast, slow = fast_or_slow(paths, now)
        if fast is None or slow is None:
            return fast
        return fast if self.should_wait(fast, slow) else slow

    def should_wait(self, fast: Path, slow: Path) -> bool:
        """Algorithm 1 of the paper; updates the ``waiting`` hysteresis flag."""
        k = self.backlog
        if k is None:
            return False
        rtt_f, rtt_s = rtt_of(fast), rtt_of(slow)
        cwnd_f = max(1, fast.recovery.controller.congestion_window)
        cwnd_s = max(1, slow.recovery.controller.congestion_window)
        n = 1.0 + max(k, cwnd_f) / cwnd_f
        delta = max(rttvar_of(fast), rttvar_of(slow))
        if n * rtt_f < (1.0 + (self.beta if self.waiting else 0.0)) * (rtt_s + delta):
            if (max(k, cwnd_s) / cwnd_s) * rtt_s >= 2.0 * rtt_f + delta:
                self.waiting = True
                return True
            return False
        self.waiting = False
        return False
