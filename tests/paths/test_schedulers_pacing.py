"""A path whose pacer holds packets back is unavailable at this instant (RFC 9002 §7.7).

Every built-in scheduler is ``pacing_aware``: it picks another path that can send
now, or -- when none can -- returns the path whose pacer frees first, which
tells the engine to wait for it.
"""

from __future__ import annotations

import pytest
from sched_paths import make_path

from tquic.paths.path import Path
from tquic.paths.schedulers import create_scheduler
from tquic.paths.schedulers.extended import SchedulerHooks, paced_until, ready, wait_for
from tquic.paths.schedulers.minrtt import MinRttScheduler

NOW = 10.0
BUILTINS = ("minrtt", "roundrobin", "weighted", "blest", "ecf", "redundant", "deadline")


def _pace(path: Path, rate: float, debt_packets: int) -> None:
    """Give the path's pacer ``rate`` bytes/s and spend ``debt_packets`` datagrams of
    tokens at NOW, so that it holds the next datagram back for a while."""
    pacer = path.recovery.pacer
    pacer.set_rate(rate, NOW)
    for _ in range(debt_packets):
        pacer.on_packet_sent(NOW, path.max_datagram_size)


def test_a_path_with_window_room_but_a_held_pacer_is_not_ready() -> None:
    path = make_path(0, 0.020)
    assert ready(path, NOW)
    _pace(path, 100_000.0, 20)
    assert path.recovery.can_send(path.max_datagram_size)  # the window has room
    assert paced_until(path, NOW) > NOW
    assert not ready(path, NOW)
    # Once the pacer has earned the tokens back the path is ready again.
    assert ready(path, paced_until(path, NOW) + 1e-6)


@pytest.mark.parametrize("name", BUILTINS)
def test_every_builtin_sends_on_another_path_while_the_fast_one_is_paced(name: str) -> None:
    fast, slow = make_path(0, 0.020), make_path(1, 0.060)
    _pace(fast, 100_000.0, 20)
    scheduler = create_scheduler(name)
    assert SchedulerHooks(scheduler).pacing_aware
    assert scheduler.select([fast, slow], NOW) is slow


@pytest.mark.parametrize("name", BUILTINS)
def test_with_every_path_paced_the_scheduler_waits_for_the_pacer_that_frees_first(
        name: str) -> None:
    fast, slow = make_path(0, 0.020), make_path(1, 0.060)
    _pace(fast, 100_000.0, 20)  # ~0.2 s of debt
    _pace(slow, 100_000.0, 11)  # a few ms
    assert paced_until(slow, NOW) < paced_until(fast, NOW)
    assert wait_for([fast, slow], NOW) is slow
    assert create_scheduler(name).select([fast, slow], NOW) is slow


def test_minrtt_returns_to_the_fast_path_when_its_pacer_releases_it() -> None:
    fast, slow = make_path(0, 0.020), make_path(1, 0.060)
    _pace(fast, 100_000.0, 12)
    scheduler = MinRttScheduler()
    assert scheduler.select([fast, slow], NOW) is slow
    later = paced_until(fast, NOW)
    assert scheduler.select([fast, slow], later) is fast


def test_a_select_only_scheduler_is_not_pacing_aware() -> None:
    class Mine:
        name = "mine"

        def select(self, paths: list[Path], now: float) -> Path | None:
            return paths[0]

    assert not SchedulerHooks(Mine()).pacing_aware
