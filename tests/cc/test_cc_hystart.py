"""HyStart++ (RFC 9406): RTT-based exit to CSS, spurious-exit return, CSS_ROUNDS to avoidance."""

from __future__ import annotations

import math

import pytest

from tquic.cc import Cubic
from tquic.cc.base import AckedPacket, RttSample, SentInfo
from tquic.cc.hystart import (
    CSS_GROWTH_DIVISOR,
    CSS_ROUNDS,
    N_RTT_SAMPLE,
    HyStartPhase,
    HyStartPlusPlus,
)

MSS = 1200


class Rounds:
    """Drive a HyStartPlusPlus one round (a window of packets) at a time."""

    def __init__(self) -> None:
        self.h = HyStartPlusPlus()
        self.pn = 0

    def round(self, n: int, rtts: list[float] | float) -> list[bool]:
        first = self.pn
        for _ in range(n):
            self.h.on_packet_sent(self.pn)
            self.pn += 1
        samples = rtts if isinstance(rtts, list) else [rtts] * n
        return [self.h.on_ack(first + i, samples[i], True) for i in range(n)]


def warm_up(r: Rounds, rtt: float = 0.1) -> None:
    # The first round is the first packet only; the second gives a full baseline.
    r.round(10, rtt)
    r.round(10, rtt)
    assert r.h.phase == HyStartPhase.SLOW_START


def test_constants_rfc9406_4_3() -> None:
    assert (N_RTT_SAMPLE, CSS_GROWTH_DIVISOR, CSS_ROUNDS) == (8, 4, 5)


def test_rtt_increase_above_threshold_enters_css_after_n_rtt_samples() -> None:
    r = Rounds()
    warm_up(r)
    # RttThresh = max(4 ms, min(100 ms / 8, 16 ms)) = 12.5 ms; 120 ms >= 112.5 ms.
    first = r.pn
    for i in range(N_RTT_SAMPLE):
        r.h.on_packet_sent(first + i)
    for i in range(N_RTT_SAMPLE - 1):
        r.h.on_ack(first + i, 0.12, True)
        assert r.h.phase == HyStartPhase.SLOW_START  # fewer than 8 samples in the round
    r.h.on_ack(first + 7, 0.12, True)
    assert r.h.phase == HyStartPhase.CSS
    assert r.h.css_baseline_min_rtt == pytest.approx(0.12)


def test_rtt_increase_below_threshold_stays_in_slow_start() -> None:
    r = Rounds()
    warm_up(r)
    r.round(10, 0.112)  # +12 ms < 12.5 ms
    assert r.h.phase == HyStartPhase.SLOW_START


def test_threshold_is_clamped_between_4_and_16_ms() -> None:
    below = Rounds()
    warm_up(below, rtt=0.008)  # 8 ms / 8 = 1 ms -> clamped up to 4 ms
    below.round(10, 0.0115)
    assert below.h.phase == HyStartPhase.SLOW_START
    above = Rounds()
    warm_up(above, rtt=0.008)
    above.round(10, 0.0125)
    assert above.h.phase == HyStartPhase.CSS

    high = Rounds()
    warm_up(high, rtt=0.4)  # 400 ms / 8 = 50 ms -> clamped down to 16 ms
    high.round(10, 0.417)
    assert high.h.phase == HyStartPhase.CSS


def test_stale_rtt_samples_are_not_counted() -> None:
    r = Rounds()
    warm_up(r)
    first = r.pn
    for i in range(10):
        r.h.on_packet_sent(first + i)
    for i in range(10):
        r.h.on_ack(first + i, 0.2, new_sample=False)
    assert r.h.phase == HyStartPhase.SLOW_START
    assert math.isinf(r.h.current_round_min_rtt)


def test_css_grows_a_quarter_and_returns_to_slow_start_on_lower_rtt() -> None:
    r = Rounds()
    warm_up(r)
    r.round(10, 0.12)
    assert r.h.in_css
    assert r.h.increase(4800) == pytest.approx(4800 / CSS_GROWTH_DIVISOR)
    # A CSS round whose minimum drops below the 120 ms baseline: the exit was spurious.
    r.round(10, 0.105)
    assert r.h.phase == HyStartPhase.SLOW_START
    assert math.isinf(r.h.css_baseline_min_rtt)
    assert r.h.increase(4800) == 4800


def test_css_rounds_complete_into_congestion_avoidance() -> None:
    r = Rounds()
    warm_up(r)
    r.round(10, 0.12)
    assert r.h.in_css
    results: list[bool] = []
    for _ in range(CSS_ROUNDS - 1):
        results += r.round(10, 0.12)
    assert not any(results) and r.h.in_css
    # The first ACK of the next round completes the fifth CSS round.
    assert r.round(10, 0.12)[0] is True
    assert r.h.phase == HyStartPhase.DONE


def test_cubic_uses_hystart_and_sets_ssthresh_after_css() -> None:
    cc = Cubic(MSS)  # HyStart++ on by default
    assert cc.hystart is not None
    pn = 0
    now = 0.0

    def one_round(rtt: float) -> None:
        nonlocal pn, now
        first = pn
        for _ in range(10):
            cc.on_packet_sent(SentInfo(pn, MSS, now, cc.congestion_window, False), now)
            pn += 1
        now += rtt
        sample = RttSample(latest_rtt=rtt, smoothed_rtt=rtt, rttvar=0.01, min_rtt=0.1)
        for i in range(10):
            cc.on_packets_acked(
                [AckedPacket(first + i, MSS, now - rtt)], sample, cc.congestion_window, now
            )
            if cc.hystart is not None and cc.hystart.phase == HyStartPhase.DONE:
                return

    one_round(0.1)
    one_round(0.1)
    before = cc.congestion_window
    one_round(0.12)  # enters CSS on the 8th sample
    assert cc.hystart.in_css
    # The 8 ACKs up to the exit grow fully, the last 2 of the round by a quarter.
    assert cc.congestion_window == before + 8 * MSS + 2 * MSS // 4
    assert math.isinf(cc.ssthresh)
    for _ in range(CSS_ROUNDS):
        one_round(0.12)
    assert cc.hystart.phase == HyStartPhase.DONE
    assert cc.ssthresh == cc.congestion_window
    assert not cc.in_slow_start


def test_loss_ends_hystart() -> None:
    from tquic.cc.base import LostPacket

    cc = Cubic(MSS)
    cc.on_packets_lost([LostPacket(0, MSS, 0.0)], 0, 0.1)
    assert cc.hystart is not None and cc.hystart.phase == HyStartPhase.DONE
