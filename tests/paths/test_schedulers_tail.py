"""minrtt's tail rule: with the end of the data known, a slow path is skipped when the
faster paths deliver everything left before a packet on it would arrive."""

from __future__ import annotations

from sched_paths import MDS, make_path
from test_schedulers_heterogeneous import transfer

from tquic.paths.path import Path
from tquic.paths.schedulers.deadline import DeadlineScheduler
from tquic.paths.schedulers.extended import forward_delay
from tquic.paths.schedulers.minrtt import MinRttScheduler, faster_paths_finish_first


def _fast_full_slow_free() -> tuple[Path, Path]:
    # fast: 20 ms, 10 packets in flight of 10 (full): 12000 B / 0.02 s = 600 kB/s.
    # slow: 200 ms, room.  One-way: 10 ms and 100 ms (srtt - min_rtt / 2).
    fast = make_path(0, 0.020, cwnd=10 * MDS, in_flight=10 * MDS)
    slow = make_path(1, 0.200, cwnd=10 * MDS)
    return fast, slow


def test_forward_delay_counts_the_queue_on_the_sending_side() -> None:
    path = make_path(0, 0.100)
    assert forward_delay(path) == 0.050
    path.recovery.rtt.smoothed_rtt = 0.250  # 150 ms of queue on top of a 100 ms path
    assert forward_delay(path) == 0.200


def test_at_the_tail_the_slow_path_is_skipped_for_the_fast_one() -> None:
    fast, slow = _fast_full_slow_free()
    scheduler = MinRttScheduler()
    # (52_000 + 1200) / 600_000 + 0.010 = 98.7 ms < 100 ms on the slow path: wait.
    scheduler.set_remaining(52_000)
    assert scheduler.select([fast, slow], 0.0) is fast
    assert scheduler.tail_waits == 1
    # (54_000 + 1200) / 600_000 + 0.010 = 102 ms: the slow path delivers first.
    scheduler.set_remaining(54_000)
    assert scheduler.select([fast, slow], 0.0) is slow


def test_without_a_known_end_or_in_the_bulk_the_slow_path_is_used() -> None:
    fast, slow = _fast_full_slow_free()
    scheduler = MinRttScheduler()
    assert scheduler.select([fast, slow], 0.0) is slow  # a streaming sender: None
    scheduler.set_remaining(10_000_000)
    assert scheduler.select([fast, slow], 0.0) is slow
    assert scheduler.tail_waits == 0


def test_a_fast_path_in_pto_does_not_count_as_able_to_finish() -> None:
    fast, slow = _fast_full_slow_free()
    assert faster_paths_finish_first(slow, [fast, slow], 1200)
    fast.recovery.pto_count = 1  # suspect: it may be dead
    assert not faster_paths_finish_first(slow, [fast, slow], 1200)


class TailMinRtt(MinRttScheduler):
    """The transfer helper tells the backlog; all of it is the end of the data here."""

    def set_send_state(self, backlog_bytes: int | None, send_window: int | None) -> None:
        self.set_remaining(backlog_bytes)


class TailDeadline(DeadlineScheduler):
    def set_send_state(self, backlog_bytes: int | None, send_window: int | None) -> None:
        self.set_remaining(backlog_bytes)


def test_a_short_transfer_ends_sooner_with_the_tail_rule() -> None:
    rtts = (0.020, 0.400)
    plain_done, plain_counts = transfer(MinRttScheduler(), rtts, 10, 60)
    tail_done, tail_counts = transfer(TailMinRtt(), rtts, 10, 60)
    deadline_done, deadline_counts = transfer(TailDeadline(), rtts, 10, 60)
    # Plain min-RTT spills 10 packets onto the 400 ms path: the last lands after 200 ms.
    assert plain_counts[1] >= 10 and plain_done >= 0.2
    # With the tail rule the fast path carries all 60: six 20 ms rounds.
    assert tail_counts[1] == 0 and tail_done < 0.12
    assert deadline_counts[1] == 0 and deadline_done < 0.12


def test_a_long_transfer_still_uses_both_paths() -> None:
    _, counts = transfer(TailMinRtt(), (0.020, 0.060), 10, 2000)
    assert counts[1] > 300 and counts[0] > counts[1]
