"""The congestion controller interface and the registry of controllers by name.

Every path owns one controller (DESIGN.md "Multipath is the normal case").  The
loss detector of the path (``tquic.paths.recovery``) calls it on every sent
packet, every ACK, every loss and every RTT sample, so that model-based
controllers (BBR, Copa, ...) see everything they need without special cases in
the engine.  Nothing here reads a clock: every call carries ``now``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

# RFC 9002 §7.2: the initial window is 10 * max_datagram_size, bounded below by
# 2 * max_datagram_size and above by max(14720, 2 * max_datagram_size).
INITIAL_WINDOW_PACKETS = 10
MINIMUM_WINDOW_PACKETS = 2  # RFC 9002 §7.2 kMinimumWindow


# SentInfo and AckedPacket are built once per packet sent and per packet acknowledged:
# plain slots dataclasses, because a frozen one pays an object.__setattr__ call per
# field (4x the cost).  Controllers treat them as read-only values all the same.


@dataclass(slots=True)
class SentInfo:
    """What a controller learns about a packet when it is sent."""

    packet_number: int
    sent_bytes: int
    time_sent: float
    bytes_in_flight: int  # after this packet is counted
    app_limited: bool


@dataclass(slots=True)
class AckedPacket:
    """One newly acknowledged in-flight packet."""

    packet_number: int
    sent_bytes: int
    time_sent: float
    # Delivery-rate sampling state at send time (draft-cheng-iccrg-delivery-rate-estimation
    # §3.2, for BBR-style controllers): the path's delivered byte count, the time of the
    # last delivery and the send time of the first packet of the flight, all as they were
    # when this packet was sent, and whether it was sent in an app-limited phase.
    delivered_at_send: int = 0
    delivered_time_at_send: float = 0.0
    first_sent_time_at_send: float = 0.0
    app_limited: bool = False
    # Bytes in flight just after this packet was sent, and the path's lost byte count
    # then (BBRv2/v3 use both to judge the loss rate of a flight).
    bytes_in_flight_at_send: int = 0
    lost_at_send: int = 0


@dataclass(frozen=True, slots=True)
class LostPacket:
    """One packet declared lost."""

    packet_number: int
    sent_bytes: int
    time_sent: float


@dataclass(frozen=True, slots=True)
class RttSample:
    """RTT state after an update (RFC 9002 §5)."""

    latest_rtt: float
    smoothed_rtt: float
    rttvar: float
    min_rtt: float
    # True when this ACK produced a new sample (RFC 9002 §5.1); False when the values
    # are the ones of an earlier ACK (controllers that count samples, e.g. HyStart++,
    # must not count these).
    new_sample: bool = True


class CongestionController(Protocol):
    """What a path needs from a congestion controller."""

    @property
    def congestion_window(self) -> int:
        """Bytes the path may have in flight."""
        ...

    @property
    def pacing_rate(self) -> float | None:
        """Bytes per second to pace at, or None to let the pacer derive it from cwnd/RTT."""
        ...

    def on_packet_sent(self, info: SentInfo, now: float) -> None: ...

    def on_packets_acked(
        self,
        acked: list[AckedPacket],
        rtt: RttSample,
        bytes_in_flight: int,
        now: float,
        ecn_ce_count: int = 0,
    ) -> None:
        """Called once per ACK frame with all newly acknowledged in-flight packets.

        ``acked`` is in ascending packet-number order; ``bytes_in_flight`` is the
        path's value after these packets (and any packets this ACK declared lost)
        were removed; ``ecn_ce_count`` is the increase of the peer's ECN-CE counter
        carried by this ACK (the congestion response itself comes through
        :meth:`on_congestion_event_ecn`).
        """
        ...

    def on_packets_lost(self, lost: list[LostPacket], bytes_in_flight: int, now: float) -> None:
        """In-flight packets declared lost; ``bytes_in_flight`` is after their removal."""
        ...

    def on_congestion_event_ecn(self, time_sent: float, now: float) -> None:
        """An increase in the ECN-CE count (RFC 9002 §7.1)."""
        ...

    def on_persistent_congestion(self, now: float) -> None:
        """RFC 9002 §7.6.2: collapse to the minimum window."""
        ...

    def on_packets_discarded(self, sent_bytes: int) -> None:
        """Packets removed from flight without ACK or loss (key discard, abandoned path)."""
        ...


ControllerFactory = Callable[[int], CongestionController]
"""Builds a controller for a path, given the path's max datagram size."""


# The registry itself lives in tquic.cc.registry: it imports every built-in
# controller module, and each of those imports this module, so these documented
# entry points (docs/congestion.md) defer the import to call time.


def register_controller(name: str, factory: ControllerFactory) -> None:
    """Make ``factory`` available as ``name`` (e.g. for ``--cc NAME``)."""
    from tquic.cc import registry

    registry.register_controller(name, factory)


def available_controllers() -> list[str]:
    """Names of every built-in and registered controller, sorted."""
    from tquic.cc import registry

    return registry.available_controllers()


def create_controller(name: str, max_datagram_size: int) -> CongestionController:
    """A new controller by name; ValueError naming the choices when unknown."""
    from tquic.cc import registry

    return registry.create_controller(name, max_datagram_size)
