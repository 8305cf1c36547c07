"""CUBIC against RFC 9438's formulas (windows in bytes; MSS = 1200)."""

from __future__ import annotations

import pytest

from tquic.cc import Cubic, create_controller
from tquic.cc.base import AckedPacket, LostPacket, RttSample, SentInfo
from tquic.cc.cubic import ALPHA_CUBIC, BETA_CUBIC, C_CUBIC, cubic_k, w_cubic

MSS = 1200
SRTT = 0.1
RTT = RttSample(latest_rtt=SRTT, smoothed_rtt=SRTT, rttvar=0.01, min_rtt=SRTT)


def seg(n: float) -> float:
    return n * MSS


def cubic_in_avoidance(cwnd_segments: int, **kwargs: bool) -> Cubic:
    """A CUBIC sender that reached ``cwnd_segments`` and just lost a packet at t=10."""
    cc = Cubic(MSS, hystart=False, **kwargs)
    cc._cwnd = seg(cwnd_segments)
    cc.on_packets_lost([LostPacket(0, MSS, 9.9)], 0, 10.0)
    return cc


def fill(cc: Cubic, pn: int, now: float) -> None:
    cc.on_packet_sent(SentInfo(pn, MSS, now, cc.congestion_window, False), now)


def ack_bytes(cc: Cubic, nbytes: int, time_sent: float, now: float, pn: int = 100) -> None:
    fill(cc, pn, time_sent)
    cc.on_packets_acked([AckedPacket(pn, nbytes, time_sent)], RTT, 0, now)


def test_constants_rfc9438() -> None:
    assert C_CUBIC == 0.4
    assert BETA_CUBIC == 0.7
    assert pytest.approx(3 * 0.3 / 1.7) == ALPHA_CUBIC
    assert isinstance(create_controller("cubic", MSS), Cubic)


def test_k_formula_rfc9438_4_2() -> None:
    # W_max = 100 segments, cwnd_epoch = 70 segments: K = cbrt(30 / 0.4) = cbrt(75)
    assert cubic_k(seg(100), seg(70), MSS) == pytest.approx(75 ** (1 / 3))
    assert cubic_k(seg(100), seg(100), MSS) == 0.0
    assert cubic_k(seg(100), seg(120), MSS) == 0.0


def test_w_cubic_values_rfc9438_4_2() -> None:
    k = cubic_k(seg(100), seg(70), MSS)
    assert w_cubic(0.0, k, seg(100), MSS) == pytest.approx(seg(70))  # starts at cwnd_epoch
    assert w_cubic(k, k, seg(100), MSS) == pytest.approx(seg(100))  # plateau at W_max
    assert w_cubic(k + 2.0, k, seg(100), MSS) == pytest.approx(seg(100 + 0.4 * 8))
    assert w_cubic(k - 1.0, k, seg(100), MSS) == pytest.approx(seg(100 - 0.4))


def test_multiplicative_decrease_uses_beta_0_7() -> None:
    cc = cubic_in_avoidance(100)
    assert cc.ssthresh == pytest.approx(seg(70))
    assert cc.congestion_window == int(seg(70))
    assert cc.w_max == pytest.approx(seg(100))
    assert cc.cwnd_prior == pytest.approx(seg(100))


def test_fast_convergence_lowers_w_max_rfc9438_4_7() -> None:
    cc = cubic_in_avoidance(100)
    cc._cwnd = seg(80)  # the next event hits below the previous W_max
    cc.on_packets_lost([LostPacket(1, MSS, 10.5)], 0, 11.0)
    assert cc.w_max == pytest.approx(seg(80) * (1 + BETA_CUBIC) / 2)
    assert cc.congestion_window == int(seg(80) * BETA_CUBIC)

    plain = cubic_in_avoidance(100, fast_convergence=False)
    plain._cwnd = seg(80)
    plain.on_packets_lost([LostPacket(1, MSS, 10.5)], 0, 11.0)
    assert plain.w_max == pytest.approx(seg(80))


def test_reno_friendly_region_sets_cwnd_to_w_est_rfc9438_4_3() -> None:
    cc = cubic_in_avoidance(100)
    # First ACK in avoidance (packet sent after the recovery start) opens the epoch
    # at t = 10.5 with cwnd_epoch = 70 segments; right away W_cubic(t=0) = 70
    # segments, while W_est grows by alpha * 70/70 segments.
    ack_bytes(cc, int(seg(70)), time_sent=10.2, now=10.5)
    assert cc.t_epoch == 10.5
    assert cc.k == pytest.approx(75 ** (1 / 3))
    expected_w_est = seg(70) + ALPHA_CUBIC * seg(70) * MSS / seg(70)
    assert cc.w_est == pytest.approx(expected_w_est)
    assert cc.congestion_window == int(expected_w_est)


def test_concave_growth_follows_cubic_target_rfc9438_4_4() -> None:
    cc = cubic_in_avoidance(100)
    ack_bytes(cc, MSS, time_sent=10.2, now=10.5)  # epoch starts at 10.5
    cwnd_before = cc._cwnd
    w_est_before = cc.w_est
    # Two seconds later, one segment acked: W_cubic(2) is far above W_est.
    t = 2.0
    ack_bytes(cc, MSS, time_sent=12.4, now=10.5 + t, pn=101)
    k = 75 ** (1 / 3)
    assert 0.4 * (t - k) ** 3 + 100 > (w_est_before + ALPHA_CUBIC * MSS * MSS / cwnd_before) / MSS
    target = (0.4 * (t + SRTT - k) ** 3 + 100) * MSS  # W_cubic(t + RTT)
    target = min(max(target, cwnd_before), 1.5 * cwnd_before)
    assert cc._cwnd == pytest.approx(cwnd_before + (target - cwnd_before) * MSS / cwnd_before)
    assert cc._cwnd < seg(100)  # concave: still below W_max


def test_convex_growth_beyond_w_max_rfc9438_4_5() -> None:
    cc = cubic_in_avoidance(100)
    ack_bytes(cc, MSS, time_sent=10.2, now=10.5)
    cc._cwnd = seg(101)  # past the plateau
    t = 6.0  # > K = 4.22
    ack_bytes(cc, MSS, time_sent=16.0, now=10.5 + t, pn=101)
    k = 75 ** (1 / 3)
    target = (0.4 * (t + SRTT - k) ** 3 + 100) * MSS
    target = min(max(target, seg(101)), 1.5 * seg(101))
    assert cc._cwnd == pytest.approx(seg(101) + (target - seg(101)) * MSS / seg(101))


def test_alpha_becomes_one_once_w_est_reaches_cwnd_prior() -> None:
    cc = cubic_in_avoidance(10)  # cwnd 7 segments, cwnd_prior 10
    assert cc.alpha == pytest.approx(ALPHA_CUBIC)
    now = 10.5
    for i in range(200):
        ack_bytes(cc, MSS, time_sent=now - 0.05, now=now, pn=100 + i)
        now += 0.001
        if cc.w_est >= seg(10):
            break
    assert cc.alpha == 1.0


def test_no_growth_in_recovery_or_when_app_limited() -> None:
    cc = cubic_in_avoidance(100)
    # A packet sent before the recovery start: no growth.
    ack_bytes(cc, MSS, time_sent=9.0, now=10.5)
    assert cc.congestion_window == int(seg(70))
    # Application-limited: only one packet in flight.
    cc.on_packet_sent(SentInfo(200, MSS, 10.6, MSS, True), 10.6)
    cc.on_packets_acked([AckedPacket(200, MSS, 10.6)], RTT, 0, 10.7)
    assert cc.congestion_window == int(seg(70))
    assert cc.t_epoch is None


def test_timeout_resets_w_max_so_next_epoch_has_k_zero_rfc9438_4_8() -> None:
    cc = cubic_in_avoidance(100)
    cc.on_persistent_congestion(10.0)
    assert cc.congestion_window == 2 * MSS
    assert cc.w_max is None
    assert cc.in_slow_start
