"""What BBRv1 and BBRv2/v3 share: filters, the delivery-rate sampler, the cwnd plumbing.

- :class:`WindowedMaxFilter`: Kathleen Nichols' windowed max over three samples
  (the "minmax" filter named by draft-cardwell-iccrg-bbr-congestion-control-00
  §4.1.1.1 and draft-ietf-ccwg-bbr "BBR.MaxBwFilter").
- :class:`DeliveryRateSampler`: draft-cheng-iccrg-delivery-rate-estimation §3.
  The controller keeps its own per-packet send state, keyed by (packet number,
  send time) because path 0 reuses packet numbers across the Initial, Handshake
  and Application spaces, so it needs nothing from recovery beyond the
  :class:`~tquic.cc.base.SentInfo` / :class:`~tquic.cc.base.AckedPacket` /
  :class:`~tquic.cc.base.LostPacket` basics: a lost packet's ``tx_in_flight``
  and ``lost`` at send time (BBRv3's loss rate per flight) are not in
  ``LostPacket``, and this keeps the controllers testable with synthetic ACKs.
- :class:`BbrBase`: the CongestionController protocol around a per-ACK model
  update, with the recovery cwnd modulation both drafts share ("Modulating
  cwnd in Loss Recovery"), send quantum and pacing-rate initialisation.
"""

from __future__ import annotations

import math
from collections import OrderedDict

from tquic.cc.base import AckedPacket, LostPacket, RttSample, SentInfo
from tquic.cc.window import MIN_MAX_DATAGRAM_SIZE, initial_window

INF = math.inf
# Sent-packet state older than this many smoothed RTTs (and at least
# STATE_HORIZON_MIN seconds) is forgotten: such a packet was acknowledged, lost
# or discarded long ago (on_packets_discarded carries no packet numbers).
STATE_HORIZON_RTTS = 16
STATE_HORIZON_MIN = 4.0
# draft-cardwell-iccrg-bbr-congestion-control-00 §4.2.2 send quantum thresholds.
LOW_PACING_RATE = 1.2e6 / 8  # 1.2 Mbit/s in bytes per second
HIGH_PACING_RATE = 24e6 / 8  # 24 Mbit/s
MAX_SEND_QUANTUM = 64 * 1024


class WindowedMaxFilter:
    """Max of the samples whose time is within ``window`` of the newest (Nichols' minmax)."""

    __slots__ = ("_t", "_v", "window")

    def __init__(self, window: float) -> None:
        self.window = window
        self._t = [0.0, 0.0, 0.0]
        self._v = [0.0, 0.0, 0.0]

    def reset(self, t: float, v: float) -> None:
        self._t = [t, t, t]
        self._v = [v, v, v]

    @property
    def value(self) -> float:
        return self._v[0]

    def update(self, t: float, v: float) -> float:
        tt, vv, win = self._t, self._v, self.window
        if v >= vv[0] or t - tt[2] > win:
            self.reset(t, v)
            return v
        if v >= vv[1]:
            tt[1] = tt[2] = t
            vv[1] = vv[2] = v
        elif v >= vv[2]:
            tt[2] = t
            vv[2] = v
        # Age out the best sample when it leaves the window; keep the 2nd/3rd
        # samples spread over the window (a quarter and a half of it).
        dt = t - tt[0]
        if dt > win:
            tt[0], vv[0] = tt[1], vv[1]
            tt[1], vv[1] = tt[2], vv[2]
            tt[2], vv[2] = t, v
            if t - tt[0] > win:
                tt[0], vv[0] = tt[1], vv[1]
                tt[1], vv[1] = tt[2], vv[2]
                tt[2], vv[2] = t, v
        elif tt[1] == tt[0] and dt > win / 4:
            tt[1] = tt[2] = t
            vv[1] = vv[2] = v
        elif tt[2] == tt[1] and dt > win / 2:
            tt[2] = t
            vv[2] = v
        return vv[0]


class PacketState:
    """Delivery-rate state of one sent packet (draft-cheng §3.2 "P.*")."""

    __slots__ = (
        "app_limited",
        "ce_delivered",
        "delivered",
        "delivered_time",
        "first_sent_time",
        "lost",
        "send_time",
        "size",
        "tx_in_flight",
    )

    def __init__(
        self,
        size: int,
        send_time: float,
        delivered: int,
        delivered_time: float,
        first_sent_time: float,
        app_limited: bool,
        tx_in_flight: int,
        lost: int,
        ce_delivered: int,
    ) -> None:
        self.size = size
        self.send_time = send_time
        self.delivered = delivered
        self.delivered_time = delivered_time
        self.first_sent_time = first_sent_time
        self.app_limited = app_limited
        self.tx_in_flight = tx_in_flight
        self.lost = lost
        self.ce_delivered = ce_delivered


class RateSample:
    """One ACK's rate sample (draft-cheng §3.3 "rs.*"), plus what BBRv3 reads from it."""

    __slots__ = (
        "ce_delivered",
        "delivered",
        "delivery_rate",
        "interval",
        "is_app_limited",
        "lost",
        "newly_acked",
        "newly_lost",
        "prior_delivered",
        "rtt",
        "tx_in_flight",
        "valid",
    )

    def __init__(self) -> None:
        self.delivery_rate = 0.0  # bytes per second; 0 when not valid
        self.valid = False
        self.is_app_limited = False
        self.interval = 0.0
        self.delivered = 0  # bytes delivered over the interval
        self.prior_delivered = 0  # C.delivered when the sampled packet was sent
        self.newly_acked = 0
        self.newly_lost = 0
        self.lost = 0  # C.lost - P.lost for the sampled packet
        self.tx_in_flight = 0  # bytes in flight when the sampled packet was sent
        self.rtt = -1.0  # latest RTT sample, -1 when this ACK gave none
        self.ce_delivered = 0  # bytes delivered CE-marked over the interval (estimated)


class DeliveryRateSampler:
    """draft-cheng-iccrg-delivery-rate-estimation §3, with per-connection "C.*" counters."""

    __slots__ = (
        "_packets",
        "app_limited_until",
        "ce_delivered",
        "delivered",
        "delivered_time",
        "first_sent_time",
        "lost",
    )

    def __init__(self) -> None:
        self._packets: OrderedDict[tuple[int, float], PacketState] = OrderedDict()
        self.delivered = 0  # C.delivered (bytes)
        self.delivered_time = 0.0  # C.delivered_time
        self.first_sent_time = 0.0  # C.first_sent_time
        self.lost = 0  # C.lost (bytes)
        # Bytes delivered with ECN-CE: ACKs count CE packets, so each is
        # credited with the mean size of the packets that ACK acknowledged.
        self.ce_delivered = 0
        # C.app_limited: the delivered count at which the app-limited phase ends (0: not).
        self.app_limited_until = 0

    def __len__(self) -> int:
        return len(self._packets)

    def mark_app_limited(self, bytes_in_flight: int) -> None:
        """draft-cheng §3.4: samples until everything in flight is delivered are app-limited."""
        self.app_limited_until = max(self.delivered + bytes_in_flight, 1)

    def on_packet_sent(self, info: SentInfo) -> None:
        # draft-cheng §3.2: an idle restart starts a new flight.
        if info.bytes_in_flight <= info.sent_bytes:
            self.first_sent_time = self.delivered_time = info.time_sent
        if info.app_limited:
            self.mark_app_limited(info.bytes_in_flight)
        self._packets[(info.packet_number, info.time_sent)] = PacketState(
            info.sent_bytes,
            info.time_sent,
            self.delivered,
            self.delivered_time,
            self.first_sent_time,
            self.app_limited_until != 0,
            info.bytes_in_flight,
            self.lost,
            self.ce_delivered,
        )

    def on_ack(
        self, acked: list[AckedPacket], now: float, min_rtt: float, ce_count: int = 0
    ) -> RateSample:
        """draft-cheng §3.3 UpdateRateSample for each packet, then GenerateRateSample."""
        rs = RateSample()
        packets = self._packets
        best: PacketState | None = None
        for ack in acked:
            p = packets.pop((ack.packet_number, ack.time_sent), None)
            if p is None:
                continue
            self.delivered += p.size
            self.delivered_time = now
            rs.newly_acked += p.size
            # The most recently sent packet of the ACK gives the sample.
            if best is None or p.delivered >= best.delivered:
                best = p
        if ce_count > 0 and acked:
            self.ce_delivered += min(ce_count, len(acked)) * rs.newly_acked // len(acked)
        if self.app_limited_until and self.delivered > self.app_limited_until:
            self.app_limited_until = 0
        if best is None:
            return rs
        # Later flights are measured from this packet's send time.
        self.first_sent_time = best.send_time
        rs.prior_delivered = best.delivered
        rs.is_app_limited = best.app_limited
        rs.tx_in_flight = best.tx_in_flight
        rs.lost = self.lost - best.lost
        rs.ce_delivered = self.ce_delivered - best.ce_delivered
        rs.delivered = self.delivered - best.delivered
        send_elapsed = best.send_time - best.first_sent_time
        ack_elapsed = self.delivered_time - best.delivered_time
        # draft-cheng §3.3: the longer phase bounds the rate (ACK compression and
        # send bursts both inflate the shorter one); shorter than min_rtt means
        # the sample cannot be trusted.
        interval = max(send_elapsed, ack_elapsed)
        rs.interval = interval
        if interval > 0 and interval >= min_rtt:
            rs.delivery_rate = rs.delivered / interval
            rs.valid = True
        return rs

    def on_loss(self, lost: list[LostPacket]) -> list[tuple[PacketState, int]]:
        """Count lost bytes (C.lost) packet by packet.

        Returns, for each lost packet we knew, its send state and C.lost just after
        that packet was counted: draft-ietf-ccwg-bbr "BBRHandleLostPacket" reads
        ``C.lost - packet.lost`` as each packet is marked lost, so a packet early in
        a batch must not be charged with the losses that follow it.
        """
        out: list[tuple[PacketState, int]] = []
        packets = self._packets
        for packet in lost:
            self.lost += packet.sent_bytes
            p = packets.pop((packet.packet_number, packet.time_sent), None)
            if p is not None:
                out.append((p, self.lost))
        return out

    def _prune(self, now: float, horizon: float = STATE_HORIZON_MIN) -> None:
        packets = self._packets
        limit = now - horizon
        while packets:
            key = next(iter(packets))
            if key[1] >= limit:
                break
            del packets[key]

    def prune(self, now: float, smoothed_rtt: float) -> None:
        self._prune(now, max(STATE_HORIZON_MIN, STATE_HORIZON_RTTS * smoothed_rtt))


def send_quantum(pacing_rate: float, mss: int) -> int:
    """draft-cardwell-iccrg-bbr-congestion-control-00 §4.2.2 / draft-ietf-ccwg-bbr
    "Send Quantum": 1 packet below 1.2 Mbit/s, 2 below 24 Mbit/s, else 1 ms of data."""
    if pacing_rate < LOW_PACING_RATE:
        return mss
    if pacing_rate < HIGH_PACING_RATE:
        return 2 * mss
    return int(min(pacing_rate * 0.001, MAX_SEND_QUANTUM))


class BbrBase:
    """Protocol plumbing, round counting, min_rtt and recovery cwnd modulation.

    Subclasses implement :meth:`_update` (the per-ACK model and state update and
    cwnd/pacing computation) and may extend :meth:`_on_loss`.
    """

    __slots__ = (
        "_cwnd",
        "_has_seen_rtt",
        "_in_flight_peak",
        "_lost_since_ack",
        "_pacing_rate",
        "_rto_recovery",
        "_smoothed_rtt",
        "conservation_end_delivered",
        "in_recovery",
        "initial_cwnd",
        "max_datagram_size",
        "min_pipe_cwnd",
        "min_rtt",
        "min_rtt_stamp",
        "next_round_delivered",
        "packet_conservation",
        "prior_cwnd",
        "recovery_start_time",
        "round_count",
        "round_start",
        "sampler",
        "startup_pacing_gain",
    )

    #: Minimum cwnd in packets (BBRMinPipeCwnd, both drafts: 4 packets).
    MIN_PIPE_CWND_PACKETS = 4
    #: Whether fast-recovery losses cut cwnd directly (packet conservation for a
    #: round, then cwnd - lost).  BBRv1 does ("Modulating cwnd in Loss Recovery",
    #: draft-cardwell-iccrg-bbr-congestion-control-00 §4.2.3.4); BBRv2/v3 turn it
    #: off (see Bbr3.RECOVERY_CWND_MODULATION).
    RECOVERY_CWND_MODULATION = True

    def __init__(self, max_datagram_size: int, startup_pacing_gain: float) -> None:
        if max_datagram_size < MIN_MAX_DATAGRAM_SIZE:
            raise ValueError(
                f"max_datagram_size must be at least {MIN_MAX_DATAGRAM_SIZE} (RFC 9000 §14), "
                f"got {max_datagram_size!r}"
            )
        mss = max_datagram_size
        self.max_datagram_size = mss
        self.min_pipe_cwnd = self.MIN_PIPE_CWND_PACKETS * mss
        self.initial_cwnd = initial_window(mss)
        self._cwnd = float(self.initial_cwnd)
        self.sampler = DeliveryRateSampler()
        self.min_rtt = INF
        self.min_rtt_stamp = 0.0
        self._smoothed_rtt = 0.0
        # Round counting (both drafts "Round counting"): a round ends when a packet
        # sent after its start is delivered.
        self.round_count = 0
        self.round_start = False
        self.next_round_delivered = 0
        # Loss recovery (RFC 9002 §7.3.2 recovery period; drafts' "Modulating cwnd
        # in Loss Recovery").
        self.in_recovery = False
        self.recovery_start_time = 0.0
        self.packet_conservation = False
        self.conservation_end_delivered = 0
        self.prior_cwnd = 0.0
        self._rto_recovery = False  # this recovery began with persistent congestion
        self._in_flight_peak = 0
        self._lost_since_ack = 0
        # BBRInitPacingRate: nominal bandwidth = InitialCwnd / (SRTT or 1 ms); redone
        # with the first RTT sample, as there is no SRTT when the path starts.
        self.startup_pacing_gain = startup_pacing_gain
        self._pacing_rate = startup_pacing_gain * self.initial_cwnd / 0.001
        self._has_seen_rtt = False

    # -- protocol ---------------------------------------------------------------

    @property
    def congestion_window(self) -> int:
        return int(self._cwnd)

    @property
    def pacing_rate(self) -> float | None:
        return self._pacing_rate

    def on_packet_sent(self, info: SentInfo, now: float) -> None:
        self.sampler.on_packet_sent(info)
        if info.bytes_in_flight > self._in_flight_peak:
            self._in_flight_peak = info.bytes_in_flight

    def on_packets_acked(
        self,
        acked: list[AckedPacket],
        rtt: RttSample,
        bytes_in_flight: int,
        now: float,
        ecn_ce_count: int = 0,
    ) -> None:
        self._smoothed_rtt = rtt.smoothed_rtt
        # draft-cheng §3.3 discards samples shorter than the path's min RTT.
        path_min_rtt = rtt.min_rtt if math.isfinite(rtt.min_rtt) else 0.0
        rs = self.sampler.on_ack(acked, now, path_min_rtt, ecn_ce_count)
        # Losses are reported apart from ACKs; the next ACK's sample carries them.
        rs.newly_lost = self._lost_since_ack
        self._lost_since_ack = 0
        if rtt.new_sample:
            rs.rtt = rtt.latest_rtt
            if not self._has_seen_rtt and rtt.smoothed_rtt > 0:
                self._has_seen_rtt = True
                self._pacing_rate = (
                    self.startup_pacing_gain * self.initial_cwnd / rtt.smoothed_rtt
                )
        self.sampler.prune(now, rtt.smoothed_rtt)
        if rs.newly_acked == 0:
            return
        cwnd_limited = self._in_flight_peak + self.max_datagram_size > self._cwnd
        self._in_flight_peak = bytes_in_flight
        # RFC 9002 §7.3.2: the recovery period ends when a packet sent after it began
        # is acknowledged.
        if self.in_recovery and any(a.time_sent > self.recovery_start_time for a in acked):
            self._exit_recovery()
        if self.packet_conservation and self.sampler.delivered >= self.conservation_end_delivered:
            self.packet_conservation = False  # one round of conservation is enough
        self._update(rs, bytes_in_flight, now, ecn_ce_count, cwnd_limited)

    def on_packets_lost(self, lost: list[LostPacket], bytes_in_flight: int, now: float) -> None:
        if not lost:
            return
        states = self.sampler.on_loss(lost)
        lost_bytes = sum(p.sent_bytes for p in lost)
        self._lost_since_ack += lost_bytes
        modulate = self.RECOVERY_CWND_MODULATION
        if not self.in_recovery:
            # RFC 9002 §7.3.2: a recovery period starts (BBRv3 reads it to judge
            # Startup's loss exit).  With modulation, "Upon entering Fast Recovery":
            # save cwnd, keep what is in flight plus one packet, conserve for a round.
            self.prior_cwnd = self._save_cwnd()
            self.in_recovery = True
            self.recovery_start_time = now
            if modulate:
                self._cwnd = float(bytes_in_flight + self.max_datagram_size)
                self.packet_conservation = True
                self.conservation_end_delivered = self.sampler.delivered + bytes_in_flight
        elif modulate:
            self._cwnd = max(self._cwnd - lost_bytes, float(self.max_datagram_size))
        self._on_loss(lost, states, bytes_in_flight, now)

    def on_congestion_event_ecn(self, time_sent: float, now: float) -> None:
        # ECN-CE is read per ACK from on_packets_acked's ecn_ce_count (BBRv3); the
        # classic RFC 9002 §7.1 halving does not apply to model-based controllers.
        return

    def on_persistent_congestion(self, now: float) -> None:
        # Both drafts "Upon retransmission timeout": save cwnd and restart from a
        # minimal flight; RFC 9002 §7.6.2 persistent congestion is QUIC's RTO.
        self.prior_cwnd = self._save_cwnd()
        self.in_recovery = True
        self._rto_recovery = True
        self.recovery_start_time = now
        self.packet_conservation = False
        self._on_persistent_congestion(now)
        self._cwnd = float(self.min_pipe_cwnd)

    def on_packets_discarded(self, sent_bytes: int) -> None:
        self._in_flight_peak = max(0, self._in_flight_peak - sent_bytes)

    # -- shared model pieces ----------------------------------------------------

    def _update_round(self, rs: RateSample) -> None:
        """"Round counting": a round ends when a packet sent after the last round
        end is acknowledged (P.delivered >= BBR.next_round_delivered)."""
        if rs.prior_delivered >= self.next_round_delivered and rs.newly_acked:
            self._start_round()
            self.round_count += 1
            self.round_start = True
            self._on_round_start()
        else:
            self.round_start = False

    def _start_round(self) -> None:
        self.next_round_delivered = self.sampler.delivered

    def _on_round_start(self) -> None:
        """Per-round counters of subclasses."""

    def _save_cwnd(self) -> float:
        # BBRSaveCwnd: in recovery or ProbeRTT the current cwnd is already reduced.
        if not self.in_recovery and not self._in_probe_rtt():
            return self._cwnd
        return max(self.prior_cwnd, self._cwnd)

    def _restore_cwnd(self) -> None:
        self._cwnd = max(self._cwnd, self.prior_cwnd)

    def _exit_recovery(self) -> None:
        # "Upon exiting loss recovery ... restore the best-known cwnd": after any
        # recovery when losses cut cwnd, after an RTO-style collapse otherwise
        # (Linux tcp_bbr.c v3 bbr_exit_loss_recovery on leaving TCP_CA_Loss).
        self.in_recovery = False
        self.packet_conservation = False
        if self.RECOVERY_CWND_MODULATION or self._rto_recovery:
            self._restore_cwnd()
        self._rto_recovery = False

    def _modulate_cwnd_for_recovery(self, rs: RateSample, bytes_in_flight: int) -> None:
        """BBRModulateCwndForRecovery (the loss reduction itself happened in on_packets_lost)."""
        if self.packet_conservation:
            self._cwnd = max(self._cwnd, float(bytes_in_flight + rs.newly_acked))

    def _bdp(self, bw: float, gain: float) -> float:
        """BBRBDPMultiple / BBRInflight without quantization: gain * bw * min_rtt."""
        if math.isinf(self.min_rtt):
            return float(self.initial_cwnd)  # no RTT sample yet
        return gain * bw * self.min_rtt

    def _set_pacing_rate_with_gain(self, bw: float, gain: float, margin: float) -> None:
        """BBRSetPacingRateWithGain: never lower the rate before the pipe is full."""
        rate = gain * bw * (1.0 - margin)
        if rate > 0 and (self._full_bw_reached() or rate > self._pacing_rate):
            self._pacing_rate = rate

    # -- subclass hooks ---------------------------------------------------------

    def _update(
        self,
        rs: RateSample,
        bytes_in_flight: int,
        now: float,
        ecn_ce_count: int,
        cwnd_limited: bool,
    ) -> None:
        raise NotImplementedError

    def _on_loss(
        self,
        lost: list[LostPacket],
        states: list[tuple[PacketState, int]],
        bytes_in_flight: int,
        now: float,
    ) -> None:
        """Model reaction to loss (BBRv3 inflight_hi); BBRv1 has none.

        ``states``: (send state, C.lost just after the packet) per known lost packet.
        """

    def _on_persistent_congestion(self, now: float) -> None:
        """Model reaction to an RTO-style collapse, before cwnd drops (BBRv3)."""

    def _full_bw_reached(self) -> bool:
        raise NotImplementedError

    def _in_probe_rtt(self) -> bool:
        raise NotImplementedError
