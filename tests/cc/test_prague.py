"""Prague (L4S): DCTCP-style alpha per round (g = 1/16), cwnd x (1 - alpha/2) once per round."""

from __future__ import annotations

import pytest

from tquic.cc import create_controller
from tquic.cc.base import AckedPacket, LostPacket, RttSample, SentInfo
from tquic.cc.prague import ALPHA_GAIN, Prague

MDS = 1200
RTT = 0.02


class Driver:
    def __init__(self, cc: Prague) -> None:
        self.cc = cc
        self.pn = 0
        self.now = 0.0

    def round(self, marked_fraction: float, packets: int = 20) -> None:
        """One round: ``packets`` sent, then acknowledged one per ACK, the first
        ``marked_fraction`` of them CE-marked."""
        cc = self.cc
        first = self.pn
        for i in range(packets):
            cc.on_packet_sent(SentInfo(self.pn, MDS, self.now, (i + 1) * MDS, False), self.now)
            self.pn += 1
        marked = round(marked_fraction * packets)
        sent_at = self.now
        self.now += RTT
        rtt = RttSample(RTT, RTT, RTT / 4, RTT, True)
        for i in range(packets):
            ce = 1 if i < marked else 0
            cc.on_packets_acked(
                [AckedPacket(first + i, MDS, sent_at)], rtt, (packets - i - 1) * MDS, self.now, ce
            )


def test_registered_and_marks_ect1() -> None:
    cc = create_controller("prague", MDS)
    assert isinstance(cc, Prague)
    assert cc.ecn_codepoint == "ect1"


def test_alpha_is_an_ewma_of_the_ce_fraction_with_gain_one_sixteenth() -> None:
    cc = Prague(MDS)
    d = Driver(cc)
    d.round(0.0)  # round 1 (alpha still 1)
    d.round(0.5)  # its fraction is folded in when round 3 starts
    d.round(0.0)
    alpha = 1.0
    for fraction in (0.0, 0.5):
        alpha = (1 - ALPHA_GAIN) * alpha + ALPHA_GAIN * fraction
    assert ALPHA_GAIN == 1 / 16
    assert cc.alpha == pytest.approx(alpha)


def test_ce_reduces_cwnd_by_alpha_over_two_once_per_round() -> None:
    cc = Prague(MDS)
    d = Driver(cc)
    for _ in range(30):
        d.round(0.0)  # alpha decays towards 0, cwnd grows
    alpha = cc.alpha
    assert alpha < 0.2
    w = cc.congestion_window
    reductions = cc.ce_reductions
    d.round(1.0)  # every ACK of the round carries CE: still one reduction
    assert cc.ce_reductions == reductions + 1
    assert cc.ssthresh == pytest.approx(w * (1 - alpha / 2), abs=MDS)
    assert cc.congestion_window <= w * (1 - alpha / 2) + MDS
    assert not cc.in_slow_start


def test_ecn_congestion_event_does_not_halve() -> None:
    cc = Prague(MDS)
    w = cc.congestion_window
    cc.on_congestion_event_ecn(0.0, 0.01)
    assert cc.congestion_window == w


def test_loss_falls_back_to_reno_halving() -> None:
    cc = Prague(MDS)
    d = Driver(cc)
    d.round(0.0)
    w = cc.congestion_window
    cc.on_packets_lost([LostPacket(d.pn - 1, MDS, d.now - RTT)], 0, d.now)
    assert cc.congestion_window == w // 2


def test_rtt_independence_slows_growth_below_25_ms() -> None:
    plain, scaled = Prague(MDS), Prague(MDS, rtt_independence=True)
    for cc in (plain, scaled):
        cc.ssthresh = cc.congestion_window  # start in congestion avoidance
        d = Driver(cc)
        for _ in range(20):
            d.round(0.0)
    # 20 ms RTT: (20/25)^2 = 0.64 of Reno's additive increase.
    grew_plain = plain.congestion_window - 12000
    grew_scaled = scaled.congestion_window - 12000
    assert grew_plain > 0
    assert grew_scaled == pytest.approx(0.64 * grew_plain, rel=0.25)
