"""Real Path objects with chosen RTT, window and bytes in flight, for scheduler tests."""

from __future__ import annotations

from tquic.cc.base import AckedPacket, LostPacket, RttSample, SentInfo
from tquic.paths.ack_tracker import AckTracker
from tquic.paths.network_path import NetworkPath
from tquic.paths.path import PacketSpace, Path, SpaceKind
from tquic.paths.recovery import PathRecovery

MDS = 1200


class FixedWindow:
    """A congestion controller whose window is whatever the test sets."""

    def __init__(self, cwnd: int) -> None:
        self.cwnd = cwnd

    @property
    def congestion_window(self) -> int:
        return self.cwnd

    @property
    def pacing_rate(self) -> float | None:
        return None

    def on_packet_sent(self, info: SentInfo, now: float) -> None:
        pass

    def on_packets_acked(self, acked: list[AckedPacket], rtt: RttSample, bytes_in_flight: int,
                         now: float, ecn_ce_count: int = 0) -> None:
        pass

    def on_packets_lost(self, lost: list[LostPacket], bytes_in_flight: int, now: float) -> None:
        pass

    def on_congestion_event_ecn(self, time_sent: float, now: float) -> None:
        pass

    def on_persistent_congestion(self, now: float) -> None:
        pass

    def on_packets_discarded(self, sent_bytes: int) -> None:
        pass


def make_path(path_id: int, rtt: float | None = None, *, cwnd: int = 10 * MDS,
              in_flight: int = 0, rttvar: float | None = None,
              validated: bool = True) -> Path:
    """A validated path whose RTT estimator has one sample of ``rtt`` (none if None)."""
    recovery = PathRecovery(FixedWindow(cwnd), MDS, is_client=True, path_id=path_id)
    if rtt is not None:
        recovery.rtt.update(rtt, 0.0, True, 0.0)
    if rttvar is not None:
        recovery.rtt.rttvar = rttvar
    recovery.bytes_in_flight = in_flight
    space = PacketSpace(SpaceKind.APPLICATION, AckTracker(), path_id)
    net = NetworkPath((f"10.0.0.{path_id + 1}", 4000), ("192.0.2.1", 443))
    return Path(path_id, net, recovery, space, validated=validated, max_datagram_size=MDS)


def window_of(path: Path) -> FixedWindow:
    controller = path.recovery.controller
    if not isinstance(controller, FixedWindow):
        raise TypeError("not a test path")
    return controller
