"""RangeSet: sorted disjoint inclusive ranges (RFC 9000 §13.2.3 ACK ranges)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tquic.paths.ackranges import RangeSet


def values_of(rs: RangeSet) -> set[int]:
    out: set[int] = set()
    for start, end in rs:
        out.update(range(start, end + 1))
    return out


def assert_canonical(rs: RangeSet) -> None:
    """Ranges are sorted, non-empty, disjoint and never adjacent."""
    previous_end: int | None = None
    for start, end in rs:
        assert start <= end
        if previous_end is not None:
            assert start > previous_end + 1
        previous_end = end


def test_in_order_adds_make_one_range() -> None:
    rs = RangeSet()
    for pn in range(100):
        assert rs.add(pn)
    assert list(rs) == [(0, 99)]
    assert len(rs) == 1
    assert rs.largest == 99 and rs.smallest == 0


def test_add_returns_false_for_a_value_already_present() -> None:
    rs = RangeSet([(5, 9)])
    assert not rs.add(7)
    assert not rs.add(5)
    assert rs.add(10)


def test_gap_fill_merges_both_neighbours() -> None:
    rs = RangeSet()
    for pn in (1, 2, 4, 5):
        rs.add(pn)
    assert list(rs) == [(1, 2), (4, 5)]
    rs.add(3)
    assert list(rs) == [(1, 5)]


def test_add_extends_range_on_the_left() -> None:
    rs = RangeSet([(5, 9)])
    rs.add(4)
    assert list(rs) == [(4, 9)]


def test_add_range_merges_every_overlapping_and_adjacent_range() -> None:
    rs = RangeSet([(0, 1), (3, 4), (6, 7), (20, 30)])
    rs.add_range(2, 8)
    assert list(rs) == [(0, 8), (20, 30)]
    rs.add_range(10, 12)
    assert list(rs) == [(0, 8), (10, 12), (20, 30)]


def test_add_range_rejects_an_empty_range() -> None:
    with pytest.raises(ValueError):
        RangeSet().add_range(5, 4)


def test_contains_only_values_in_ranges() -> None:
    rs = RangeSet([(1, 3), (7, 9)])
    assert 1 in rs and 3 in rs and 8 in rs
    assert 0 not in rs and 4 not in rs and 10 not in rs
    assert "1" not in rs


def test_to_ack_ranges_is_largest_first_inclusive() -> None:
    rs = RangeSet([(0, 2), (5, 5), (8, 10)])
    assert rs.to_ack_ranges() == ((8, 10), (5, 5), (0, 2))


def test_to_ack_ranges_omits_the_oldest_ranges_beyond_the_limit() -> None:
    rs = RangeSet()
    for pn in range(0, 200, 2):
        rs.add(pn)
    ranges = rs.to_ack_ranges(max_ranges=32)
    assert len(ranges) == 32
    assert ranges[0] == (198, 198)
    assert ranges[-1] == (136, 136)


def test_bounded_set_drops_oldest_ranges_and_raises_the_floor() -> None:
    rs = RangeSet(max_ranges=4)
    for pn in range(0, 20, 2):  # 10 single-value ranges
        rs.add(pn)
    assert len(rs) == 4
    assert list(rs) == [(12, 12), (14, 14), (16, 16), (18, 18)]
    assert rs.forgotten_below == 11
    # Values below the floor cannot be (re)added: we no longer know if we saw them.
    assert not rs.add(3)
    assert rs.add(13)


def test_remove_below_truncates_the_straddling_range() -> None:
    rs = RangeSet([(0, 5), (8, 12), (20, 25)])
    rs.remove_below(10)
    assert list(rs) == [(10, 12), (20, 25)]
    assert rs.forgotten_below == 10
    rs.remove_below(100)
    assert not rs
    assert rs.largest is None


def test_discard_range_splits_a_range() -> None:
    rs = RangeSet([(0, 20)])
    rs.discard_range(5, 9)
    assert list(rs) == [(0, 4), (10, 20)]
    rs.discard_range(0, 30)
    assert list(rs) == []


def test_missing_in_lists_the_gaps() -> None:
    rs = RangeSet([(2, 4), (8, 9)])
    assert rs.missing_in(0, 12) == [(0, 1), (5, 7), (10, 12)]
    assert rs.missing_in(2, 4) == []
    assert rs.missing_in(3, 8) == [(5, 7)]


def test_first_missing_after_skips_the_covering_range() -> None:
    rs = RangeSet([(0, 5), (7, 9)])
    assert rs.first_missing_after(-1) == 6
    assert rs.first_missing_after(6) == 10
    assert rs.first_missing_after(20) == 21


def test_count_is_the_number_of_values() -> None:
    assert RangeSet([(0, 4), (10, 10)]).count() == 6


def test_max_ranges_must_be_positive() -> None:
    with pytest.raises(ValueError):
        RangeSet(max_ranges=0)


ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 300)),
        st.tuples(st.just("range"), st.integers(0, 300), st.integers(0, 20)),
        st.tuples(st.just("discard"), st.integers(0, 300), st.integers(0, 20)),
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(ops)
def test_rangeset_equals_a_reference_set_under_random_operations(
    operations: list[tuple[object, ...]],
) -> None:
    rs = RangeSet()
    reference: set[int] = set()
    for op in operations:
        if op[0] == "add":
            value = int(op[1])  # type: ignore[call-overload]
            assert rs.add(value) == (value not in reference)
            reference.add(value)
        elif op[0] == "range":
            first = int(op[1])  # type: ignore[call-overload]
            last = first + int(op[2])  # type: ignore[call-overload]
            rs.add_range(first, last)
            reference.update(range(first, last + 1))
        else:
            first = int(op[1])  # type: ignore[call-overload]
            last = first + int(op[2])  # type: ignore[call-overload]
            assert rs.missing_in(first, last) == _gaps(reference, first, last)
            rs.discard_range(first, last)
            reference.difference_update(range(first, last + 1))
        assert_canonical(rs)
    assert values_of(rs) == reference
    assert rs.largest == (max(reference) if reference else None)
    for probe in range(0, 330, 7):
        assert (probe in rs) == (probe in reference)


def _gaps(reference: set[int], first: int, last: int) -> list[tuple[int, int]]:
    gaps: list[tuple[int, int]] = []
    start: int | None = None
    for v in range(first, last + 1):
        if v not in reference:
            if start is None:
                start = v
        elif start is not None:
            gaps.append((start, v - 1))
            start = None
    if start is not None:
        gaps.append((start, last))
    return gaps


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 500), max_size=200), st.integers(1, 8))
def test_bounded_rangeset_keeps_exactly_the_newest_ranges(values: list[int], limit: int) -> None:
    rs = RangeSet(max_ranges=limit)
    unbounded = RangeSet()
    for v in values:
        rs.add(v)
        unbounded.add(v)
        assert len(rs) <= limit
    # Everything kept is true, and everything at or above the floor is kept.
    kept = values_of(rs)
    truth = values_of(unbounded)
    assert kept <= truth
    assert {v for v in truth if v >= rs.forgotten_below} == kept


def test_remove_below_without_raising_the_floor_allows_later_adds() -> None:
    rs = RangeSet([(0, 9)])
    rs.remove_below(10, raise_floor=False)
    assert not rs
    assert rs.add(5)
    assert list(rs) == [(5, 5)]
