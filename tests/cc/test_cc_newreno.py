"""NewReno against RFC 9002 §7 / Appendix B (windows in bytes, MDS 1200)."""

from __future__ import annotations

from tquic.cc import NewReno, available_controllers, create_controller
from tquic.cc.base import AckedPacket, LostPacket, RttSample, SentInfo

MDS = 1200
RTT = RttSample(latest_rtt=0.1, smoothed_rtt=0.1, rttvar=0.05, min_rtt=0.1)


def fill(cc: NewReno, pn: int, now: float) -> None:
    """Send one packet with the window full (cwnd-limited, RFC 9002 §7.8)."""
    cc.on_packet_sent(SentInfo(pn, MDS, now, cc.congestion_window, False), now)


def ack(cc: NewReno, pns: range, time_sent: float, now: float) -> None:
    cc.on_packets_acked([AckedPacket(pn, MDS, time_sent) for pn in pns], RTT, 0, now)


def test_registry_has_builtins() -> None:
    assert {"newreno", "cubic"} <= set(available_controllers())
    assert isinstance(create_controller("NewReno", MDS), NewReno)


def test_initial_and_minimum_window_rfc9002_7_2() -> None:
    assert NewReno(1200).congestion_window == 12000
    assert NewReno(1500).congestion_window == 14720  # min(15000, max(14720, 3000))
    assert NewReno(1200).minimum_window == 2400


def test_slow_start_grows_by_bytes_acked() -> None:
    cc = NewReno(MDS)
    fill(cc, 9, 0.0)
    ack(cc, range(10), 0.0, 0.1)
    assert cc.congestion_window == 24000
    assert cc.in_slow_start


def test_no_growth_when_application_limited_rfc9002_7_8() -> None:
    cc = NewReno(MDS)
    # Only two packets in flight out of a 12000-byte window.
    cc.on_packet_sent(SentInfo(0, MDS, 0.0, 1200, True), 0.0)
    cc.on_packet_sent(SentInfo(1, MDS, 0.0, 2400, True), 0.0)
    ack(cc, range(2), 0.0, 0.1)
    assert cc.congestion_window == 12000


def test_loss_halves_once_per_recovery_period() -> None:
    cc = NewReno(MDS)
    fill(cc, 9, 0.0)
    cc.on_packets_lost([LostPacket(3, MDS, 0.0)], 0, 1.0)
    assert cc.ssthresh == 6000
    assert cc.congestion_window == 6000
    assert cc.recovery_start_time == 1.0
    # More losses of packets sent before the recovery started: no new reduction.
    cc.on_packets_lost([LostPacket(4, MDS, 0.0), LostPacket(5, MDS, 0.9)], 0, 1.1)
    assert cc.congestion_window == 6000
    # ECN-CE for a packet sent before recovery: still the same round.
    cc.on_congestion_event_ecn(0.5, 1.2)
    assert cc.congestion_window == 6000
    # ACK of a packet sent before recovery: no growth in recovery.
    fill(cc, 10, 1.2)
    ack(cc, range(6, 8), 0.0, 1.2)
    assert cc.congestion_window == 6000
    # A loss of a packet sent after the recovery start is a new round: halve again.
    cc.on_packets_lost([LostPacket(11, MDS, 1.05)], 0, 1.5)
    assert cc.congestion_window == 3000
    assert cc.congestion_events == 2


def test_window_never_below_minimum() -> None:
    cc = NewReno(MDS)
    for i in range(10):
        cc.on_packets_lost([LostPacket(i, MDS, float(i) + 0.5)], 0, float(i + 1))
    assert cc.congestion_window == 2400


def test_congestion_avoidance_adds_one_mds_per_window_acked() -> None:
    cc = NewReno(MDS)
    cc.on_packets_lost([LostPacket(0, MDS, 0.0)], 0, 1.0)
    assert cc.congestion_window == 6000 and not cc.in_slow_start
    # Packets sent after the recovery start (t=2): 3000 bytes acked, then 3000 more.
    fill(cc, 1, 2.0)
    ack(cc, range(1, 3), 2.0, 2.1)  # 2400 bytes
    assert cc.congestion_window == 6000
    fill(cc, 3, 2.1)
    ack(cc, range(3, 6), 2.0, 2.2)  # 6000 bytes in total: one window acked
    assert cc.congestion_window == 7200
    # The next increment needs a whole 7200-byte window.
    fill(cc, 6, 2.2)
    ack(cc, range(6, 10), 2.2, 2.3)  # 4800 < 7200
    assert cc.congestion_window == 7200
    fill(cc, 10, 2.3)
    ack(cc, range(10, 12), 2.3, 2.4)  # 4800 + 2400 = 7200
    assert cc.congestion_window == 8400


def test_persistent_congestion_collapses_to_minimum_and_restarts_slow_start() -> None:
    cc = NewReno(MDS)
    cc.on_packets_lost([LostPacket(0, MDS, 0.0)], 0, 1.0)
    cc.on_persistent_congestion(1.0)
    assert cc.congestion_window == 2400
    assert cc.recovery_start_time is None
    assert cc.in_slow_start
    fill(cc, 1, 1.5)
    ack(cc, range(1, 3), 1.5, 1.6)
    assert cc.congestion_window == 4800


def test_pacing_delay_is_not_application_limited_rfc9002_7_8() -> None:
    # In congestion avoidance with only half the window in flight at each ACK: the
    # window grows only if the pacer (not the application) held the data back.
    def run(paced: bool) -> int:
        cc = NewReno(MDS)
        cc.ssthresh = 12000  # congestion avoidance
        for pn in range(10):  # never more than half the window in flight
            cc.on_packet_sent(SentInfo(pn, MDS, 0.0, (pn % 5 + 1) * MDS, False), 0.0)
        if paced:
            cc.on_pacing_limited()
        ack(cc, range(10), 0.0, 0.1)  # a whole window acknowledged: +1 MDS if growing
        return cc.congestion_window

    assert run(paced=False) == 12000
    assert run(paced=True) == 12000 + MDS
