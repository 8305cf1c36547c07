"""``still_selects``: after a packet on the path the scheduler just chose, may the send
loop keep that path without asking ``select`` again?  minrtt answers True only where
``select`` would return the same path, and False whenever anything else changed (other
paths, another instant, a full window, a held pacer, an answer that was a wait)."""

from __future__ import annotations

from sched_paths import MDS, make_path

from tquic.paths.path import Path
from tquic.paths.schedulers import create_scheduler
from tquic.paths.schedulers.extended import SchedulerBase, SchedulerHooks
from tquic.paths.schedulers.minrtt import MinRttScheduler

NOW = 10.0


def _send_one(path: Path) -> None:
    """What a packet does to the state the scheduler reads: bytes in flight and the
    pacer's tokens."""
    path.recovery.bytes_in_flight += MDS
    path.recovery.pacer.on_packet_sent(NOW, MDS)


def test_minrtt_keeps_the_ready_path_exactly_while_select_would_return_it() -> None:
    fast, slow = make_path(0, 0.020, cwnd=6 * MDS), make_path(1, 0.060, cwnd=6 * MDS)
    paths = [fast, slow]
    scheduler = MinRttScheduler()
    assert scheduler.select(paths, NOW) is fast
    agreed = 0
    for _ in range(10):
        _send_one(fast)
        kept = scheduler.still_selects(paths, NOW, fast)
        fresh = MinRttScheduler().select(paths, NOW)  # the answer of a full choice
        assert kept == (fresh is fast)
        if not kept:
            break
        agreed += 1
    # The window holds six datagrams: five more after the first choice, then full.
    assert agreed == 5
    assert not fast.recovery.can_send(MDS)
    assert scheduler.select(paths, NOW) is slow


def test_minrtt_answers_false_for_other_paths_another_instant_or_a_paced_path() -> None:
    fast, slow = make_path(0, 0.020), make_path(1, 0.060)
    paths = [fast, slow]
    scheduler = MinRttScheduler()
    assert scheduler.select(paths, NOW) is fast
    assert scheduler.still_selects(paths, NOW, fast)
    assert not scheduler.still_selects(list(paths), NOW, fast)  # another candidate list
    assert not scheduler.still_selects(paths, NOW + 0.001, fast)  # another instant
    assert not scheduler.still_selects(paths, NOW, slow)  # not its last answer
    pacer = fast.recovery.pacer
    pacer.set_rate(100_000.0, NOW)
    for _ in range(20):
        pacer.on_packet_sent(NOW, MDS)
    assert not scheduler.still_selects(paths, NOW, fast)  # its pacer holds it back now


def test_minrtt_never_keeps_a_path_it_returned_to_wait_for() -> None:
    fast, slow = make_path(0, 0.020, in_flight=10 * MDS), make_path(1, 0.060, in_flight=10 * MDS)
    paths = [fast, slow]
    scheduler = MinRttScheduler()
    assert scheduler.select(paths, NOW) is fast  # every window full: wait for the fastest
    fast.recovery.bytes_in_flight = 0  # whatever happens next, select must be asked
    assert not scheduler.still_selects(paths, NOW, fast)


def test_the_default_always_asks_select_again() -> None:
    class Fixed(SchedulerBase):
        def select(self, paths: list[Path], now: float) -> Path | None:  # type: ignore[override]
            return paths[0]

    path = make_path(0, 0.020)
    hooks = SchedulerHooks(Fixed())
    assert not hooks.still_selects([path, make_path(1, 0.030)], NOW, path)
    assert hooks.picks_one
    # A scheduler of its own select_many is asked through it (redundant copies).
    assert not SchedulerHooks(create_scheduler("redundant")).picks_one
