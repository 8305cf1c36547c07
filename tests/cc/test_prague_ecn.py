"""Prague's use of ECN feedback: alpha tracks the CE fraction (RFC 9331 §4.3, RFC 8257
§3.3), smooth pacing, and the per-path pacer/codepoint it asks for."""

from __future__ import annotations

import pytest

from tquic.cc.base import AckedPacket, RttSample, SentInfo
from tquic.cc.newreno import NewReno
from tquic.cc.prague import Prague
from tquic.paths.ecn import ECN_ECT0, ECN_ECT1
from tquic.paths.recovery import PathRecovery

MDS = 1200
RTT = 0.02


def _round(cc: Prague, state: list[int], marked: int, packets: int, now: float) -> None:
    """One round trip: ``packets`` sent, acknowledged one per ACK, ``marked`` of them CE
    (spread over the round, as a step AQM at a steady queue would mark them)."""
    first = state[0]
    for i in range(packets):
        cc.on_packet_sent(SentInfo(first + i, MDS, now, (i + 1) * MDS, False), now)
    state[0] += packets
    rtt = RttSample(RTT, RTT, RTT / 4, RTT, True)
    every = packets // marked if marked else 0
    for i in range(packets):
        ce = 1 if every and i % every == 0 and i // every < marked else 0
        cc.on_packets_acked([AckedPacket(first + i, MDS, now)], rtt,
                            (packets - i - 1) * MDS, now + RTT, ce)


@pytest.mark.parametrize("fraction", [0.05, 0.2, 0.5])
def test_alpha_converges_to_the_marking_fraction(fraction: float) -> None:
    cc = Prague(MDS)
    state = [0]
    packets = 40
    for k in range(150):
        _round(cc, state, round(fraction * packets), packets, k * RTT)
    assert cc.alpha == pytest.approx(fraction, abs=0.01)


def test_alpha_decays_towards_zero_without_marks_and_cwnd_is_not_cut() -> None:
    cc = Prague(MDS)
    state = [0]
    for k in range(80):
        _round(cc, state, 0, 20, k * RTT)
    assert cc.alpha < 0.01
    assert cc.ce_reductions == 0


def test_pacing_is_cwnd_over_srtt_in_avoidance_and_double_in_slow_start() -> None:
    cc = Prague(MDS)
    assert cc.pacing_rate is None  # no RTT sample yet: the initial window rules
    state = [0]
    _round(cc, state, 0, 10, 0.0)
    assert cc.in_slow_start
    assert cc.pacing_rate == pytest.approx(2 * cc.congestion_window / RTT, rel=0.01)
    _round(cc, state, 5, 10, RTT)  # CE: slow start ends
    assert not cc.in_slow_start
    assert cc.pacing_rate == pytest.approx(cc.congestion_window / RTT, rel=0.01)


def test_recovery_builds_the_pacer_and_ecn_codepoint_the_controller_asks_for() -> None:
    from tquic.paths.ecn import EcnValidator

    prague = PathRecovery(Prague(MDS), MDS, is_client=True)
    assert prague.pacer.capacity == 2 * MDS  # pacing_burst_packets
    classic = PathRecovery(NewReno(MDS), MDS, is_client=True, ecn=EcnValidator())
    assert classic.pacer.capacity == 10 * MDS
    assert classic.ecn.codepoint == ECN_ECT0
    classic.set_controller(Prague(MDS))  # a per-path choice made after creation
    assert classic.pacer.capacity == 2 * MDS
    assert classic.ecn.codepoint == ECN_ECT1
