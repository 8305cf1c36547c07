"""NewReno as RFC 9002 §7 and Appendix B specify it, with bytes as the unit."""

from __future__ import annotations

from tquic.cc.base import RttSample
from tquic.cc.window import WindowController

# RFC 9002 §7.3.2 / Appendix B.1 kLossReductionFactor.
LOSS_REDUCTION_FACTOR = 0.5


class NewReno(WindowController):
    """RFC 9002 §7: slow start, one halving per recovery period, AIMD avoidance."""

    __slots__ = ("_bytes_acked",)

    def __init__(self, max_datagram_size: int, *, hystart: bool = False) -> None:
        super().__init__(max_datagram_size, hystart=hystart)
        # RFC 3465 §2.1 byte counting: bytes acknowledged towards the next increment.
        self._bytes_acked = 0

    def _congestion_avoidance(self, acked_bytes: int, rtt: RttSample, now: float) -> None:
        # RFC 9002 §7.3.3: at most one max_datagram_size per congestion window
        # acknowledged; counting whole windows (RFC 3465 §2.1, which RFC 9002
        # Appendix B.5 suggests) gives exactly that without fractional bytes.
        self._bytes_acked += acked_bytes
        cwnd = int(self._cwnd)
        while self._bytes_acked >= cwnd:
            self._bytes_acked -= cwnd
            cwnd += self.max_datagram_size
        self._cwnd = float(cwnd)

    def _reduce(self, now: float) -> None:
        # RFC 9002 Appendix B.6 OnCongestionEvent.
        self.ssthresh = int(self._cwnd * LOSS_REDUCTION_FACTOR)
        self._cwnd = float(max(self.ssthresh, self.minimum_window))
        self._bytes_acked = 0

    def _after_persistent_congestion(self) -> None:
        self._bytes_acked = 0


def create_newreno(max_datagram_size: int) -> NewReno:
    return NewReno(max_datagram_size)
