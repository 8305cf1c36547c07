"""Loss detection and congestion-control glue for one path (RFC 9002, Appendix A, per path).

Multipath is the normal case (DESIGN.md): each path has its own packet-number
space, RTT estimator, loss detector, congestion controller and pacer
(draft-ietf-quic-multipath §"Congestion Control", §"Computing Path RTT").  Path 0
also carries the connection's Initial and Handshake spaces; on other paths those
spaces do not exist.

The loss-detection timer is not stored: :meth:`PathRecovery.loss_detection_deadline`
computes RFC 9002 Appendix A.8 SetLossDetectionTimer from the current state, so
every state change (a flag the engine flips, a packet sent, an ACK) is reflected
without a "rearm" call.  The only remembered time is when the timer was last
(re)armed, which the client's anti-deadlock PTO counts from.

Nothing here reads a clock: every entry point takes ``now`` (float seconds).
"""

from __future__ import annotations

from tquic.cc.base import AckedPacket, CongestionController, LostPacket, SentInfo
from tquic.cc.pacer import DEFAULT_BURST_PACKETS, PACING_GAIN, Pacer
from tquic.paths.ecn import EcnValidator
from tquic.paths.loss_detection import (
    K_PACKET_THRESHOLD,
    K_PERSISTENT_CONGESTION_THRESHOLD,
    K_TIME_THRESHOLD,
    check_ack_ranges,
    detect_lost,
    earliest_loss_time,
    in_persistent_congestion,
    loss_delay,
    remove_acked,
)
from tquic.paths.pto import (
    anti_deadlock_space,
    persistent_congestion_duration,
    pto_backoff,
    pto_time_and_space,
)
from tquic.paths.rtt import K_GRANULARITY, K_INITIAL_RTT, RttEstimator
from tquic.paths.sent_packets import (
    EMPTY_ACK,
    AckOutcome,
    PacketSpace,
    SentPacket,
    SpaceId,
    TimeoutOutcome,
    acked_records,
)

__all__ = [
    "K_PACKET_THRESHOLD",
    "K_PERSISTENT_CONGESTION_THRESHOLD",
    "K_TIME_THRESHOLD",
    "AckOutcome",
    "PathRecovery",
    "SentPacket",
    "SpaceId",
    "TimeoutOutcome",
]

# RFC 9000 §18.2 max_ack_delay default (25 ms), until the peer's parameters say otherwise.
DEFAULT_MAX_ACK_DELAY = 0.025
_NO_TIMEOUT = TimeoutOutcome([], None, 0)
_SPACES = (SpaceId.INITIAL, SpaceId.HANDSHAKE, SpaceId.APPLICATION)


def _pacer_for(controller: CongestionController, max_datagram_size: int) -> Pacer:
    # A controller may ask for smaller bursts (``pacing_burst_packets``): an L4S one
    # whose shallow marking step a 10-datagram burst would already cross.
    burst = getattr(controller, "pacing_burst_packets", DEFAULT_BURST_PACKETS)
    return Pacer(max_datagram_size, burst_packets=int(burst))


class PathRecovery:
    """RFC 9002 loss recovery for one path, with its controller and pacer."""

    __slots__ = (
        "_ack_eliciting_in_flight",
        "_app_limited_until",
        "_delivered",
        "_delivered_time",
        "_first_rtt_sample_time",
        "_first_sent_time",
        "_live_spaces",
        "_peer_validated",
        "_spaces",
        "_timer_armed_at",
        "amplification_limited",
        "bytes_acked",
        "bytes_in_flight",
        "bytes_lost",
        "bytes_sent",
        "controller",
        "ecn",
        "handshake_confirmed",
        "has_handshake_keys",
        "is_client",
        "max_datagram_size",
        "pacer",
        "packets_acked",
        "packets_lost",
        "packets_sent",
        "path_id",
        "peer_max_ack_delay",
        "persistent_congestion_events",
        "pto_count",
        "rtt",
    )

    def __init__(
        self,
        controller: CongestionController,
        max_datagram_size: int,
        *,
        initial_rtt: float = K_INITIAL_RTT,
        is_client: bool,
        path_id: int = 0,
        peer_max_ack_delay: float = DEFAULT_MAX_ACK_DELAY,
        pacer: Pacer | None = None,
        ecn: EcnValidator | None = None,
    ) -> None:
        if max_datagram_size <= 0:
            raise ValueError(f"max_datagram_size must be positive, got {max_datagram_size!r}")
        if path_id < 0:
            raise ValueError(f"path_id must not be negative, got {path_id!r}")
        self.controller = controller
        self.max_datagram_size = max_datagram_size
        self.is_client = is_client
        self.path_id = path_id
        self.rtt = RttEstimator(initial_rtt)
        self.pacer = pacer if pacer is not None else _pacer_for(controller, max_datagram_size)
        # ECN validation of this path (RFC 9000 §13.4.2); disabled unless the engine
        # gives one: then ACK_ECN counts are validated before the controller sees CE.
        self.ecn = ecn if ecn is not None else EcnValidator(enabled=False)
        self.peer_max_ack_delay = peer_max_ack_delay
        self._spaces = (
            PacketSpace(SpaceId.INITIAL),
            PacketSpace(SpaceId.HANDSHAKE),
            PacketSpace(SpaceId.APPLICATION),
        )
        if path_id != 0:
            # Initial and Handshake belong to the connection and run on path 0 only.
            self._spaces[SpaceId.INITIAL].discarded = True
            self._spaces[SpaceId.HANDSHAKE].discarded = True
        # The spaces not discarded, for the timer computations the engine asks for after
        # every datagram (a discarded space has no loss time and nothing in flight).
        self._live_spaces = tuple(s for s in self._spaces if not s.discarded)
        self.bytes_in_flight = 0
        self.pto_count = 0
        self._ack_eliciting_in_flight = 0
        # RFC 9002 Appendix A.3 first_rtt_sample (None = no sample yet).
        self._first_rtt_sample_time: float | None = None
        # Engine-owned flags.  Paths other than 0 exist only after the handshake
        # is confirmed (draft-ietf-quic-multipath §"Path Initiation").
        self.handshake_confirmed = path_id != 0
        self.has_handshake_keys = False
        # Server at its anti-amplification limit (RFC 9002 §6.2.2.1): no PTO timer.
        self.amplification_limited = False
        self._peer_validated = False
        self._timer_armed_at = 0.0
        # Delivery-rate sampling (draft-cheng-iccrg-delivery-rate-estimation §3.1).
        self._delivered = 0
        self._delivered_time = 0.0
        self._first_sent_time = 0.0
        self._app_limited_until = 0
        # Counters.
        self.packets_sent = 0
        self.packets_acked = 0
        self.packets_lost = 0
        self.bytes_sent = 0
        self.bytes_acked = 0
        self.bytes_lost = 0
        self.persistent_congestion_events = 0

    def set_controller(self, controller: CongestionController) -> None:
        """Use ``controller`` instead (a per-path choice, before anything was sent): the
        pacer's burst and the ECN codepoint follow what it asks for."""
        self.controller = controller
        self.pacer = _pacer_for(controller, self.max_datagram_size)
        self.ecn.use_codepoint_of(controller)

    # -- flags ------------------------------------------------------------------------

    @property
    def peer_completed_address_validation(self) -> bool:
        """RFC 9002 Appendix A.8 PeerCompletedAddressValidation.

        A server assumes the client validated its address; a client knows the
        server validated its own once a Handshake packet was acknowledged or the
        handshake is confirmed (set automatically; the engine may also set it).
        """
        if not self.is_client:
            return True
        return self._peer_validated or self.handshake_confirmed

    @peer_completed_address_validation.setter
    def peer_completed_address_validation(self, value: bool) -> None:
        self._peer_validated = value

    @property
    def first_rtt_sample_time(self) -> float | None:
        return self._first_rtt_sample_time

    @property
    def delivered(self) -> int:
        """Bytes acknowledged on this path so far (delivery-rate C.delivered)."""
        return self._delivered

    def largest_acked(self, space: SpaceId) -> int | None:
        largest = self._spaces[space].largest_acked
        return largest if largest >= 0 else None

    def largest_sent(self, space: SpaceId) -> int | None:
        largest = self._spaces[space].largest_sent
        return largest if largest >= 0 else None

    def ack_eliciting_in_flight(self, space: SpaceId | None = None) -> int:
        if space is None:
            return self._ack_eliciting_in_flight
        return self._spaces[space].ack_eliciting_in_flight

    def in_flight_packets(self, space: SpaceId) -> list[SentPacket]:
        """Unacknowledged, not-yet-lost packets of ``space``, oldest first (for probes)."""
        return list(self._spaces[space].sent.values())

    def oldest_in_flight_time(self, space: SpaceId) -> float | None:
        """When the oldest ack-eliciting packet of ``space`` still awaiting its ACK was
        sent (None: none; PacketSpace.oldest_ack_eliciting_time)."""
        return self._spaces[space].oldest_ack_eliciting_time()

    def is_discarded(self, space: SpaceId) -> bool:
        return self._spaces[space].discarded

    # -- sending ----------------------------------------------------------------------

    def can_send(self, size: int) -> bool:
        """Whether ``size`` more bytes fit in the congestion window (RFC 9002 §7)."""
        return self.bytes_in_flight + size <= self.controller.congestion_window

    def congestion_window_available(self) -> int:
        return max(0, self.controller.congestion_window - self.bytes_in_flight)

    def pacing_rate(self) -> float | None:
        """Bytes per second: the controller's, else 1.25 * cwnd / smoothed_rtt (RFC 9002 §7.7).

        None (no pacing) before the first RTT sample: until then the initial window
        is the only limit.
        """
        controller = self.controller
        rate = controller.pacing_rate
        if rate is not None:
            return rate
        rtt = self.rtt
        if not rtt.has_sample:
            return None
        srtt = rtt.smoothed_rtt
        cwnd = controller.congestion_window
        if srtt <= 0 or cwnd <= 0:
            return None
        return PACING_GAIN * cwnd / srtt  # window_pacing_rate, inlined (per packet)

    def next_send_time(self, now: float, size: int) -> float:
        """When a paced packet of ``size`` bytes may leave (``now`` if it may now)."""
        pacer = self.pacer
        controller = self.controller
        # pacing_rate(), inlined: asked twice per packet (here and in on_packet_sent).
        rate = controller.pacing_rate
        if rate is None and self.rtt.has_sample:
            srtt = self.rtt.smoothed_rtt
            cwnd = controller.congestion_window
            if srtt > 0 and cwnd > 0:
                rate = PACING_GAIN * cwnd / srtt
        pacer.set_rate(rate, now)
        when = pacer.next_send_time(now, size)
        if when > now:
            # RFC 9002 §7.8: held back by pacing, not by the application; a
            # window-based controller must not take this for being app-limited.
            hook = getattr(self.controller, "on_pacing_limited", None)
            if hook is not None:
                hook()
        return when

    def on_app_limited(self) -> None:
        """The sender has nothing to send with window to spare (delivery-rate §3.4).

        Packets sent from now until this flight is delivered are marked
        app-limited, so rate samples taken from them are not mistaken for the
        path's capacity.
        """
        self._app_limited_until = max(self._delivered + self.bytes_in_flight, 1)

    def on_packet_sent(self, packet: SentPacket, now: float) -> None:
        """RFC 9002 Appendix A.5 OnPacketSent; ``packet.time_sent`` is set to ``now``."""
        space_id = packet.space
        space = self._spaces[space_id]
        if space.discarded:
            raise ValueError(f"{space_id.name} space is discarded on path {self.path_id}")
        pn = packet.packet_number
        if pn == space.largest_sent + 1:
            space.largest_sent = pn  # the next in order: record_sent has nothing else to do
        else:
            space.record_sent(pn)
        packet.time_sent = now
        space.sent[pn] = packet
        size = packet.sent_bytes
        self.packets_sent += 1
        self.bytes_sent += size
        if space_id == SpaceId.HANDSHAKE:
            self.has_handshake_keys = True
        if not packet.in_flight:
            return
        # draft-cheng-iccrg-delivery-rate-estimation §3.2: a new flight starts when
        # nothing is in flight.
        in_flight = self.bytes_in_flight
        if in_flight == 0:
            self._first_sent_time = now
            self._delivered_time = now
        packet.first_sent_time = self._first_sent_time
        packet.delivered_time = self._delivered_time
        packet.delivered = self._delivered
        app_limited = packet.app_limited = self._app_limited_until != 0
        packet.lost_at_send = self.bytes_lost
        in_flight += size
        self.bytes_in_flight = in_flight
        packet.bytes_in_flight_at_send = in_flight
        if packet.ack_eliciting:
            space.time_of_last_ack_eliciting = now
            space.ack_eliciting_in_flight += 1
            self._ack_eliciting_in_flight += 1
        controller = self.controller
        controller.on_packet_sent(SentInfo(pn, size, now, in_flight, app_limited), now)
        pacer = self.pacer
        rate = controller.pacing_rate  # pacing_rate(), inlined as in next_send_time
        if rate is None and self.rtt.has_sample:
            srtt = self.rtt.smoothed_rtt
            cwnd = controller.congestion_window
            if srtt > 0 and cwnd > 0:
                rate = PACING_GAIN * cwnd / srtt
        pacer.set_rate(rate, now)
        pacer.on_packet_sent(now, size)
        self._timer_armed_at = now

    # -- acknowledgments --------------------------------------------------------------

    def on_ack_received(
        self,
        space_id: SpaceId,
        ranges: tuple[tuple[int, int], ...] | list[tuple[int, int]],
        ack_delay: float,
        now: float,
        ecn_ce: int | None = None,
        ecn_counts: tuple[int, int, int] | None = None,
    ) -> AckOutcome:
        """RFC 9002 Appendix A.7 OnAckReceived for one (PATH_)ACK frame.

        ``ranges`` are inclusive (smallest, largest) pairs, as in AckFrame;
        ``ack_delay`` is the decoded delay in seconds; ``ecn_counts`` the (ECT0,
        ECT1, CE) counts of an ACK_ECN frame (None for a plain ACK), validated by
        :attr:`ecn` when it is active (RFC 9000 §13.4.2.1).  Without active ECN
        validation, ``ecn_ce`` alone (a bare CE count) is trusted as it is.
        Raises QuicError(PROTOCOL_VIOLATION) when a range covers a packet number
        never sent in this space (RFC 9000 §13.1).
        """
        space = self._spaces[space_id]
        if space.discarded or not ranges:
            return EMPTY_ACK
        largest = check_ack_ranges(space, space_id, ranges)
        advanced = largest > space.largest_acked
        if advanced:
            space.largest_acked = largest

        newly_acked = remove_acked(space, ranges)
        if not newly_acked:
            return EMPTY_ACK

        # RFC 9002 §5.1: a sample only when the largest acknowledged is newly
        # acknowledged and something ack-eliciting was.
        rtt_sampled = False
        largest_newly = newly_acked[-1]
        if largest_newly.packet_number == largest and any(p.ack_eliciting for p in newly_acked):
            # RFC 9002 §5.3: Initial ACKs are not delayed by the peer; ignore the field.
            delay = 0.0 if space_id == SpaceId.INITIAL else ack_delay
            self.rtt.update(
                now - largest_newly.time_sent,
                delay,
                self.handshake_confirmed,
                self.peer_max_ack_delay,
            )
            if self._first_rtt_sample_time is None:
                self._first_rtt_sample_time = now
            rtt_sampled = True
        if space_id == SpaceId.HANDSHAKE:
            # RFC 9002 Appendix A.8: a Handshake ACK proves the server validated us.
            self._peer_validated = True

        acked_for_cc = self._account_acked(space, newly_acked, now)

        # RFC 9002 Appendix B.7 ProcessECN: an increase of the CE counter is a
        # congestion event for the newest acknowledged packet.
        ce_increase = 0
        ecn = self.ecn
        if ecn.active:
            ce_increase = ecn.on_ack(space_id, ecn_counts, newly_acked, advanced)
        elif ecn_ce is not None and ecn_ce > space.ecn_ce_count:
            ce_increase = ecn_ce - space.ecn_ce_count
            space.ecn_ce_count = ecn_ce
        if ce_increase > 0:
            self.controller.on_congestion_event_ecn(largest_newly.time_sent, now)

        lost = detect_lost(space, now, loss_delay(self.rtt))
        if lost:
            self._on_packets_lost(space, lost, now)
        if acked_for_cc:
            self.controller.on_packets_acked(
                acked_for_cc,
                self.rtt.sample(rtt_sampled),
                self.bytes_in_flight,
                now,
                ce_increase,
            )
        # RFC 9002 Appendix A.7: reset the backoff unless the client does not yet
        # know that the server validated its address (§6.2.1).
        if self.peer_completed_address_validation:
            self.pto_count = 0
        self._timer_armed_at = now
        return AckOutcome(newly_acked, lost, rtt_sampled)

    def _account_acked(
        self, space: PacketSpace, newly_acked: list[SentPacket], now: float
    ) -> list[AckedPacket]:
        acked_for_cc, acked_bytes, ack_eliciting, last_sent = acked_records(newly_acked)
        self.packets_acked += len(newly_acked)
        if acked_for_cc:
            self.bytes_in_flight -= acked_bytes
            self.bytes_acked += acked_bytes
            space.ack_eliciting_in_flight -= ack_eliciting
            self._ack_eliciting_in_flight -= ack_eliciting
            self._delivered += acked_bytes
            self._delivered_time = now
            # draft-cheng-iccrg-delivery-rate-estimation §3.3 (UpdateRateSample):
            # packets are in send order, so the last one sets first_sent_time.
            self._first_sent_time = last_sent
        # delivery-rate §3.4: the app-limited bubble ends once it is delivered.
        if self._app_limited_until and self._delivered > self._app_limited_until:
            self._app_limited_until = 0
        return acked_for_cc

    # -- loss detection ---------------------------------------------------------------

    def _on_packets_lost(self, space: PacketSpace, lost: list[SentPacket], now: float) -> None:
        """RFC 9002 Appendix B.8 OnPacketsLost: bytes in flight, controller, persistent congestion."""
        lost_for_cc: list[LostPacket] = []
        marked = 0
        for packet in lost:
            self.packets_lost += 1
            if packet.ecn:
                marked += 1
            if not packet.in_flight:
                continue
            self.bytes_in_flight -= packet.sent_bytes
            self.bytes_lost += packet.sent_bytes
            if packet.ack_eliciting:
                space.ack_eliciting_in_flight -= 1
                self._ack_eliciting_in_flight -= 1
            lost_for_cc.append(
                LostPacket(packet.packet_number, packet.sent_bytes, packet.time_sent)
            )
        if marked:
            self.ecn.on_marked_lost(marked)
        if lost_for_cc:
            self.controller.on_packets_lost(lost_for_cc, self.bytes_in_flight, now)
        if in_persistent_congestion(
            space, lost, self._first_rtt_sample_time, self.persistent_congestion_duration()
        ):
            self.persistent_congestion_events += 1
            # RFC 9002 §5.2: restart min_rtt from the newest sample.
            self.rtt.reset_min_rtt()
            self.controller.on_persistent_congestion(now)

    def persistent_congestion_duration(self) -> float:
        """RFC 9002 §7.6.1 (paths/pto.py)."""
        return persistent_congestion_duration(self.rtt, self.peer_max_ack_delay)

    # -- timer ------------------------------------------------------------------------

    def _pto_time_and_space(self) -> tuple[float | None, SpaceId]:
        """RFC 9002 Appendix A.8 GetPtoTimeAndSpace (paths/pto.py)."""
        if self._ack_eliciting_in_flight == 0:
            # Client anti-deadlock PTO (§6.2.2.1), counted from when it was armed.
            duration = self.rtt.pto_base() * pto_backoff(self.pto_count)
            return self._timer_armed_at + duration, self._anti_deadlock_space()
        return pto_time_and_space(self._live_spaces, self.rtt, self.pto_count,
                                  self.peer_max_ack_delay, self.handshake_confirmed)

    def _anti_deadlock_space(self) -> SpaceId:
        return anti_deadlock_space(self.has_handshake_keys, self._spaces[SpaceId.HANDSHAKE])

    def loss_detection_deadline(self) -> float | None:
        """RFC 9002 Appendix A.8 SetLossDetectionTimer: when to call on_loss_detection_timeout."""
        loss_time, _ = earliest_loss_time(self._live_spaces)
        if loss_time is not None:
            return loss_time
        if self.amplification_limited and not self.is_client:
            # §6.2.2.1: a server that cannot send must not arm the PTO.
            return None
        if self._ack_eliciting_in_flight == 0 and self.peer_completed_address_validation:
            return None
        pto_time, _ = self._pto_time_and_space()
        return pto_time

    def on_loss_detection_timeout(self, now: float) -> TimeoutOutcome:
        """RFC 9002 Appendix A.9 OnLossDetectionTimeout; does nothing if not yet due."""
        deadline = self.loss_detection_deadline()
        if deadline is None or now < deadline:
            return _NO_TIMEOUT
        loss_time, which = earliest_loss_time(self._live_spaces)
        if loss_time is not None:
            # Time-threshold loss detection.
            space = self._spaces[which]
            lost = detect_lost(space, now, loss_delay(self.rtt))
            if lost:
                self._on_packets_lost(space, lost, now)
            self._timer_armed_at = now
            return TimeoutOutcome(lost, None, 0)
        if self._ack_eliciting_in_flight == 0:
            # Anti-deadlock: one ack-eliciting Handshake packet, or a padded Initial.
            probe_space = self._anti_deadlock_space()
            probes = 1
        else:
            # §6.2.4: one or two ack-eliciting probes in the space whose PTO fired.
            _, probe_space = self._pto_time_and_space()
            probes = 2
        self.pto_count += 1
        self._timer_armed_at = now
        self.ecn.on_pto(self.pto_count)
        return TimeoutOutcome([], probe_space, probes)

    def pto_period(self) -> float:
        """smoothed_rtt + max(4*rttvar, kGranularity) + max_ack_delay, without backoff.

        For the timers the transport counts in PTOs (closing/draining 3*PTO, RFC
        9000 §10.2; path abandon, draft-ietf-quic-multipath §"Path Close").
        """
        rtt = self.rtt  # RttEstimator.pto_base, inlined: the engine asks per packet
        return rtt.smoothed_rtt + max(4 * rtt.rttvar, K_GRANULARITY) + self.peer_max_ack_delay

    # -- discarding -------------------------------------------------------------------

    def _remove_from_flight(self, packets: list[SentPacket]) -> None:
        """RFC 9002 Appendix B.9 RemoveFromBytesInFlight."""
        removed = 0
        for packet in packets:
            if packet.in_flight:
                removed += packet.sent_bytes
        if removed:
            self.bytes_in_flight -= removed
            self.controller.on_packets_discarded(removed)
        self._ack_eliciting_in_flight = sum(s.ack_eliciting_in_flight for s in self._spaces)

    def discard_space(self, space_id: SpaceId) -> list[SentPacket]:
        """RFC 9002 §6.4 / Appendix A.11 OnPacketNumberSpaceDiscarded.

        Initial and Handshake spaces are closed for good.  Discarding the
        Application space (0-RTT rejected, §6.4) drops its packets but keeps the
        space open for 1-RTT, which continues its packet numbers.
        """
        space = self._spaces[space_id]
        packets = space.clear()
        if space_id != SpaceId.APPLICATION:
            space.discarded = True
            self._live_spaces = tuple(s for s in self._spaces if not s.discarded)
        self._remove_from_flight(packets)
        self.pto_count = 0
        return packets

    def take_all_in_flight(self) -> list[SentPacket]:
        """Every tracked packet of every space (abandoned path: the engine reinjects them)."""
        packets: list[SentPacket] = []
        for space in self._spaces:
            packets.extend(space.clear())
        self._remove_from_flight(packets)
        self.pto_count = 0
        return packets

    def __repr__(self) -> str:
        return (
            f"PathRecovery(path_id={self.path_id}, cwnd={self.controller.congestion_window}, "
            f"in_flight={self.bytes_in_flight}, pto_count={self.pto_count}, rtt={self.rtt!r})"
        )
