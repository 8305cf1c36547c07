"""AckTracker: what we received in one packet-number space and when to ACK it.

One tracker per packet-number space: Initial, Handshake, and the application
space of every path (draft-ietf-quic-multipath: per-path spaces, PATH_ACK).

It answers four questions for the connection engine:

- is this packet number a duplicate? (RFC 9000 §12.3)
- when is an ACK due? (RFC 9000 §13.2.1/§13.2.2, draft-ietf-quic-ack-frequency)
- what goes in the ACK frame? (ranges largest first, ACK Delay, ECN counts)
- what can be forgotten once the peer has seen our ACK? (RFC 9000 §13.2.4)

Times are float seconds supplied by the caller (sans-I/O: nothing here reads a
clock).
"""

from __future__ import annotations

from tquic.paths.ackranges import RangeSet
from tquic.wire.errors import QuicError, TransportErrorCode

# ECN codepoints as read from the IP header (RFC 3168 §5).
ECN_NOT_ECT = 0b00
ECN_ECT1 = 0b01
ECN_ECT0 = 0b10
ECN_CE = 0b11

# Index into (ECT0, ECT1, CE) counters for each codepoint.
_ECN_SLOT = (-1, 1, 0, 2)

# RFC 9000 §18.2: max_ack_delay values of 2^14 ms or more are invalid.
MAX_ACK_DELAY_LIMIT = (1 << 14) / 1000.0

DEFAULT_ACK_ELICITING_THRESHOLD = 1  # RFC 9000 §13.2.2: ACK every 2nd packet
DEFAULT_REORDERING_THRESHOLD = 1  # RFC 9000 §13.2.1: any gap -> immediate ACK


def encode_ack_delay(delay: float, ack_delay_exponent: int = 3) -> int:
    """The ACK Delay field for ``delay`` seconds (RFC 9000 §19.3: µs >> exponent)."""
    if delay <= 0.0:
        return 0
    return int(delay * 1_000_000) >> ack_delay_exponent


def decode_ack_delay(field: int, ack_delay_exponent: int = 3) -> float:
    """Seconds from an ACK Delay field (RFC 9000 §19.3)."""
    return (field << ack_delay_exponent) / 1_000_000


class AckTracker:
    """Receive-side state of one packet-number space.

    ``immediate_space`` is True for Initial and Handshake (RFC 9000 §13.2.1:
    ack-eliciting packets there are acknowledged immediately).
    ``max_ack_delay`` is ours (seconds), as sent in the transport parameter;
    ACK_FREQUENCY may change it.  ``min_ack_delay`` (seconds) is the value we
    advertised in the min_ack_delay transport parameter, if any; it bounds the
    Requested Max Ack Delay a peer may ask for.
    """

    __slots__ = (
        "_ack_eliciting_threshold",
        "_ecn",
        "_eliciting_since_ack",
        "_first_unacked_time",
        "_frequency_seq",
        "_gap_free",
        "_immediate",
        "_immediate_time",
        "_largest_acked_sent",
        "_largest_eliciting",
        "_largest_time",
        "_last_ce",
        "_received",
        "_reordering_threshold",
        "_to_ack",
        "_unacked_packets",
        "immediate_space",
        "largest_received",
        "last_ack_sent_time",
        "max_ack_delay",
        "max_ack_ranges",
        "min_ack_delay",
    )

    def __init__(
        self,
        *,
        max_ack_delay: float = 0.025,
        immediate_space: bool = False,
        min_ack_delay: float | None = None,
        max_ack_ranges: int = 32,
        max_tracked_ranges: int = 1024,
    ) -> None:
        if not 0.0 <= max_ack_delay < MAX_ACK_DELAY_LIMIT:
            raise ValueError(f"max_ack_delay must be in [0, 16.384) s, got {max_ack_delay}")
        if min_ack_delay is not None and not 0.0 <= min_ack_delay <= max_ack_delay:
            raise ValueError(f"min_ack_delay must be in [0, max_ack_delay], got {min_ack_delay}")
        if max_ack_ranges < 1 or max_tracked_ranges < max_ack_ranges:
            raise ValueError("need 1 <= max_ack_ranges <= max_tracked_ranges")
        self.max_ack_delay = max_ack_delay
        self.min_ack_delay = min_ack_delay
        self.immediate_space = immediate_space
        self.max_ack_ranges = max_ack_ranges
        # Everything processed, for duplicate detection (RFC 9000 §12.3).  Bounded:
        # when it overflows, the oldest ranges go and packets below are dropped.
        self._received = RangeSet(max_ranges=max_tracked_ranges)
        # Largest packet number processed (kept even when ranges are pruned; §13.2.3):
        # the largest of ``_received``, an attribute since the receive path reads it
        # per packet.
        self.largest_received: int | None = None
        # What ACK frames still report; pruned by ACK-of-ACK (§13.2.4).
        self._to_ack = RangeSet(max_ranges=max_tracked_ranges)
        self._largest_time = 0.0  # receive time of the largest packet number
        self._largest_eliciting = -1  # "Largest Unacked" of the ack-frequency draft
        self._gap_free = True  # no packet missing between the tracking floor and the largest
        self._largest_acked_sent: int | None = None  # "Largest Acked"
        self._eliciting_since_ack = 0
        self._unacked_packets = False  # anything received since the last ACK
        self._first_unacked_time: float | None = None  # first ack-eliciting since last ACK
        self._immediate = False
        self._immediate_time = 0.0
        self._last_ce = False
        self._ecn = [0, 0, 0]  # ECT0, ECT1, CE (RFC 9000 §13.4.1)
        self._ack_eliciting_threshold = DEFAULT_ACK_ELICITING_THRESHOLD
        self._reordering_threshold = DEFAULT_REORDERING_THRESHOLD
        self._frequency_seq = -1
        self.last_ack_sent_time: float | None = None

    # -- receiving ----------------------------------------------------------

    @property
    def largest_received_time(self) -> float:
        return self._largest_time

    def is_duplicate(self, pn: int) -> bool:
        """True if ``pn`` was processed, or is below what we still track (§12.3)."""
        return pn < self._received.forgotten_below or self._received.contains(pn)

    def on_packet_received(
        self, pn: int, now: float, ack_eliciting: bool, ecn: int = ECN_NOT_ECT
    ) -> bool:
        """Record a processed packet.  Returns False (and changes nothing) for a duplicate."""
        received = self._received
        previous_largest = self.largest_received
        if not received.add(pn):
            return False
        self._to_ack.add(pn)
        in_sequence = previous_largest is not None and pn == previous_largest + 1
        if in_sequence or previous_largest is None or pn > previous_largest:
            self._largest_time = now
            self.largest_received = pn
        if not in_sequence:
            # Only a packet out of sequence can open or close a gap: recheck.
            largest = pn if previous_largest is None or pn > previous_largest else previous_largest
            self._gap_free = received.first_missing_after(received.forgotten_below - 1) > largest
        self._unacked_packets = True
        # RFC 9000 §13.4.1: count ECN marks per space, once per processed packet.
        ecn &= 0b11
        if ecn:
            self._ecn[_ECN_SLOT[ecn]] += 1
        is_ce = ecn == ECN_CE
        if not ack_eliciting:
            # §13.2.1: never ACK a non-ack-eliciting packet on its own account.
            self._last_ce = is_ce
            return True

        self._eliciting_since_ack += 1
        if self._first_unacked_time is None:
            self._first_unacked_time = now
        # With no gap anywhere and pn next in sequence, nothing can be out of order.
        out_of_order = not (in_sequence and self._gap_free) and self._out_of_order_needs_ack(pn)
        if pn > self._largest_eliciting:
            self._largest_eliciting = pn
        if (
            self.immediate_space  # §13.2.1: Initial and Handshake immediately
            or self._eliciting_since_ack > self._ack_eliciting_threshold  # §13.2.2
            or out_of_order  # §13.2.1, ack-frequency "Response to Out-of-Order Packets"
            or (is_ce and self._ce_needs_ack())  # §13.2.1, ack-frequency §"ECN"
        ):
            self._set_immediate(now)
        self._last_ce = is_ce
        return True

    def _ce_needs_ack(self) -> bool:
        # draft-ietf-quic-ack-frequency §"Expediting ECN Signals": with a threshold
        # above 1 only the transition to CE is urgent; otherwise every CE packet.
        if self._ack_eliciting_threshold > 1:
            return not self._last_ce
        return True

    def _out_of_order_needs_ack(self, pn: int) -> bool:
        """draft-ietf-quic-ack-frequency §"Response to Out-of-Order Packets".

        With the default threshold of 1 this is RFC 9000 §13.2.1: a packet below
        the largest ack-eliciting one, or a gap below a new largest.
        """
        threshold = self._reordering_threshold
        if threshold == 0:
            return False
        largest_acked = self._largest_acked_sent
        if largest_acked is not None and pn <= largest_acked - threshold:
            return True  # arrived after the sender may have declared it lost
        largest_unacked = max(pn, self._largest_eliciting)
        # Largest Reported Missing: everything at or below it was reported (or forgotten).
        reported = largest_acked - threshold if largest_acked is not None else -1
        reported = max(reported, self._received.forgotten_below - 1)
        smallest_missing = self._received.first_missing_after(reported)
        return smallest_missing < largest_unacked and (
            largest_unacked - smallest_missing >= threshold
        )

    def _set_immediate(self, now: float) -> None:
        if not self._immediate:
            self._immediate = True
            self._immediate_time = now

    def on_immediate_ack(self, now: float) -> None:
        """An IMMEDIATE_ACK frame arrived (draft-ietf-quic-ack-frequency §"IMMEDIATE_ACK")."""
        self._set_immediate(now)

    def on_ack_frequency(
        self,
        sequence_number: int,
        ack_eliciting_threshold: int,
        requested_max_ack_delay_us: int,
        reordering_threshold: int,
    ) -> bool:
        """Apply an ACK_FREQUENCY frame; False when it is obsolete and ignored.

        Raises QuicError(PROTOCOL_VIOLATION) for a Requested Max Ack Delay of
        2^14 ms or more, or below the min_ack_delay we advertised.  (Whether the
        peer may send ACK_FREQUENCY at all -- we advertised min_ack_delay -- is
        the engine's check.)
        """
        delay = requested_max_ack_delay_us / 1_000_000
        if delay >= MAX_ACK_DELAY_LIMIT or (
            self.min_ack_delay is not None and delay < self.min_ack_delay
        ):
            raise QuicError(
                TransportErrorCode.PROTOCOL_VIOLATION,
                f"invalid Requested Max Ack Delay {requested_max_ack_delay_us} us",
                frame_type=0xAF,
            )
        if sequence_number <= self._frequency_seq:
            return False  # obsolete or duplicate: MUST be ignored
        self._frequency_seq = sequence_number
        self._ack_eliciting_threshold = ack_eliciting_threshold
        self._reordering_threshold = reordering_threshold
        if not self.immediate_space:
            self.max_ack_delay = delay
        return True

    @property
    def ack_eliciting_threshold(self) -> int:
        return self._ack_eliciting_threshold

    @property
    def reordering_threshold(self) -> int:
        return self._reordering_threshold

    @property
    def ecn_counts(self) -> tuple[int, int, int] | None:
        """(ECT0, ECT1, CE) for an ACK_ECN frame, or None when nothing was marked."""
        ect0, ect1, ce = self._ecn
        if ect0 or ect1 or ce:
            return ect0, ect1, ce
        return None

    # -- sending ACKs -------------------------------------------------------

    def ack_deadline(self) -> float | None:
        """When an ACK frame must be sent; None when nothing ack-eliciting is pending.

        A deadline at or before ``now`` means "send one now" (immediate).
        """
        if self._immediate:
            return self._immediate_time
        if self._first_unacked_time is None:
            return None
        # §13.2.1: within max_ack_delay of the first unacknowledged ack-eliciting packet.
        return self._first_unacked_time + self.max_ack_delay

    def ack_due(self, now: float) -> bool:
        deadline = self.ack_deadline()
        return deadline is not None and deadline <= now

    @property
    def has_unacked(self) -> bool:
        """Packets arrived since the last ACK: worth piggybacking an ACK on any packet."""
        return self._unacked_packets and bool(self._to_ack)

    def build_ack_ranges(self, now: float) -> tuple[tuple[tuple[int, int], ...], float]:
        """(AckFrame ranges, ACK delay in seconds); ranges empty when nothing to ACK.

        The delay is measured from the receipt of the largest packet number
        (RFC 9000 §13.2.5) and is only meaningful when that packet is reported.
        """
        ranges = self._to_ack.to_ack_ranges(self.max_ack_ranges)
        if not ranges:
            return ranges, 0.0
        delay = now - self._largest_time if ranges[0][1] == self._received.largest else 0.0
        return ranges, max(delay, 0.0)

    def on_ack_sent(self, now: float, largest_acknowledged: int | None = None) -> None:
        """An ACK frame (built by build_ack_ranges) went out: reset the ACK triggers."""
        self._immediate = False
        self._eliciting_since_ack = 0
        self._first_unacked_time = None
        self._unacked_packets = False
        self.last_ack_sent_time = now
        if largest_acknowledged is None:
            largest_acknowledged = self._to_ack.largest
        if largest_acknowledged is not None and (
            self._largest_acked_sent is None or largest_acknowledged > self._largest_acked_sent
        ):
            self._largest_acked_sent = largest_acknowledged

    def on_ack_acked(self, largest_acknowledged: int) -> None:
        """A packet carrying our ACK frame (with this Largest Acknowledged) was acknowledged.

        RFC 9000 §13.2.4: stop reporting packets at or below it.  Duplicate
        detection keeps its own record, so late copies are still dropped.
        """
        # A packet arriving later below this (reordered far behind) is new and
        # must still be acknowledged once, so the floor is not raised here.
        self._to_ack.remove_below(largest_acknowledged + 1, raise_floor=False)

    def discard(self) -> None:
        """The space is discarded (keys dropped): nothing more to acknowledge."""
        self._to_ack.clear()
        self._immediate = False
        self._first_unacked_time = None
        self._unacked_packets = False
        self._eliciting_since_ack = 0
