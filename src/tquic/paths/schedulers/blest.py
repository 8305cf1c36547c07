"""blest: BLocking ESTimation (Ferlin, Alay, Mehani, Boreli, IFIP Networking 2016).

Heterogeneous paths cause head-of-line blocking: data sent on a slow path holds
send-window space until it arrives, and the fast path stalls on the window.
BLEST sends on the fastest path when it has room; otherwise it considers the
fastest path that has room (x_s) and estimates how much the fast path x_f could
send while one packet travels on x_s (the paper's §III, with x_f's window
growing by one packet per RTT in congestion avoidance):

    ratio = rtt_s / rtt_f
    X     = MSS_f * (cwnd_f / MSS_f + (ratio - 1) / 2) * ratio        (bytes)

and skips x_s (waits for x_f) when

    X * lambda > M - MSS_s * (inflight_s + 1)

where M is the connection's send window.  In QUIC the window that blocks is
connection flow control (RFC 9000 §4.1), so M comes from the engine through
``set_send_state``; until it says otherwise M is 1 MiB (the default
``initial_max_data``).  ``lam`` is the paper's lambda scaling factor, fixed
here (the paper adapts it on observed blocking; see ``on_blocked``).
"""

from __future__ import annotations

from collections.abc import Sequence

from tquic.paths.path import Path
from tquic.paths.schedulers.extended import (
    SchedulerBase,
    fast_or_slow,
    rtt_of,
)

DEFAULT_SEND_WINDOW = 1 << 20
LAMBDA_STEP = 0.01  # the paper's delta-lambda
LAMBDA_MIN, LAMBDA_MAX = 0.5, 2.0


class BlestScheduler(SchedulerBase):
    __slots__ = ("lam", "send_window", "skipped")
    name = "blest"
    pacing_aware = True

    def __init__(self, lam: float = 1.0, send_window: int = DEFAULT_SEND_WINDOW) -> None:
        if not lam > 0:
            raise ValueError(f"lam: must be > 0, got {lam!r}")
        if send_window <= 0:
            raise ValueError(f"send_window: must be > 0 bytes, got {send_window!r}")
        self.lam = lam
        self.send_window = send_window
        self.skipped = 0  # times the slow path was skipped (for stats and tests)

    def set_send_state(self, backlog_bytes: int | None, send_window: int | None) -> None:
        if send_window is not None and send_window > 0:
            self.send_window = send_window

    def on_blocked(self) -> None:
        """The fast path was blocked by the send window: be more careful (lambda up)."""
        self.lam = min(LAMBDA_MAX, self.lam + LAMBDA_STEP)

    def on_unblocked(self) -> None:
        """A slow-path send did not block the fast path: be less careful (lambda down)."""
        self.lam = max(LAMBDA_MIN, self.lam - LAMBDA_STEP)

    def select(self, paths: Sequence[Path], now: float) -> Path | None:
        fast, slow = fast_or_slow(paths, now)
        if fast is None or slow is None:
            return fast
        if self.would_block(fast, slow):
            self.skipped += 1
            return fast
        return slow

    def would_block(self, fast: Path, slow: Path) -> bool:
        """The paper's test: would a packet on ``slow`` block ``fast`` on the send window?"""
        rtt_f = rtt_of(fast)
        ratio = rtt_of(slow) / rtt_f if rtt_f > 0 else 1.0
        mss_f = fast.max_datagram_size
        cwnd_f = fast.recovery.controller.congestion_window
        x = (cwnd_f + mss_f * (ratio - 1.0) / 2.0) * ratio
        room = self.send_window - (slow.recovery.bytes_in_flight + slow.max_datagram_size)
        return bool(x * self.lam > room)
