"""What every window-based controller shares: the RFC 9002 §7 skeleton.

Initial and minimum window (§7.2), slow start (§7.3.1) with optional HyStart++
(RFC 9406), the congestion-recovery period that limits reductions to one per
round trip (§7.3.2, tracked by ``recovery_start_time``), persistent congestion
(§7.6.2) and the rule that an application-limited sender does not grow its
window (§7.8).  Subclasses say how the window grows in congestion avoidance and
how it shrinks on a congestion event.
"""

from __future__ import annotations

import math

from tquic.cc.base import (
    INITIAL_WINDOW_PACKETS,
    MINIMUM_WINDOW_PACKETS,
    AckedPacket,
    LostPacket,
    RttSample,
    SentInfo,
)
from tquic.cc.hystart import HyStartPlusPlus

# The smallest max_datagram_size QUIC allows (RFC 9000 §14).
MIN_MAX_DATAGRAM_SIZE = 1200


def initial_window(max_datagram_size: int) -> int:
    """RFC 9002 §7.2: min(10 * mds, max(14720, 2 * mds))."""
    return min(INITIAL_WINDOW_PACKETS * max_datagram_size, max(14720, 2 * max_datagram_size))


class WindowController:
    """Base for NewReno and CUBIC; implements the CongestionController protocol."""

    __slots__ = (
        "_cwnd",
        "_in_flight_peak",
        "_pacing_limited",
        "congestion_events",
        "hystart",
        "max_datagram_size",
        "minimum_window",
        "recovery_start_time",
        "ssthresh",
    )

    def __init__(self, max_datagram_size: int, *, hystart: bool = False) -> None:
        if max_datagram_size < MIN_MAX_DATAGRAM_SIZE:
            raise ValueError(
                f"max_datagram_size must be at least {MIN_MAX_DATAGRAM_SIZE} (RFC 9000 §14), "
                f"got {max_datagram_size!r}"
            )
        self.max_datagram_size = max_datagram_size
        self.minimum_window = MINIMUM_WINDOW_PACKETS * max_datagram_size
        self._cwnd = float(initial_window(max_datagram_size))
        # RFC 9002 §7.3.1: ssthresh starts infinite.
        self.ssthresh = math.inf
        # RFC 9002 Appendix B.2 congestion_recovery_start_time; None = never.
        self.recovery_start_time: float | None = None
        # Largest bytes in flight seen since the last ACK: the §7.8 test.
        self._in_flight_peak = 0
        # The pacer held back a packet the window had room for, since the last ACK.
        self._pacing_limited = False
        self.congestion_events = 0
        # RFC 9406 §4.2: HyStart++ only in the initial slow start.
        self.hystart: HyStartPlusPlus | None = HyStartPlusPlus() if hystart else None

    # -- protocol ---------------------------------------------------------------

    @property
    def congestion_window(self) -> int:
        return int(self._cwnd)

    @property
    def pacing_rate(self) -> float | None:
        return None

    @property
    def in_slow_start(self) -> bool:
        return self._cwnd < self.ssthresh

    def in_recovery(self, time_sent: float) -> bool:
        """RFC 9002 Appendix B.4 InCongestionRecovery."""
        start = self.recovery_start_time
        return start is not None and time_sent <= start

    def on_packet_sent(self, info: SentInfo, now: float) -> None:
        if info.bytes_in_flight > self._in_flight_peak:
            self._in_flight_peak = info.bytes_in_flight
        if self.hystart is not None:
            self.hystart.on_packet_sent(info.packet_number)

    def on_pacing_limited(self) -> None:
        """The pacer delayed a packet that the window had room for (called by the path)."""
        self._pacing_limited = True

    def is_cwnd_limited(self) -> bool:
        """RFC 9002 §7.8: was the window the limit since the last ACK?

        It was if no further full-sized datagram fitted; in slow start also if more
        than half of it was used, since the window doubles each round and a paced
        sender is never quite at the edge; and whenever the pacer held back data
        the window had room for (RFC 9002 §7.8: a sender "SHOULD NOT consider
        itself application limited if it would have fully utilized the
        congestion window without pacing delay").  Without that last rule a paced
        sender whose ACKs arrive every millisecond or so never sees its flight
        reach the window between two ACKs, and its window stops growing.
        """
        if self._pacing_limited:
            return True
        peak = self._in_flight_peak
        if peak + self.max_datagram_size > self._cwnd:
            return True
        return self._cwnd < self.ssthresh and 2 * peak > self._cwnd

    def on_packets_acked(
        self,
        acked: list[AckedPacket],
        rtt: RttSample,
        bytes_in_flight: int,
        now: float,
        ecn_ce_count: int = 0,
    ) -> None:
        cwnd_limited = self.is_cwnd_limited()
        self._in_flight_peak = bytes_in_flight
        self._pacing_limited = False
        # RFC 9002 Appendix B.5: no growth for packets sent before the recovery
        # period began; the ACK of a packet sent after it ends the period.
        growable = 0
        largest_pn = -1
        start = self.recovery_start_time  # in_recovery(), inlined: this runs per packet
        for packet in acked:
            if packet.packet_number > largest_pn:
                largest_pn = packet.packet_number
            if start is None or packet.time_sent > start:
                growable += packet.sent_bytes
        if growable and cwnd_limited:
            if self._cwnd < self.ssthresh:
                self._slow_start(growable)
            else:
                self._congestion_avoidance(growable, rtt, now)
        elif growable:
            self._on_app_limited_ack(now)
        hystart = self.hystart
        if (
            hystart is not None
            and largest_pn >= 0
            and self._cwnd < self.ssthresh
            and hystart.on_ack(largest_pn, rtt.latest_rtt, rtt.new_sample)
        ):
            # RFC 9406 §4.2: CSS_ROUNDS done: congestion avoidance from here.
            self.ssthresh = self._cwnd
            self._on_slow_start_exit(now)

    def _slow_start(self, acked_bytes: int) -> None:
        # RFC 9002 §7.3.1: grow by the bytes acknowledged (RFC 9406: a quarter in CSS).
        if self.hystart is not None and math.isinf(self.ssthresh):
            self._cwnd += self.hystart.increase(acked_bytes)
        else:
            self._cwnd += acked_bytes

    def on_packets_lost(self, lost: list[LostPacket], bytes_in_flight: int, now: float) -> None:
        if not lost:
            return
        # RFC 9002 Appendix B.8: one congestion event for the newest lost packet.
        self._on_congestion_event(max(packet.time_sent for packet in lost), now)

    def on_congestion_event_ecn(self, time_sent: float, now: float) -> None:
        # RFC 9002 §7.1 / Appendix B.7: an ECN-CE increase is a congestion event.
        self._on_congestion_event(time_sent, now)

    def _on_congestion_event(self, time_sent: float, now: float) -> None:
        # RFC 9002 Appendix B.6: no reaction if already in a recovery period.
        if self.in_recovery(time_sent):
            return
        self.recovery_start_time = now
        self.congestion_events += 1
        if self.hystart is not None:
            self.hystart.stop()
        self._reduce(now)

    def on_persistent_congestion(self, now: float) -> None:
        # RFC 9002 §7.6.2 / Appendix B.8: collapse to the minimum window and leave
        # recovery so that slow start (cwnd < ssthresh) restarts.
        self._cwnd = float(self.minimum_window)
        self.recovery_start_time = None
        self._after_persistent_congestion()

    def on_packets_discarded(self, sent_bytes: int) -> None:
        # The window does not react: the packets were neither acknowledged nor lost.
        self._in_flight_peak = max(0, self._in_flight_peak - sent_bytes)

    # -- subclass hooks -----------------------------------------------------------

    def _congestion_avoidance(self, acked_bytes: int, rtt: RttSample, now: float) -> None:
        raise NotImplementedError

    def _reduce(self, now: float) -> None:
        raise NotImplementedError

    def _on_app_limited_ack(self, now: float) -> None:
        """An ACK that would have grown the window, had the sender used it."""

    def _on_slow_start_exit(self, now: float) -> None:
        """Slow start ended without a congestion event (HyStart++ CSS done)."""

    def _after_persistent_congestion(self) -> None:
        """Extra state to reset after persistent congestion."""

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(cwnd={self.congestion_window}, ssthresh={self.ssthresh}, "
            f"recovery_start_time={self.recovery_start_time})"
        )
