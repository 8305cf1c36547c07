"""CUBIC (RFC 9438) on QUIC's recovery skeleton, with HyStart++ (RFC 9406) in slow start.

RFC 9438 counts windows in segments; here every window is in bytes, so the
cubic function is scaled by max_datagram_size (MSS):

    W_cubic(t) = C * (t - K)^3 * MSS + W_max          (RFC 9438 §4.2, Figure 1)
    K = cbrt((W_max - cwnd_epoch) / (C * MSS))        (RFC 9438 §4.2, Figure 2)

with t in seconds since the start of the congestion-avoidance epoch.  The
recovery period (one reduction per round trip, no growth for packets sent
before it began) is RFC 9002's, as RFC 9438 §4.6 allows for QUIC.
"""

from __future__ import annotations

import math

from tquic.cc.base import RttSample
from tquic.cc.window import WindowController

# RFC 9438 §5.1 / §4.6.
C_CUBIC = 0.4
BETA_CUBIC = 0.7
# RFC 9438 §4.3: alpha_cubic = 3 * (1 - beta) / (1 + beta), so that CUBIC's
# average window in the Reno-friendly region equals AIMD(1, 0.5)'s.
ALPHA_CUBIC = 3 * (1 - BETA_CUBIC) / (1 + BETA_CUBIC)


def _cbrt(x: float) -> float:
    return math.copysign(abs(x) ** (1.0 / 3.0), x)


def cubic_k(w_max: float, cwnd_epoch: float, mss: int) -> float:
    """RFC 9438 §4.2 Figure 2 (windows in bytes): time to climb back to W_max.

    Zero when the epoch starts at or above W_max (the curve then starts on its
    plateau and goes straight into the convex region).
    """
    if cwnd_epoch >= w_max:
        return 0.0
    return _cbrt((w_max - cwnd_epoch) / (C_CUBIC * mss))


def w_cubic(t: float, k: float, w_max: float, mss: int) -> float:
    """RFC 9438 §4.2 Figure 1 (bytes): C * (t - K)^3 * MSS + W_max."""
    d = t - k
    return C_CUBIC * d * d * d * mss + w_max


class Cubic(WindowController):
    """RFC 9438 CUBIC; fast convergence on by default (§4.7)."""

    __slots__ = (
        "_alpha",
        "_cwnd_epoch",
        "_t_epoch",
        "cwnd_prior",
        "fast_convergence",
        "k",
        "w_est",
        "w_max",
    )

    def __init__(
        self,
        max_datagram_size: int,
        *,
        hystart: bool = True,
        fast_convergence: bool = True,
    ) -> None:
        super().__init__(max_datagram_size, hystart=hystart)
        self.fast_convergence = fast_convergence
        # RFC 9438 §4.1.2 state.  w_max None: no congestion event yet, or reset by
        # a timeout, so the next epoch starts on its plateau (K = 0, §4.8/§4.10).
        self.w_max: float | None = None
        self.cwnd_prior = 0.0
        self.k = 0.0
        self.w_est = 0.0
        self._cwnd_epoch = 0.0
        self._t_epoch: float | None = None
        self._alpha = ALPHA_CUBIC

    @property
    def t_epoch(self) -> float | None:
        return self._t_epoch

    @property
    def alpha(self) -> float:
        return self._alpha

    def _start_epoch(self, now: float) -> None:
        """RFC 9438 §4.2: a congestion-avoidance stage begins at the first ACK in it."""
        cwnd = self._cwnd
        self._t_epoch = now
        self._cwnd_epoch = cwnd
        # RFC 9438 §4.3: W_est starts at cwnd_epoch.
        self.w_est = cwnd
        if self.w_max is None:
            # RFC 9438 §4.8 / §4.10: no W_max to return to (after slow start exited
            # without loss, or after a timeout): W_max = cwnd at the epoch start, K = 0.
            self.w_max = cwnd
        self.k = cubic_k(self.w_max, cwnd, self.max_datagram_size)

    def _congestion_avoidance(self, acked_bytes: int, rtt: RttSample, now: float) -> None:
        if self._t_epoch is None:
            self._start_epoch(now)
        t_epoch = self._t_epoch if self._t_epoch is not None else now
        w_max = self.w_max if self.w_max is not None else self._cwnd
        mss = self.max_datagram_size
        cwnd = self._cwnd
        t = now - t_epoch

        # RFC 9438 §4.3 Reno-friendly estimate: W_est += alpha * segments_acked / cwnd
        # (in segments), i.e. alpha * acked_bytes * MSS / cwnd in bytes.
        self.w_est += self._alpha * acked_bytes * mss / cwnd
        if self._alpha < 1.0 and self.w_est >= self.cwnd_prior:
            # RFC 9438 §4.3: once W_est reaches cwnd_prior, grow like Reno (alpha = 1).
            self._alpha = 1.0

        if w_cubic(t, self.k, w_max, mss) < self.w_est:
            # RFC 9438 §4.3: Reno-friendly region: cwnd = W_est.
            self._cwnd = max(cwnd, self.w_est)
            return

        # RFC 9438 §4.4/§4.5 (concave below W_max, convex above): the target is the
        # cubic window one RTT ahead, kept within [cwnd, 1.5 * cwnd] (§4.2).
        target = w_cubic(t + rtt.smoothed_rtt, self.k, w_max, mss)
        if target < cwnd:
            target = cwnd
        elif target > 1.5 * cwnd:
            target = 1.5 * cwnd
        # (target - cwnd) / cwnd per segment acknowledged.
        self._cwnd = cwnd + (target - cwnd) * acked_bytes / cwnd

    def _reduce(self, now: float) -> None:
        cwnd = self._cwnd
        # RFC 9438 §4.7 fast convergence: a flow whose saturation point fell
        # releases bandwidth by aiming lower.
        if self.fast_convergence and self.w_max is not None and cwnd < self.w_max:
            self.w_max = cwnd * (1 + BETA_CUBIC) / 2
        else:
            self.w_max = cwnd
        # RFC 9438 §4.6: cwnd_prior for the Reno-friendly region; ssthresh = cwnd *
        # beta (cwnd rather than flight size: a QUIC sender that was
        # application-limited did not grow its window, RFC 9002 §7.8), never below
        # the minimum window (RFC 9002 §7.2).
        self.cwnd_prior = cwnd
        self.ssthresh = max(cwnd * BETA_CUBIC, float(self.minimum_window))
        self._cwnd = self.ssthresh
        self._alpha = ALPHA_CUBIC
        # A new congestion-avoidance stage starts at the next ACK outside recovery.
        self._t_epoch = None

    def _on_app_limited_ack(self, now: float) -> None:
        # An idle or application-limited period must not count as time on the
        # curve (RFC 9438 §5.8 "the sender is not cwnd-limited"): restart the
        # epoch from the current window when the sender is limited again.
        if self._cwnd >= self.ssthresh:
            self._t_epoch = None

    def _on_slow_start_exit(self, now: float) -> None:
        # RFC 9438 §4.10: HyStart++ ended slow start without a congestion event.
        self.w_max = None
        self.cwnd_prior = self._cwnd
        self._t_epoch = None

    def _after_persistent_congestion(self) -> None:
        # RFC 9438 §4.8: after a timeout, the first avoidance stage uses K = 0 and
        # W_max = the window at its beginning.
        self.w_max = None
        self._t_epoch = None
        self._alpha = ALPHA_CUBIC


def create_cubic(max_datagram_size: int) -> Cubic:
    return Cubic(max_datagram_size)
