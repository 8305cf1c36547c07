"""RangeSet: a sorted set of integers stored as disjoint inclusive ranges.

Used for received packet numbers (ACK frames, duplicate detection) and for
byte ranges of stream data (acknowledged / lost).  Ranges are kept in two
parallel sorted lists so that lookups are a single ``bisect``; the common
case -- a value one past the largest -- is an O(1) append.

A set can be bounded (``max_ranges``): when it grows beyond the bound the
oldest (smallest) ranges are dropped and ``forgotten_below`` rises so the
owner knows which values it can no longer vouch for (RFC 9000 §12.3: keep a
minimum packet number below which packets are dropped; §13.2.3: a receiver
limits the ACK Ranges it remembers).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator


class RangeSet:
    """Sorted disjoint inclusive ranges ``[start, end]``; adjacent ranges merge."""

    __slots__ = ("_ends", "_floor", "_max_ranges", "_starts")

    def __init__(
        self,
        ranges: tuple[tuple[int, int], ...] | list[tuple[int, int]] = (),
        *,
        max_ranges: int | None = None,
    ) -> None:
        if max_ranges is not None and max_ranges < 1:
            raise ValueError(f"max_ranges must be at least 1, got {max_ranges}")
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._max_ranges = max_ranges
        self._floor = 0  # every value below this has been forgotten (or never tracked)
        for first, last in ranges:
            self.add_range(first, last)

    # -- queries ------------------------------------------------------------

    def __len__(self) -> int:
        """Number of disjoint ranges (not number of values)."""
        return len(self._starts)

    def __bool__(self) -> bool:
        return bool(self._starts)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        """Ranges in ascending order as inclusive ``(start, end)`` pairs."""
        return zip(list(self._starts), list(self._ends), strict=True)

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, int):
            return False
        return self.contains(value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RangeSet):
            return NotImplemented
        return self._starts == other._starts and self._ends == other._ends

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"RangeSet({list(self)!r})"

    def contains(self, value: int) -> bool:
        i = bisect_right(self._starts, value)
        return i > 0 and self._ends[i - 1] >= value

    @property
    def largest(self) -> int | None:
        return self._ends[-1] if self._ends else None

    @property
    def smallest(self) -> int | None:
        return self._starts[0] if self._starts else None

    @property
    def forgotten_below(self) -> int:
        """Values below this were dropped (``remove_below`` or the size bound)."""
        return self._floor

    @property
    def max_ranges(self) -> int | None:
        return self._max_ranges

    def count(self) -> int:
        """Number of values in the set (O(number of ranges))."""
        return sum(self._ends) - sum(self._starts) + len(self._starts)

    def first(self) -> tuple[int, int] | None:
        """The smallest range, or None when empty."""
        if not self._starts:
            return None
        return self._starts[0], self._ends[0]

    def range_containing(self, value: int) -> tuple[int, int] | None:
        i = bisect_right(self._starts, value)
        if i > 0 and self._ends[i - 1] >= value:
            return self._starts[i - 1], self._ends[i - 1]
        return None

    def first_missing_after(self, value: int) -> int:
        """Smallest integer ``> value`` that is not in the set."""
        candidate = value + 1
        i = bisect_right(self._starts, candidate)
        if i > 0 and self._ends[i - 1] >= candidate:
            return self._ends[i - 1] + 1
        return candidate

    def missing_in(self, first: int, last: int) -> list[tuple[int, int]]:
        """The parts of ``[first, last]`` not covered by the set, ascending."""
        out: list[tuple[int, int]] = []
        if first > last:
            return out
        starts, ends = self._starts, self._ends
        i = bisect_left(ends, first)  # first range that ends at or after `first`
        cursor = first
        n = len(starts)
        while i < n and starts[i] <= last:
            if starts[i] > cursor:
                out.append((cursor, starts[i] - 1))
            cursor = max(cursor, ends[i] + 1)
            if cursor > last:
                return out
            i += 1
        if cursor <= last:
            out.append((cursor, last))
        return out

    def to_ack_ranges(self, max_ranges: int = 32) -> tuple[tuple[int, int], ...]:
        """Inclusive ``(smallest, largest)`` pairs, largest range first (AckFrame.ranges).

        RFC 9000 §13.2.3: when not every range fits, the oldest (smallest) are
        omitted, so the ``max_ranges`` largest ranges are returned.
        """
        if max_ranges <= 0:
            return ()
        starts = self._starts[-max_ranges:]
        ends = self._ends[-max_ranges:]
        starts.reverse()
        ends.reverse()
        return tuple(zip(starts, ends, strict=True))

    # -- updates ------------------------------------------------------------

    def add(self, value: int) -> bool:
        """Add one value; True if it was new, False if present or forgotten."""
        ends = self._ends
        if ends:
            last = ends[-1]
            if value == last + 1:
                # In-order arrival: the overwhelmingly common case.
                ends[-1] = value
                return True
            if value > last:
                self._starts.append(value)
                ends.append(value)
                if self._max_ranges is not None and len(ends) > self._max_ranges:
                    self._trim(self._max_ranges)
                return True
        if value < self._floor:
            return False
        starts = self._starts
        i = bisect_right(starts, value)  # ranges [0, i) start at or below value
        if i and ends[i - 1] >= value:
            return False
        merge_left = i > 0 and ends[i - 1] == value - 1
        merge_right = i < len(starts) and starts[i] == value + 1
        if merge_left and merge_right:
            ends[i - 1] = ends[i]
            del starts[i]
            del ends[i]
        elif merge_left:
            ends[i - 1] = value
        elif merge_right:
            starts[i] = value
        else:
            starts.insert(i, value)
            ends.insert(i, value)
            if self._max_ranges is not None and len(ends) > self._max_ranges:
                self._trim(self._max_ranges)
        return True

    def add_range(self, first: int, last: int) -> None:
        """Add every value in ``[first, last]`` (inclusive), merging neighbours."""
        if first > last:
            raise ValueError(f"empty range [{first}, {last}]")
        first = max(first, self._floor)
        if first > last:
            return
        starts, ends = self._starts, self._ends
        if not ends or first > ends[-1] + 1:
            starts.append(first)
            ends.append(last)
        else:
            # Ranges [i, j) overlap or touch [first, last].
            i = bisect_left(ends, first - 1)
            j = bisect_right(starts, last + 1)
            if i < j:
                first = min(first, starts[i])
                last = max(last, ends[j - 1])
            starts[i:j] = [first]
            ends[i:j] = [last]
        if self._max_ranges is not None and len(ends) > self._max_ranges:
            self._trim(self._max_ranges)

    def discard_range(self, first: int, last: int) -> None:
        """Remove every value in ``[first, last]`` (does not move the floor)."""
        if first > last:
            return
        starts, ends = self._starts, self._ends
        i = bisect_left(ends, first)  # first range ending at or after `first`
        j = bisect_right(starts, last)  # ranges [i, j) intersect [first, last]
        if i >= j:
            return
        keep_s: list[int] = []
        keep_e: list[int] = []
        if starts[i] < first:
            keep_s.append(starts[i])
            keep_e.append(first - 1)
        if ends[j - 1] > last:
            keep_s.append(last + 1)
            keep_e.append(ends[j - 1])
        starts[i:j] = keep_s
        ends[i:j] = keep_e

    def remove_below(self, value: int, *, raise_floor: bool = True) -> None:
        """Remove every value ``< value`` (RFC 9000 §13.2.4 ACK-of-ACK pruning).

        With ``raise_floor`` the values are forgotten for good: later ``add``s
        below ``value`` are refused.  Without it they may be added again.
        """
        if raise_floor:
            if value <= self._floor:
                return
            self._floor = value
        starts, ends = self._starts, self._ends
        i = bisect_left(ends, value)  # ranges [0, i) end below value
        if i:
            del starts[:i]
            del ends[:i]
        if starts and starts[0] < value:
            starts[0] = value

    def clear(self) -> None:
        self._starts.clear()
        self._ends.clear()

    def _trim(self, max_ranges: int) -> None:
        # RFC 9000 §13.2.3: drop the oldest ranges; remember where we stopped
        # tracking so that values below are treated as already seen.
        excess = len(self._ends) - max_ranges
        self._floor = max(self._floor, self._ends[excess - 1] + 1)
        del self._starts[:excess]
        del self._ends[:excess]
