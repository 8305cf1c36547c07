"""TCP Westwood+ (Mascolo, Grieco et al.) on QUIC's NewReno skeleton.

Westwood+ grows its window exactly as Reno does; what differs is the reaction
to congestion.  The sender estimates the bandwidth it gets (BWE) from the ACK
stream: once per RTT it takes the sample b_k = bytes acknowledged during that
RTT / its duration and low-pass filters it, BWE_k = a * BWE_{k-1} + (1 - a) * b_k
with a = 0.9 ("TCP Westwood+", Grieco & Mascolo 2004, §3: sampling once per
RTT is what distinguishes Westwood+ from Westwood, whose per-ACK samples alias
under ACK compression).  On a loss, instead of halving, it sets
ssthresh = BWE x RTTmin (the pipe size the estimate supports) and
cwnd = min(cwnd, ssthresh); after a timeout (QUIC persistent congestion) cwnd
collapses to the minimum and ssthresh keeps BWE x RTTmin.  Random losses
therefore cost little: the estimate stays at the rate actually delivered.
"""

from __future__ import annotations

import math

from tquic.cc.base import AckedPacket, RttSample
from tquic.cc.newreno import NewReno

BWE_FILTER_GAIN = 0.9  # Grieco & Mascolo 2004: a = 0.9


class WestwoodPlus(NewReno):
    """Westwood+: Reno growth, ssthresh = BWE x RTTmin on congestion."""

    __slots__ = ("_acked_in_sample", "_min_rtt", "_sample_start", "bwe", "samples")

    def __init__(self, max_datagram_size: int) -> None:
        super().__init__(max_datagram_size)
        self.bwe = 0.0  # bytes per second; 0 until the first RTT-long sample
        self.samples = 0
        self._acked_in_sample = 0
        self._sample_start: float | None = None
        self._min_rtt = math.inf

    def on_packets_acked(
        self,
        acked: list[AckedPacket],
        rtt: RttSample,
        bytes_in_flight: int,
        now: float,
        ecn_ce_count: int = 0,
    ) -> None:
        if rtt.min_rtt > 0 and math.isfinite(rtt.min_rtt):
            self._min_rtt = min(self._min_rtt, rtt.min_rtt)
        start = self._sample_start
        if start is None:
            # The first ACK opens the first sample period.
            self._sample_start = now
        else:
            self._acked_in_sample += sum(p.sent_bytes for p in acked)
            # One bandwidth sample per RTT (the "+" of Westwood+).
            period = now - start
            if rtt.smoothed_rtt > 0 and period >= rtt.smoothed_rtt:
                self._add_sample(self._acked_in_sample / period)
                self._acked_in_sample = 0
                self._sample_start = now
        super().on_packets_acked(acked, rtt, bytes_in_flight, now, ecn_ce_count)

    def _add_sample(self, sample: float) -> None:
        if self.samples == 0:
            self.bwe = sample
        else:
            self.bwe = BWE_FILTER_GAIN * self.bwe + (1.0 - BWE_FILTER_GAIN) * sample
        self.samples += 1

    def bwe_window(self) -> float | None:
        """BWE x RTTmin in bytes, or None before there is an estimate."""
        if self.samples == 0 or math.isinf(self._min_rtt):
            return None
        return self.bwe * self._min_rtt

    def _reduce(self, now: float) -> None:
        target = self.bwe_window()
        if target is None:
            super()._reduce(now)  # no estimate yet: behave as Reno
            return
        self.ssthresh = max(int(target), self.minimum_window)
        self._cwnd = float(min(self._cwnd, self.ssthresh))
        self._bytes_acked = 0

    def _after_persistent_congestion(self) -> None:
        super()._after_persistent_congestion()
        target = self.bwe_window()
        if target is not None:
            self.ssthresh = max(int(target), self.minimum_window)


def create_westwood(max_datagram_size: int) -> WestwoodPlus:
    return WestwoodPlus(max_datagram_size)
