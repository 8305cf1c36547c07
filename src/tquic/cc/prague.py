"""TCP Prague (L4S: RFC 9330 architecture, RFC 9331 ECN protocol) on QUIC's Reno skeleton.

RFC 9331 §4.3 ("Prague L4S requirements") asks an L4S sender to mark its
packets ECT(1), to respond to CE marks in proportion to their extent (a
DCTCP-like scalable response), to fall back to a classic (Reno-friendly)
response to loss, and optionally to reduce its RTT dependence.  As in DCTCP
(RFC 8257 §3.3) and draft-briscoe-iccrg-prague-congestion-control:

- once per round, alpha = (1 - g) * alpha + g * F with F the fraction of the
  round's bytes delivered CE-marked and g = 1/16;
- on the first CE mark of a round, cwnd *= (1 - alpha / 2), at most once per
  round (the CWR period), and slow start ends;
- otherwise Reno: +1 MSS per RTT, halve on loss (RFC 9002 §7), optionally with
  the increase scaled by (srtt / 25 ms)^2 below 25 ms so that short-RTT flows
  gain rate no faster than a 25 ms flow would (RTT independence);
- smooth sending (RFC 9331 §4.3 asks L4S senders to avoid bursts that a shallow
  ~1 ms marking step would take for congestion): pace at cwnd / srtt in
  congestion avoidance and twice that in slow start, in bursts of at most
  ``pacing_burst_packets`` datagrams.  With the default 10-datagram bursts a
  small window leaves as one burst, every round gets a mark, and alpha (still
  near 1 after slow start) collapses the window for dozens of rounds.

The endpoint reads ``ecn_codepoint`` ("ect1") to mark the packets it sends, and
the path's pacer is built with ``pacing_burst_packets``.  The ACK_ECN counts it
sees are validated first (RFC 9000 §13.4.2, tquic.paths.ecn): ``ecn_ce_count``
is the increase of the peer's CE counter, so alpha follows the fraction of
CE-marked packets, per round, that the network really applied.
"""

from __future__ import annotations

from tquic.cc.base import AckedPacket, RttSample, SentInfo
from tquic.cc.newreno import NewReno

ALPHA_GAIN = 1.0 / 16  # RFC 8257 §4.2 g
REFERENCE_RTT = 0.025  # draft-briscoe-iccrg-prague-congestion-control: 25 ms target


class Prague(NewReno):
    """Scalable (DCTCP-style) response to ECN-CE, Reno response to loss."""

    __slots__ = (
        "_acked_in_round",
        "_ce_in_round",
        "_cwr_end_pn",
        "_largest_sent",
        "_round_end_pn",
        "_srtt",
        "alpha",
        "ce_reductions",
        "rtt_independence",
    )

    #: The ECN codepoint the endpoint must set on this path's packets (RFC 9331 §4.1).
    ecn_codepoint = "ect1"
    #: The pacer's burst allowance for this path, in datagrams (see the module docstring).
    pacing_burst_packets = 2

    def __init__(self, max_datagram_size: int, *, rtt_independence: bool = False) -> None:
        super().__init__(max_datagram_size)
        # RFC 8257 §3.3: alpha starts at 1 so the first marks get a full response.
        self.alpha = 1.0
        self.rtt_independence = rtt_independence
        self.ce_reductions = 0
        self._acked_in_round = 0
        self._ce_in_round = 0
        self._largest_sent = -1
        self._round_end_pn = -1  # a round ends when a packet sent after this is acked
        self._cwr_end_pn = -1  # no CE reduction until a packet above this is acked
        self._srtt = 0.0

    @property
    def pacing_rate(self) -> float | None:
        # 100 % of cwnd / srtt in congestion avoidance, 200 % in slow start (the window
        # doubles per round); None until an RTT sample: the initial window is the limit.
        srtt = self._srtt
        if srtt <= 0.0:
            return None
        return (2.0 if self.in_slow_start else 1.0) * self._cwnd / srtt

    def on_packet_sent(self, info: SentInfo, now: float) -> None:
        if info.packet_number > self._largest_sent:
            self._largest_sent = info.packet_number
        super().on_packet_sent(info, now)

    def on_packets_acked(
        self,
        acked: list[AckedPacket],
        rtt: RttSample,
        bytes_in_flight: int,
        now: float,
        ecn_ce_count: int = 0,
    ) -> None:
        self._srtt = rtt.smoothed_rtt
        if acked:
            largest = acked[-1].packet_number
            # A packet sent after the round began closes it (and opens the next).
            if largest > self._round_end_pn:
                self._end_round()
            acked_bytes = sum(p.sent_bytes for p in acked)
            self._acked_in_round += acked_bytes
            if ecn_ce_count > 0:
                # ACKs count CE packets: credit each with the mean acked size.
                ce = min(ecn_ce_count, len(acked))
                self._ce_in_round += ce * acked_bytes // len(acked)
            if ecn_ce_count > 0 and largest > self._cwr_end_pn:
                self._ce_reduction()
        super().on_packets_acked(acked, rtt, bytes_in_flight, now, ecn_ce_count)

    def _end_round(self) -> None:
        # RFC 8257 §3.3: alpha from the share of CE-marked bytes in the last round.
        if self._acked_in_round > 0:
            fraction = min(1.0, self._ce_in_round / self._acked_in_round)
            self.alpha = (1.0 - ALPHA_GAIN) * self.alpha + ALPHA_GAIN * fraction
        self._acked_in_round = 0
        self._ce_in_round = 0
        self._round_end_pn = self._largest_sent

    def _ce_reduction(self) -> None:
        # RFC 8257 §3.3: cwnd = cwnd * (1 - alpha / 2), once per round trip.
        self._cwnd = max(self._cwnd * (1.0 - self.alpha / 2.0), float(self.minimum_window))
        self.ssthresh = int(self._cwnd)
        self._bytes_acked = 0
        self._cwr_end_pn = self._largest_sent
        self.ce_reductions += 1
        if self.hystart is not None:
            self.hystart.stop()

    def on_congestion_event_ecn(self, time_sent: float, now: float) -> None:
        # The scalable response above replaces RFC 9002 §7.1's halving on CE.
        return

    def _congestion_avoidance(self, acked_bytes: int, rtt: RttSample, now: float) -> None:
        if self.rtt_independence and 0 < rtt.smoothed_rtt < REFERENCE_RTT:
            # Grow like a 25 ms flow: (srtt / 25 ms)^2 MSS per round.
            scale = (rtt.smoothed_rtt / REFERENCE_RTT) ** 2
            acked_bytes = max(1, int(acked_bytes * scale))
        super()._congestion_avoidance(acked_bytes, rtt, now)


def create_prague(max_datagram_size: int) -> Prague:
    return Prague(max_datagram_size)
