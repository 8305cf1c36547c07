"""Sent-packet records and the per-space bookkeeping of loss recovery (RFC 9002 Appendix A.1-A.3).

A :class:`PacketSpace` keeps the packets of one packet-number space that are
neither acknowledged nor declared lost in an ``OrderedDict`` keyed by packet
number.  Packet numbers only grow (RFC 9000 §12.3), so insertion order is
packet-number order; the ordered dict gives O(1) access to the oldest entry and
O(1) removal anywhere, so an ACK costs time proportional to what it newly
acknowledges and not to how many packets are outstanding.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from tquic.cc.base import AckedPacket
from tquic.wire.epochs import SpaceId as SpaceId  # packet-number spaces (RFC 9000 §12.3)


class SentPacket:
    """One sent packet (RFC 9002 Appendix A.1.1), plus delivery-rate sampling state.

    ``frames`` belongs to the engine (what to retransmit or confirm); recovery never
    looks inside.  The delivery-rate fields (draft-cheng-iccrg-delivery-rate-estimation
    §3.2) are filled in by :meth:`PathRecovery.on_packet_sent`.
    """

    __slots__ = (
        "ack_eliciting",
        "app_limited",
        "bytes_in_flight_at_send",
        "delivered",
        "delivered_time",
        "ecn",
        "first_sent_time",
        "frames",
        "in_flight",
        "lost_at_send",
        "packet_number",
        "resent",
        "sent_bytes",
        "space",
        "time_sent",
    )

    def __init__(
        self,
        packet_number: int,
        time_sent: float,
        sent_bytes: int,
        ack_eliciting: bool,
        in_flight: bool,
        space: SpaceId = SpaceId.APPLICATION,
        frames: list[object] | None = None,
    ) -> None:
        self.packet_number = packet_number
        self.time_sent = time_sent
        self.sent_bytes = sent_bytes
        self.ack_eliciting = ack_eliciting
        self.in_flight = in_flight
        self.space = space
        self.frames: list[object] = frames if frames is not None else []
        # ECN codepoint the packet was sent with (RFC 9000 §13.4.2.1 validation).
        self.ecn = 0
        # Delivery-rate sampling state at send time.
        self.delivered = 0
        self.delivered_time = 0.0
        self.first_sent_time = 0.0
        self.app_limited = False
        self.bytes_in_flight_at_send = 0
        self.lost_at_send = 0
        # Its stream data was queued again while it was still in flight (multipath
        # reinjection: the engine's business, like ``frames``).
        self.resent = False

    def __repr__(self) -> str:
        return (
            f"SentPacket({self.space.name}, pn={self.packet_number}, t={self.time_sent}, "
            f"bytes={self.sent_bytes}, ack_eliciting={self.ack_eliciting}, "
            f"in_flight={self.in_flight})"
        )


def acked_records(packets: list[SentPacket]) -> tuple[list[AckedPacket], int, int, float]:
    """What the controller learns of newly acknowledged ``packets`` (in send order): the
    records of those in flight, their bytes, how many were ack-eliciting, and when the
    last of them was sent (0.0 when none was in flight)."""
    records: list[AckedPacket] = []
    append = records.append
    acked_bytes = 0
    ack_eliciting = 0
    last_sent = 0.0
    for packet in packets:
        if not packet.in_flight:
            continue
        size = packet.sent_bytes
        acked_bytes += size
        if packet.ack_eliciting:
            ack_eliciting += 1
        last_sent = packet.time_sent
        append(AckedPacket(packet.packet_number, size, last_sent, packet.delivered,
                           packet.delivered_time, packet.first_sent_time,
                           packet.app_limited, packet.bytes_in_flight_at_send,
                           packet.lost_at_send))
    return records, acked_bytes, ack_eliciting, last_sent


@dataclass(frozen=True, slots=True)
class AckOutcome:
    """What one ACK frame did: packets it newly acknowledged and packets it declared lost."""

    acked: list[SentPacket]
    lost: list[SentPacket]
    rtt_sampled: bool


@dataclass(frozen=True, slots=True)
class TimeoutOutcome:
    """What the loss-detection timer did (RFC 9002 Appendix A.9).

    Either ``lost`` packets (time-threshold loss), or a PTO: send ``probe_packets``
    ack-eliciting packets in ``probe_space`` (RFC 9002 §6.2.4; not blocked by the
    congestion window, §7.5), or nothing when the timer was not due.
    """

    lost: list[SentPacket]
    probe_space: SpaceId | None
    probe_packets: int


EMPTY_ACK = AckOutcome([], [], False)

# Deliberately skipped packet numbers remembered per space (RFC 9000 §21.4: an
# ACK for one is an optimistic-ACK attack).  Bounded: older ones are forgotten.
MAX_SKIPPED_REMEMBERED = 64
# Packets oldest_ack_eliciting_time looks at before giving up (ACK-only packets first).
OLDEST_SCAN = 32


class PacketSpace:
    """Loss-recovery state of one packet-number space on one path."""

    __slots__ = (
        "ack_eliciting_in_flight",
        "discarded",
        "ecn_ce_count",
        "largest_acked",
        "largest_sent",
        "loss_time",
        "pc_last_lost_pn",
        "pc_run_start",
        "sent",
        "skipped",
        "space",
        "time_of_last_ack_eliciting",
    )

    def __init__(self, space: SpaceId) -> None:
        self.space = space
        self.sent: OrderedDict[int, SentPacket] = OrderedDict()
        self.largest_sent = -1
        self.largest_acked = -1
        # RFC 9002 Appendix A.3: loss_time and time_of_last_ack_eliciting_packet.
        self.loss_time: float | None = None
        self.time_of_last_ack_eliciting: float | None = None
        self.ack_eliciting_in_flight = 0
        # RFC 9002 Appendix B.2 ecn_ce_counters[space].
        self.ecn_ce_count = 0
        self.skipped: list[int] = []
        self.discarded = False
        # Persistent-congestion run (RFC 9002 §7.6.2): packet number of the last
        # packet declared lost and the send time of the first ack-eliciting packet
        # of the current unbroken run of lost packets.
        self.pc_last_lost_pn = -2
        self.pc_run_start: float | None = None

    def record_sent(self, packet_number: int) -> None:
        """Check that packet numbers increase, remembering any deliberately skipped ones."""
        if packet_number <= self.largest_sent:
            raise ValueError(
                f"{self.space.name} packet number {packet_number} not above {self.largest_sent}"
            )
        gap_start = self.largest_sent + 1
        # The first packet may start anywhere: a recovery that replaced another one
        # (Retry, migration) continues the space's numbering, so only gaps after
        # the first packet are deliberate skips.
        if self.largest_sent >= 0 and packet_number > gap_start:
            # Only the last few skipped numbers matter; a huge jump is not a list.
            for pn in range(max(gap_start, packet_number - MAX_SKIPPED_REMEMBERED), packet_number):
                self.skipped.append(pn)
            if len(self.skipped) > MAX_SKIPPED_REMEMBERED:
                del self.skipped[: len(self.skipped) - MAX_SKIPPED_REMEMBERED]
        self.largest_sent = packet_number

    def oldest_ack_eliciting_time(self) -> float | None:
        """When the oldest ack-eliciting packet still awaiting its ACK was sent (None:
        none).  ACK-only packets before it are skipped, up to a few: the peer
        acknowledges those only when it has something else to send."""
        if not self.ack_eliciting_in_flight:
            return None
        for scanned, packet in enumerate(self.sent.values()):
            if packet.ack_eliciting:
                return packet.time_sent
            if scanned >= OLDEST_SCAN:
                return None
        return None

    def covers_unsent(self, smallest: int, largest: int) -> bool:
        """True when [smallest, largest] includes a packet number never sent in this space."""
        if largest > self.largest_sent:
            return True
        return any(smallest <= pn <= largest for pn in self.skipped)

    def oldest_packet_number(self) -> int | None:
        sent = self.sent
        if not sent:
            return None
        return next(iter(sent))

    def clear(self) -> list[SentPacket]:
        packets = list(self.sent.values())
        self.sent.clear()
        self.loss_time = None
        self.time_of_last_ack_eliciting = None
        self.ack_eliciting_in_flight = 0
        self.pc_run_start = None
        return packets
