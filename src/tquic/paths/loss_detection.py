"""Loss detection over one packet-number space (RFC 9002 §6, §7.6, Appendix A.7-A.10).

Functions of a :class:`~tquic.paths.sent_packets.PacketSpace` and the figures the
caller passes in (loss delay, persistent-congestion duration): which packets an
ACK newly acknowledges, which are lost, whether a loss establishes persistent
congestion.  They change the space (its ``sent`` map, loss time and persistent-
congestion run) and nothing else; :class:`~tquic.paths.recovery.PathRecovery`
keeps the counters, the controller and the timer.
"""

from __future__ import annotations

from tquic.paths.rtt import K_GRANULARITY, RttEstimator
from tquic.paths.sent_packets import PacketSpace, SentPacket, SpaceId
from tquic.wire.errors import QuicError, TransportErrorCode

__all__ = [
    "K_PACKET_THRESHOLD",
    "K_PERSISTENT_CONGESTION_THRESHOLD",
    "K_TIME_THRESHOLD",
    "check_ack_ranges",
    "detect_lost",
    "earliest_loss_time",
    "in_persistent_congestion",
    "loss_delay",
    "remove_acked",
]

# RFC 9002 §6.1.1, §6.1.2, §7.6.1.
K_PACKET_THRESHOLD = 3
K_TIME_THRESHOLD = 9 / 8
K_PERSISTENT_CONGESTION_THRESHOLD = 3


def _packet_number(packet: SentPacket) -> int:
    return packet.packet_number


def check_ack_ranges(
    space: PacketSpace,
    space_id: SpaceId,
    ranges: tuple[tuple[int, int], ...] | list[tuple[int, int]],
) -> int:
    """The largest packet number ``ranges`` acknowledge, once each range is checked.

    Raises QuicError(FRAME_ENCODING_ERROR) for a malformed range and
    QuicError(PROTOCOL_VIOLATION) for one covering a packet number never sent in
    this space (RFC 9000 §13.1).
    """
    largest = -1
    for smallest, top in ranges:
        if smallest > top or smallest < 0:
            raise QuicError(
                TransportErrorCode.FRAME_ENCODING_ERROR,
                f"invalid ACK range ({smallest}, {top})",
            )
        if space.covers_unsent(smallest, top):
            raise QuicError(
                TransportErrorCode.PROTOCOL_VIOLATION,
                f"ACK of {space_id.name} packet(s) {smallest}..{top} never sent "
                f"(largest sent {space.largest_sent})",
            )
        if top > largest:
            largest = top
    return largest


def remove_acked(
    space: PacketSpace,
    ranges: tuple[tuple[int, int], ...] | list[tuple[int, int]],
) -> list[SentPacket]:
    """Take the packets ``ranges`` acknowledge out of ``space``, in packet-number order."""
    sent = space.sent
    oldest = space.oldest_packet_number()
    if oldest is None:
        return []
    newly: list[SentPacket] = []
    pop = sent.pop
    # Ranges arrive largest first; walking them backwards yields ascending order.
    # Each range is clipped to the oldest outstanding packet: everything below
    # was already acknowledged or declared lost, and loss detection keeps the
    # outstanding packets below the largest acknowledged to a handful (packet
    # threshold), so the work is proportional to what is newly acknowledged.
    # A range wider than the map (possible only across skipped packet numbers)
    # walks the map instead, so no ACK costs more than the map's size.
    for smallest, top in reversed(ranges):
        if top < oldest:
            continue
        low = max(smallest, oldest)
        if top - low < len(sent):
            for pn in range(low, top + 1):
                packet = pop(pn, None)
                if packet is not None:
                    newly.append(packet)
        else:
            hits = []
            for pn in sent:
                if pn > top:
                    break
                if pn >= low:
                    hits.append(pn)
            for pn in hits:
                newly.append(pop(pn))
        if not sent:
            break
        oldest = next(iter(sent))
    if len(newly) > 1 and newly[0].packet_number > newly[-1].packet_number:
        newly.sort(key=_packet_number)
    return newly


def loss_delay(rtt: RttEstimator) -> float:
    """RFC 9002 §6.1.2: kTimeThreshold * max(smoothed_rtt, latest_rtt), at least kGranularity."""
    return max(K_TIME_THRESHOLD * max(rtt.latest_rtt, rtt.smoothed_rtt), K_GRANULARITY)


def detect_lost(space: PacketSpace, now: float, delay: float) -> list[SentPacket]:
    """RFC 9002 Appendix A.10 DetectAndRemoveLostPackets, with ``delay`` the loss delay."""
    space.loss_time = None
    largest_acked = space.largest_acked
    if largest_acked < 0:
        return []
    lost: list[SentPacket] = []
    loss_time: float | None = None
    for pn, packet in space.sent.items():
        if pn > largest_acked:
            break
        # The deadline is compared exactly as it is armed (time_sent + loss delay):
        # ``time_sent <= now - delay`` can be false by one rounding step at
        # now == loss_time, and the timer would fire again at the same instant forever.
        when = packet.time_sent + delay
        if when <= now or largest_acked >= pn + K_PACKET_THRESHOLD:
            lost.append(packet)
        elif loss_time is None or when < loss_time:
            loss_time = when
    space.loss_time = loss_time
    sent = space.sent
    for packet in lost:
        del sent[packet.packet_number]
    return lost


def in_persistent_congestion(
    space: PacketSpace,
    lost: list[SentPacket],
    first_rtt_sample: float | None,
    duration: float,
) -> bool:
    """RFC 9002 §7.6.2, using the state of the acknowledged space only (allowed there).

    Two ack-eliciting lost packets establish it when no packet sent between
    them was acknowledged, they are further apart than the persistent
    congestion ``duration``, and both were sent after the first RTT sample.  Lost
    packets are walked in packet-number order; a run of consecutive packet
    numbers (across ACKs too) has no acknowledged packet inside it.
    """
    if first_rtt_sample is None:
        return False
    established = False
    for packet in lost:
        pn = packet.packet_number
        if pn != space.pc_last_lost_pn + 1:
            space.pc_run_start = None
        space.pc_last_lost_pn = pn
        # RFC 9002 Appendix B.8: only packets sent after the first RTT sample.
        if not packet.ack_eliciting or packet.time_sent <= first_rtt_sample:
            continue
        start = space.pc_run_start
        if start is None:
            space.pc_run_start = packet.time_sent
        elif packet.time_sent - start > duration:
            established = True
    if established:
        space.pc_run_start = None
    return established


def earliest_loss_time(spaces: tuple[PacketSpace, ...]) -> tuple[float | None, SpaceId]:
    """RFC 9002 Appendix A.8 GetLossTimeAndSpace over the live ``spaces``."""
    time: float | None = None
    which = SpaceId.INITIAL
    for space in spaces:
        t = space.loss_time
        if t is not None and (time is None or t < time):
            time = t
            which = space.space
    return time, which
