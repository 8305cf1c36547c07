"""Copa (NSDI 2018) rules with synthetic ACKs and explicit RTTs."""

from __future__ import annotations

import itertools
import math

import pytest

from tquic.cc import create_controller
from tquic.cc.base import AckedPacket, LostPacket, RttSample, SentInfo
from tquic.cc.copa import Copa

MDS = 1200


class Driver:
    """Sends one window per round and acknowledges it with a chosen RTT."""

    def __init__(self, cc: Copa) -> None:
        self.cc = cc
        self.pn = 0
        self.now = 0.0

    def round(self, rtt: float) -> None:
        cc = self.cc
        n = max(1, cc.congestion_window // MDS)
        sent = []
        for i in range(n):
            self.cc.on_packet_sent(SentInfo(self.pn, MDS, self.now, (i + 1) * MDS, False), self.now)
            sent.append((self.pn, self.now))
            self.pn += 1
        for i, (pn, t) in enumerate(sent):
            self.now = t + rtt + i * 1e-5
            r = RttSample(rtt, rtt, rtt / 4, rtt, True)
            cc.on_packets_acked([AckedPacket(pn, MDS, t)], r, (n - i - 1) * MDS, self.now)


def test_registered() -> None:
    assert isinstance(create_controller("copa", MDS), Copa)


def test_target_rate_is_one_over_delta_dq() -> None:
    cc = Copa(MDS)
    d = Driver(cc)
    d.round(0.040)
    d.round(0.050)
    d.round(0.050)
    assert cc.queueing_delay() == pytest.approx(0.010, abs=1e-4)
    # 1 / (0.5 * 10 ms) = 200 packets/s.
    assert cc.target_rate() == pytest.approx(200 * MDS, rel=0.02)
    assert cc.pacing_rate == pytest.approx(2 * cc.congestion_window / cc.rtt_standing.value, rel=1e-3)


def test_slow_start_doubles_until_the_rate_exceeds_the_target() -> None:
    cc = Copa(MDS)
    d = Driver(cc)
    start = cc.congestion_window
    d.round(0.040)  # no queue: target infinite
    assert cc.slow_start and cc.congestion_window == 2 * start
    d.round(0.080)  # 40 ms of queue: target 50 pkt/s, far exceeded
    assert not cc.slow_start


def test_no_queue_grows_and_big_queue_shrinks_the_window() -> None:
    cc = Copa(MDS)
    d = Driver(cc)
    d.round(0.040)
    d.round(0.080)  # leave slow start
    before = cc.congestion_window
    for _ in range(3):
        d.round(0.080)  # lambda > lambda_t: decrease
    assert cc.congestion_window < before
    low = cc.congestion_window
    for _ in range(3):
        d.round(0.040)  # RTT_standing = RTT_min: d_q = 0, target infinite: increase
    assert cc.congestion_window > low


def test_velocity_doubles_after_three_rounds_in_one_direction_and_resets() -> None:
    cc = Copa(MDS)
    d = Driver(cc)
    d.round(0.040)
    d.round(0.080)  # out of slow start
    velocities = []
    for _ in range(7):
        d.round(0.040)  # keeps increasing
        velocities.append(cc.velocity)
    assert velocities[0] == 1 and velocities[1] == 1
    assert max(velocities) >= 4
    assert all(b in (a, 2 * a) for a, b in itertools.pairwise(velocities))
    d.round(0.200)  # direction flips: v back to 1
    d.round(0.200)
    assert cc.velocity == 1


def test_default_mode_ignores_loss_and_persistent_congestion_collapses() -> None:
    cc = Copa(MDS)
    d = Driver(cc)
    d.round(0.040)
    w = cc.congestion_window
    cc.on_packets_lost([LostPacket(0, MDS, 0.0)], 0, d.now)
    assert cc.congestion_window == w
    cc.on_persistent_congestion(d.now)
    assert cc.congestion_window == 2 * MDS and cc.velocity == 1


def test_competitive_mode_lowers_delta_when_the_queue_never_empties() -> None:
    cc = Copa(MDS, competitive=True)
    d = Driver(cc)
    d.round(0.040)
    d.round(0.100)  # the queue appears...
    for _ in range(8):
        d.round(0.100)  # ...and never drains (RTT_standing stays far above RTT_min)
    assert cc.competitive_mode and cc.delta < 0.5
    delta = cc.delta
    cc.on_packets_lost([LostPacket(0, MDS, 0.0)], 0, d.now)
    assert cc.delta == pytest.approx(min(2 * delta, 0.5))


def test_rejects_bad_delta() -> None:
    with pytest.raises(ValueError, match="delta"):
        Copa(MDS, delta=0.0)
    assert math.isinf(Copa(MDS).target_rate())


def test_each_ack_moves_cwnd_by_velocity_over_delta_cwnd_packets() -> None:
    # §2.2: cwnd += v / (δ · cwnd) when λ <= λ_t, else cwnd -= v / (δ · cwnd),
    # in packets per acknowledged packet.
    cc = Copa(MDS)
    d = Driver(cc)
    d.round(0.040)
    d.round(0.080)  # out of slow start, a 40 ms standing queue
    for rtt, sign in ((0.080, -1), (0.040, +1)):
        for _ in range(3):
            d.round(rtt)
        w = cc.congestion_window / MDS
        v = cc.velocity
        pn, t = d.pn, d.now
        cc.on_packet_sent(SentInfo(pn, MDS, t, MDS, False), t)
        d.pn += 1
        r = RttSample(rtt, rtt, rtt / 4, 0.040, True)
        cc.on_packets_acked([AckedPacket(pn, MDS, t)], r, 0, t + rtt)
        d.now = t + rtt
        step = cc.congestion_window / MDS - w
        assert step == pytest.approx(sign * v / (cc.delta * w), rel=0.02, abs=1 / MDS)
