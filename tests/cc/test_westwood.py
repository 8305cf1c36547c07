"""Westwood+: one bandwidth sample per RTT, low-pass filtered; ssthresh = BWE x RTTmin on loss."""

from __future__ import annotations

import pytest

from tquic.cc import create_controller
from tquic.cc.base import AckedPacket, LostPacket, RttSample, SentInfo
from tquic.cc.westwood import BWE_FILTER_GAIN, WestwoodPlus

MDS = 1200
RTT = 0.05


def deliver(cc: WestwoodPlus, rate: float, seconds: float, start: float = 0.0) -> float:
    """Send and acknowledge packets at ``rate`` bytes/s for ``seconds``; returns the end time."""
    gap = MDS / rate
    n = int(seconds / gap)
    rtt = RttSample(RTT, RTT, RTT / 4, RTT, True)
    for i in range(n):
        t = start + i * gap
        cc.on_packet_sent(SentInfo(i, MDS, t, MDS, False), t)
        cc.on_packets_acked([AckedPacket(i, MDS, t)], rtt, 0, t + RTT)
    return start + n * gap + RTT


def test_registered() -> None:
    assert isinstance(create_controller("westwood", MDS), WestwoodPlus)


def test_bandwidth_sampled_once_per_rtt_and_filtered() -> None:
    cc = WestwoodPlus(MDS)
    deliver(cc, 1e6, 1.0)
    # ~1 s / 50 ms = 20 samples, not one per ACK (~830).
    assert 15 <= cc.samples <= 21
    assert cc.bwe == pytest.approx(1e6, rel=0.05)
    # A step to 2 MB/s: the filter follows with a = 0.9 per sample.
    before = cc.bwe
    end = deliver(cc, 2e6, 0.051, start=2.0)
    assert end > 2.0
    assert cc.bwe < 2e6
    assert cc.bwe == pytest.approx(BWE_FILTER_GAIN * before + (1 - BWE_FILTER_GAIN) * 2e6, rel=0.1)


def test_loss_sets_ssthresh_to_bwe_times_min_rtt() -> None:
    cc = WestwoodPlus(MDS)
    end = deliver(cc, 1e6, 1.0)
    cwnd_before = cc.congestion_window
    cc.on_packets_lost([LostPacket(10**6, MDS, end)], 0, end + 0.01)
    assert cc.ssthresh == int(cc.bwe * RTT)
    assert cc.ssthresh == pytest.approx(1e6 * RTT, rel=0.05)
    assert cc.congestion_window == min(cwnd_before, cc.ssthresh)


def test_loss_before_any_estimate_halves_like_reno() -> None:
    cc = WestwoodPlus(MDS)
    w = cc.congestion_window
    cc.on_packets_lost([LostPacket(0, MDS, 0.0)], 0, 0.1)
    assert cc.congestion_window == w // 2


def test_persistent_congestion_keeps_bwe_threshold() -> None:
    cc = WestwoodPlus(MDS)
    end = deliver(cc, 1e6, 1.0)
    cc.on_persistent_congestion(end)
    assert cc.congestion_window == 2 * MDS
    assert cc.ssthresh == int(cc.bwe * RTT)
    assert cc.pacing_rate is None
