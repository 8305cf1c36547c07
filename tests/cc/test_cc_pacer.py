"""Pacer: token bucket rate and burst (RFC 9002 §7.7)."""

from __future__ import annotations

import pytest

from tquic.cc.pacer import (
    BURST_INTERVAL,
    MAX_BURST_PACKETS,
    TIMER_GRANULARITY,
    Pacer,
    window_pacing_rate,
)

MDS = 1200


def test_window_rate_is_1_25_cwnd_over_srtt() -> None:
    assert window_pacing_rate(12000, 0.1) == pytest.approx(1.25 * 12000 / 0.1)
    assert window_pacing_rate(12000, 0.0) is None


def test_unpaced_pacer_always_allows_sending() -> None:
    pacer = Pacer(MDS)
    for _ in range(100):
        assert pacer.next_send_time(1.0, MDS) == 1.0
        pacer.on_packet_sent(1.0, MDS)
    assert pacer.rate is None


def test_burst_of_ten_then_paced_at_rate() -> None:
    pacer = Pacer(MDS, burst_packets=10)
    rate = 150_000.0  # bytes per second: one 1200-byte packet per 8 ms
    pacer.set_rate(rate, 0.0)
    for _ in range(10):
        assert pacer.next_send_time(0.0, MDS) == 0.0
        pacer.on_packet_sent(0.0, MDS)
    # The bucket is empty: the 11th packet waits size / rate.
    assert pacer.next_send_time(0.0, MDS) == pytest.approx(MDS / rate)
    # After 8 ms one packet's worth of tokens is back.
    assert pacer.next_send_time(0.008, MDS) == pytest.approx(0.008)
    pacer.on_packet_sent(0.008, MDS)
    assert pacer.next_send_time(0.008, MDS) == pytest.approx(0.016)


def test_idle_refill_is_capped_at_burst() -> None:
    pacer = Pacer(MDS, burst_packets=4)
    pacer.set_rate(150_000.0, 0.0)
    for _ in range(4):
        pacer.on_packet_sent(0.0, MDS)
    # Ten seconds idle earns far more than 4 packets, but the bucket holds 4.
    sent = 0
    while pacer.next_send_time(10.0, MDS) == 10.0:
        pacer.on_packet_sent(10.0, MDS)
        sent += 1
        assert sent <= 10
    assert sent == 4


def test_overdraft_by_probes_is_repaid_then_bounded() -> None:
    pacer = Pacer(MDS, burst_packets=2)
    pacer.set_rate(120_000.0, 0.0)
    for _ in range(10):  # probes ignore the pacer
        pacer.on_packet_sent(0.0, MDS)
    assert pacer.tokens == pytest.approx(-2 * MDS)
    # Debt of 2 packets plus one packet to send: 3 * 1200 / 120000 = 30 ms.
    assert pacer.next_send_time(0.0, MDS) == pytest.approx(0.03)


def test_oversized_datagram_does_not_wait_forever() -> None:
    pacer = Pacer(MDS, burst_packets=1)
    pacer.set_rate(1200.0, 0.0)
    pacer.on_packet_sent(0.0, MDS)
    assert pacer.next_send_time(0.0, 5 * MDS) == pytest.approx(1.0)


def test_invalid_parameters_rejected() -> None:
    with pytest.raises(ValueError, match="max_datagram_size"):
        Pacer(0)
    with pytest.raises(ValueError, match="burst_packets"):
        Pacer(MDS, burst_packets=0)


def test_waking_at_the_returned_time_allows_sending() -> None:
    pacer = Pacer(MDS, burst_packets=1)
    pacer.set_rate(123_457.0, 0.3)
    now = 0.3
    for _ in range(1000):
        pacer.on_packet_sent(now, MDS)
        when = pacer.next_send_time(now, MDS)
        assert when > now
        assert pacer.next_send_time(when, MDS) == when
        now = when


def test_wait_shorter_than_a_timer_tick_is_not_taken_but_repaid() -> None:
    # 10 MB/s: a 1200-byte packet every 0.12 ms, far below a loop's ~1 ms timer tick.
    rate = 10_000_000.0
    pacer = Pacer(MDS, burst_packets=10)
    pacer.set_rate(rate, 0.0)
    sent = 0
    while pacer.next_send_time(0.0, MDS) == 0.0:
        pacer.on_packet_sent(0.0, MDS)
        sent += 1
        assert sent < 100
    # The initial burst (ten packets) plus about one tick of debt (10 000 bytes,
    # eight more packets) left at once; then the wait is at least a tick, never a
    # sub-millisecond timer.
    assert sent == 10 + 8
    when = pacer.next_send_time(0.0, MDS)
    assert when >= TIMER_GRANULARITY
    # Over a long run the average rate is still the pacing rate.
    now = when
    total = sent * MDS
    while now < 1.0:
        when = pacer.next_send_time(now, MDS)
        if when > now:
            now = when
            continue
        pacer.on_packet_sent(now, MDS)
        total += MDS
    assert total == pytest.approx(rate * 1.0, rel=0.02)


def test_bucket_grows_with_the_rate_up_to_a_cap() -> None:
    pacer = Pacer(MDS, burst_packets=10)
    pacer.set_rate(150_000.0, 0.0)
    assert pacer.capacity == 10 * MDS  # slow: the burst stays ten packets
    pacer.set_rate(10_000_000.0, 0.0)
    assert pacer.capacity == pytest.approx(10_000_000.0 * BURST_INTERVAL)
    pacer.set_rate(1e10, 0.0)
    assert pacer.capacity == MAX_BURST_PACKETS * MDS
    pacer.set_rate(150_000.0, 1.0)
    assert pacer.capacity == 10 * MDS
    assert pacer.tokens <= pacer.capacity
