"""roundrobin, weighted and redundant: choices in crafted situations; the registry."""

from __future__ import annotations

import pytest
from sched_paths import MDS, make_path

from tquic.paths.schedulers import available_schedulers, create_scheduler
from tquic.paths.schedulers.builtin import BUILTIN_SCHEDULERS
from tquic.paths.schedulers.extended import SchedulerHooks
from tquic.paths.schedulers.minrtt import MinRttScheduler
from tquic.paths.schedulers.redundant import RedundantScheduler
from tquic.paths.schedulers.roundrobin import RoundRobinScheduler
from tquic.paths.schedulers.weighted import WeightedScheduler


def test_every_builtin_is_registered_by_name() -> None:
    names = available_schedulers()
    for name, cls in BUILTIN_SCHEDULERS.items():
        assert name in names
        scheduler = create_scheduler(name.upper())
        assert isinstance(scheduler, cls)
        assert scheduler.name == name


def test_no_paths_gives_none_and_one_path_is_always_chosen() -> None:
    lone = make_path(0, 0.05, in_flight=10 * MDS)  # window full: the engine waits on it
    for name in BUILTIN_SCHEDULERS:
        scheduler = create_scheduler(name)
        assert scheduler.select([], 0.0) is None
        assert scheduler.select([lone], 0.0) is lone


def test_roundrobin_cycles_in_path_id_order() -> None:
    paths = [make_path(2, 0.01), make_path(0, 0.30), make_path(1, 0.05)]
    rr = RoundRobinScheduler()
    ids = [rr.select(paths, 0.0).path_id for _ in range(7)]  # type: ignore[union-attr]
    assert ids == [0, 1, 2, 0, 1, 2, 0]


def test_roundrobin_skips_a_path_whose_window_is_full() -> None:
    full = make_path(1, 0.01, in_flight=10 * MDS)
    paths = [make_path(0, 0.05), full, make_path(2, 0.05)]
    rr = RoundRobinScheduler()
    ids = [rr.select(paths, 0.0).path_id for _ in range(4)]  # type: ignore[union-attr]
    assert ids == [0, 2, 0, 2]


def test_roundrobin_with_every_window_full_waits_on_the_fastest() -> None:
    paths = [make_path(0, 0.05, in_flight=12000), make_path(1, 0.02, in_flight=12000)]
    assert RoundRobinScheduler().select(paths, 0.0) is paths[1]


def test_roundrobin_ignores_unvalidated_paths_while_a_validated_one_exists() -> None:
    paths = [make_path(0, 0.05), make_path(1, 0.01, validated=False)]
    rr = RoundRobinScheduler()
    assert {rr.select(paths, 0.0).path_id for _ in range(4)} == {0}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("weights", "expected"),
    [({0: 3, 1: 1}, {0: 750, 1: 250}), ({0: 5, 1: 3, 2: 2}, {0: 500, 1: 300, 2: 200}),
     ({0: 1, 1: 1}, {0: 500, 1: 500})],
)
def test_weighted_proportions_over_1000_selections_are_exact(
        weights: dict[int, float], expected: dict[int, int]) -> None:
    paths = [make_path(i, 0.02 * (i + 1)) for i in range(len(weights))]
    w = WeightedScheduler(weights)
    counts = dict.fromkeys(weights, 0)
    for _ in range(1000):
        counts[w.select(paths, 0.0).path_id] += 1  # type: ignore[union-attr]
    assert counts == expected


def test_weighted_is_smooth_not_bursty() -> None:
    paths = [make_path(0, 0.02), make_path(1, 0.02)]
    w = WeightedScheduler({0: 3, 1: 1})
    ids = [w.select(paths, 0.0).path_id for _ in range(8)]  # type: ignore[union-attr]
    assert ids == [0, 0, 1, 0, 0, 0, 1, 0]


def test_weighted_zero_weight_path_is_a_backup() -> None:
    main, backup = make_path(0, 0.05), make_path(1, 0.01)
    w = WeightedScheduler({0: 1, 1: 0})
    assert all(w.select([main, backup], 0.0) is main for _ in range(10))
    main.recovery.bytes_in_flight = 10 * MDS  # main's window is full: the backup carries
    assert w.select([main, backup], 0.0) is backup


def test_weighted_unknown_path_gets_default_weight_and_weights_can_change() -> None:
    paths = [make_path(0, 0.02), make_path(1, 0.02)]
    w = WeightedScheduler({0: 1}, default_weight=3)
    counts = {0: 0, 1: 0}
    for _ in range(400):
        counts[w.select(paths, 0.0).path_id] += 1  # type: ignore[union-attr]
    assert counts == {0: 100, 1: 300}
    w.set_weight(1, 1)
    counts = {0: 0, 1: 0}
    for _ in range(400):
        counts[w.select(paths, 0.0).path_id] += 1  # type: ignore[union-attr]
    assert abs(counts[0] - counts[1]) <= 4


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_weighted_rejects_bad_weights_naming_the_path(bad: float) -> None:
    with pytest.raises(ValueError, match=r"weights\[2\]"):
        WeightedScheduler({2: bad})


def test_redundant_returns_every_usable_path_fastest_first() -> None:
    slow, fast, mid = make_path(0, 0.20), make_path(1, 0.01), make_path(2, 0.05)
    paths = [slow, fast, mid]
    chosen = RedundantScheduler().select_many(paths, 0.0)
    assert chosen[0] is fast
    assert set(map(id, chosen)) == set(map(id, paths))
    assert RedundantScheduler().select(paths, 0.0) is fast


def test_redundant_never_copies_onto_a_full_window_or_an_unvalidated_path() -> None:
    a, full = make_path(0, 0.02), make_path(1, 0.01, in_flight=10 * MDS)
    unvalidated = make_path(2, 0.03, validated=False)
    assert RedundantScheduler().select_many([a, full, unvalidated], 0.0) == [a]
    a.recovery.bytes_in_flight = 10 * MDS
    # Every window full: only the fastest, on which the engine waits.
    assert RedundantScheduler().select_many([a, full], 0.0) == [full]


def test_hooks_give_defaults_to_a_select_only_scheduler() -> None:
    paths = [make_path(0, 0.05), make_path(1, 0.01)]
    hooks = SchedulerHooks(MinRttScheduler())
    assert hooks.select_many(paths, 0.0) == [paths[1]]
    assert hooks.reinjections(paths, 0.0) == []
    assert hooks.next_reinjection_time() is None
    assert hooks.tracks_packets is False
    hooks.set_send_state(1000, 2000)  # accepted and ignored
    redundant = SchedulerHooks(RedundantScheduler())
    assert len(redundant.select_many(paths, 0.0)) == 2
