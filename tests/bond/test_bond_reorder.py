"""The receiver's reorder buffer: in-order release, bounded wait, counters (tquic.bond.reorder)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tquic.bond.reorder import ReorderBuffer, adaptive_bound


def _buffer(bound: float = 0.05, **kw: int) -> tuple[ReorderBuffer, list[bytes]]:
    out: list[bytes] = []
    return ReorderBuffer(out.append, bound=bound, **kw), out


def p(n: int) -> bytes:
    return n.to_bytes(4, "big")


def test_in_order_packets_pass_at_once() -> None:
    buf, out = _buffer()
    for n in range(5):
        buf.push(100 + n, p(n), 0.0)
    assert out == [p(n) for n in range(5)]
    s = buf.stats()
    assert (s.in_order, s.held, s.lost) == (5, 0, 0)
    assert buf.next_deadline() is None


def test_a_swapped_pair_is_released_in_order_and_counted_held() -> None:
    buf, out = _buffer()
    buf.push(0, p(0), 0.0)
    buf.push(2, p(2), 0.001)
    buf.push(3, p(3), 0.002)
    assert out == [p(0)]
    assert buf.next_deadline() == pytest.approx(0.051)
    buf.push(1, p(1), 0.010)
    assert out == [p(0), p(1), p(2), p(3)]
    s = buf.stats()
    assert s.held == 2 and s.holding == 0 and s.lost == 0
    # Waited 9 and 8 ms: the 10 ms bucket of the added-delay histogram.
    assert s.delay_histogram[3] == 2


def test_a_gap_is_skipped_after_the_bound_and_a_late_packet_still_goes_through() -> None:
    buf, out = _buffer(bound=0.02)
    buf.push(0, p(0), 0.0)
    buf.push(2, p(2), 0.005)
    buf.expire(0.024)
    assert out == [p(0)]  # not yet: 19 ms of 20
    buf.expire(0.0251)
    assert out == [p(0), p(2)]
    assert buf.stats().lost == 1
    buf.push(1, p(1), 0.03)  # the "lost" packet arrives after all
    assert out[-1] == p(1)
    assert buf.stats().late == 1


def test_pass_through_when_bound_is_zero_and_switching_off_flushes() -> None:
    buf, out = _buffer(bound=0.05)
    buf.push(0, p(0), 0.0)
    buf.push(3, p(3), 0.0)
    buf.push(2, p(2), 0.0)
    buf.set_bound(0.0, 0.001)  # one path carries everything now
    assert out == [p(0), p(2), p(3)]
    buf.push(5, p(5), 0.002)
    assert out[-1] == p(5)  # no wait at all
    assert buf.stats().holding == 0


def test_sequence_numbers_wrap() -> None:
    buf, out = _buffer()
    start = 2**32 - 2
    buf.push(start, p(0), 0.0)
    buf.push(0, p(2), 0.0)  # 2**32 wraps to 0
    buf.push(start + 1, p(1), 0.0)
    buf.push(1, p(3), 0.0)
    assert out == [p(0), p(1), p(2), p(3)]


def test_size_bound_releases_the_oldest_gap() -> None:
    buf, out = _buffer(bound=10.0, max_held=4)
    buf.push(0, p(0), 0.0)
    for n in range(2, 8):  # 1 never arrives; held would grow past 4
        buf.push(n, p(n), 0.0)
    assert buf.stats().holding <= 4
    assert out[:2] == [p(0), p(2)]
    assert buf.stats().lost == 1


def test_duplicates_are_dropped() -> None:
    buf, _out = _buffer()
    buf.push(0, p(0), 0.0)
    buf.push(2, p(2), 0.0)
    buf.push(2, p(2), 0.0)
    assert buf.stats().duplicates == 1


def test_adaptive_bound_follows_the_rtt_spread() -> None:
    assert adaptive_bound([0.03]) == 0.0  # one path: pass-through
    assert adaptive_bound([]) == 0.0
    assert adaptive_bound([0.020, 0.050]) == pytest.approx(0.032)
    assert adaptive_bound([0.02, 0.9]) == 0.1  # capped at max_wait
    with pytest.raises(ValueError):
        ReorderBuffer(lambda _: None, max_held=0)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 60), st.randoms(use_true_random=False),
       st.floats(0.0, 0.3))
def test_any_shuffle_within_the_bound_comes_out_in_order(start: int, n: int,
                                                         rng: random.Random,
                                                         drop: float) -> None:
    """Packets displaced by at most 8 positions, all arriving within the bound, leave in
    order; with some dropped, what is released is still increasing and nothing is lost
    twice."""
    order = list(range(n))
    for i in range(n):  # local displacement, as two paths of different delay produce
        j = min(n - 1, i + rng.randrange(0, 8))
        order[i], order[j] = order[j], order[i]
    kept = [k for k in order if k == 0 or rng.random() >= drop]
    buf, out = _buffer(bound=1.0)
    for t, k in enumerate(kept):
        buf.push((start + k) % 2**32, p(k), t * 0.001)
    buf.expire(100.0)
    got = [int.from_bytes(x, "big") for x in out]
    assert sorted(got) == sorted(kept)
    s = buf.stats()
    if len(kept) == n:
        assert got == sorted(got) or s.late > 0
    assert s.holding == 0
