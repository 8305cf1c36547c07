"""RttEstimator against RFC 9002 §5 (explicit numbers, no clocks)."""

from __future__ import annotations

import math

import pytest

from tquic.paths.rtt import K_GRANULARITY, RttEstimator


def test_initial_state_uses_initial_rtt_rfc9002_5_3() -> None:
    rtt = RttEstimator()
    assert rtt.smoothed_rtt == pytest.approx(0.333)
    assert rtt.rttvar == pytest.approx(0.1665)
    assert not rtt.has_sample
    assert math.isinf(rtt.min_rtt)
    # PTO base = smoothed + max(4 * rttvar, granularity) = 0.333 + 0.666
    assert rtt.pto_base() == pytest.approx(0.999)


def test_first_sample_resets_estimator_and_ignores_ack_delay() -> None:
    rtt = RttEstimator(initial_rtt=0.5)
    rtt.update(0.1, ack_delay=0.05, handshake_confirmed=True, max_ack_delay=0.025)
    assert rtt.has_sample
    assert rtt.latest_rtt == pytest.approx(0.1)
    assert rtt.min_rtt == pytest.approx(0.1)
    assert rtt.smoothed_rtt == pytest.approx(0.1)
    assert rtt.rttvar == pytest.approx(0.05)


def test_subsequent_sample_subtracts_ack_delay_and_smooths() -> None:
    rtt = RttEstimator()
    rtt.update(0.1, 0.0, True, 0.025)
    rtt.update(0.15, 0.02, True, 0.025)
    # adjusted = 0.15 - 0.02 = 0.13 (0.15 >= min_rtt 0.1 + 0.02)
    assert rtt.rttvar == pytest.approx(0.75 * 0.05 + 0.25 * abs(0.1 - 0.13))
    assert rtt.smoothed_rtt == pytest.approx(0.875 * 0.1 + 0.125 * 0.13)
    assert rtt.min_rtt == pytest.approx(0.1)


def test_ack_delay_clamped_to_max_ack_delay_only_after_confirmation() -> None:
    confirmed = RttEstimator()
    confirmed.update(0.1, 0.0, True, 0.025)
    confirmed.update(0.2, 0.05, True, 0.025)
    # clamped: 0.2 - 0.025 = 0.175
    assert confirmed.smoothed_rtt == pytest.approx(0.875 * 0.1 + 0.125 * 0.175)

    unconfirmed = RttEstimator()
    unconfirmed.update(0.1, 0.0, False, 0.025)
    unconfirmed.update(0.2, 0.05, False, 0.025)
    # RFC 9002 §5.3: max_ack_delay ignored before confirmation: 0.2 - 0.05 = 0.15
    assert unconfirmed.smoothed_rtt == pytest.approx(0.875 * 0.1 + 0.125 * 0.15)


def test_ack_delay_not_subtracted_below_min_rtt() -> None:
    rtt = RttEstimator()
    rtt.update(0.1, 0.0, True, 0.025)
    rtt.update(0.11, 0.02, True, 0.025)
    # 0.11 < min_rtt + ack_delay = 0.12, so the sample is used unadjusted.
    assert rtt.smoothed_rtt == pytest.approx(0.875 * 0.1 + 0.125 * 0.11)
    assert rtt.rttvar == pytest.approx(0.75 * 0.05 + 0.25 * 0.01)


def test_min_rtt_ignores_ack_delay_and_tracks_minimum() -> None:
    rtt = RttEstimator()
    rtt.update(0.1, 0.0, True, 0.025)
    rtt.update(0.09, 0.02, True, 0.025)
    assert rtt.min_rtt == pytest.approx(0.09)
    rtt.update(0.3, 0.0, True, 0.025)
    assert rtt.min_rtt == pytest.approx(0.09)
    rtt.reset_min_rtt()  # RFC 9002 §5.2 after persistent congestion
    assert rtt.min_rtt == pytest.approx(0.3)


def test_pto_base_has_granularity_floor() -> None:
    rtt = RttEstimator()
    rtt.update(0.0001, 0.0, True, 0.025)
    for _ in range(50):
        rtt.update(0.0001, 0.0, True, 0.025)
    assert rtt.pto_base() == pytest.approx(rtt.smoothed_rtt + K_GRANULARITY)


def test_reset_forgets_samples_for_migration() -> None:
    rtt = RttEstimator()
    rtt.update(0.05, 0.0, True, 0.025)
    rtt.reset(initial_rtt=0.2)
    assert not rtt.has_sample
    assert rtt.smoothed_rtt == pytest.approx(0.2)
    assert rtt.rttvar == pytest.approx(0.1)


def test_sample_marks_new_or_stale() -> None:
    rtt = RttEstimator()
    rtt.update(0.05, 0.0, True, 0.025)
    assert rtt.sample().new_sample
    assert not rtt.sample(False).new_sample
    assert rtt.sample().latest_rtt == pytest.approx(0.05)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf, math.nan])
def test_invalid_initial_rtt_rejected(bad: float) -> None:
    with pytest.raises(ValueError, match="initial_rtt"):
        RttEstimator(bad)
