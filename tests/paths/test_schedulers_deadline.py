"""deadline: best path first; a copy on another path for what misses its deadline."""

from __future__ import annotations

import pytest
from sched_paths import MDS, make_path

from tquic.paths.recovery import SentPacket
from tquic.paths.schedulers.deadline import RETRY_INTERVAL, DeadlineScheduler
from tquic.paths.schedulers.extended import Reinjection, SchedulerHooks


def sent(pn: int, t: float, ack_eliciting: bool = True) -> SentPacket:
    return SentPacket(pn, t, MDS, ack_eliciting, True)


def test_sends_on_the_fastest_path_with_room() -> None:
    slow, fast = make_path(0, 0.10), make_path(1, 0.02)
    d = DeadlineScheduler()
    assert d.select([slow, fast], 0.0) is fast
    fast.recovery.bytes_in_flight = 10 * MDS
    assert d.select([slow, fast], 0.0) is slow


def test_unacknowledged_packet_is_reinjected_on_another_path_at_its_deadline() -> None:
    p0, p1 = make_path(0, 0.02), make_path(1, 0.05)
    d = DeadlineScheduler(deadline=0.050)
    packet = sent(7, 1.0)
    d.on_packet_sent(p0, packet, 1.0)
    assert d.next_reinjection_time() == pytest.approx(1.050)
    assert d.reinjections([p0, p1], 1.049) == []
    assert d.reinjections([p0, p1], 1.050) == [Reinjection(packet, p0, p1)]
    assert d.reinjected == 1
    # Once only.
    assert d.reinjections([p0, p1], 2.0) == []
    assert d.next_reinjection_time() is None


def test_acknowledged_or_lost_packets_are_not_reinjected() -> None:
    p0, p1 = make_path(0, 0.02), make_path(1, 0.05)
    d = DeadlineScheduler(deadline=0.050)
    a, b, c = sent(1, 0.0), sent(2, 0.0), sent(3, 0.0)
    for packet in (a, b, c):
        d.on_packet_sent(p0, packet, 0.0)
    d.on_packets_acked(p0, [a], 0.03)
    d.on_packets_lost(p0, [b], 0.04)
    assert [r.packet for r in d.reinjections([p0, p1], 0.06)] == [c]


def test_non_ack_eliciting_packets_are_not_tracked() -> None:
    p0 = make_path(0, 0.02)
    d = DeadlineScheduler(deadline=0.05)
    d.on_packet_sent(p0, sent(1, 0.0, ack_eliciting=False), 0.0)
    assert d.tracked == 0 and d.next_reinjection_time() is None


def test_adaptive_deadline_is_rtt_factor_times_srtt_plus_max_ack_delay() -> None:
    p0 = make_path(0, 0.040)
    p0.recovery.peer_max_ack_delay = 0.010
    d = DeadlineScheduler(rtt_factor=1.5)
    assert d.deadline_for(p0) == pytest.approx(1.5 * 0.040 + 0.010)
    d.on_packet_sent(p0, sent(0, 2.0), 2.0)
    assert d.next_reinjection_time() == pytest.approx(2.070)


def test_waits_for_room_on_the_other_path_then_reinjects() -> None:
    p0, p1 = make_path(0, 0.02), make_path(1, 0.05, in_flight=10 * MDS)
    d = DeadlineScheduler(deadline=0.05)
    packet = sent(0, 0.0)
    d.on_packet_sent(p0, packet, 0.0)
    assert d.reinjections([p0, p1], 0.06) == []  # p1 full
    assert d.next_reinjection_time() == pytest.approx(0.06 + RETRY_INTERVAL)
    p1.recovery.bytes_in_flight = 0
    assert d.reinjections([p0, p1], 0.06 + RETRY_INTERVAL) == [Reinjection(packet, p0, p1)]


def test_reinjection_picks_the_fastest_other_path() -> None:
    p0, p1, p2 = make_path(0, 0.02), make_path(1, 0.09), make_path(2, 0.03)
    d = DeadlineScheduler(deadline=0.05)
    d.on_packet_sent(p0, sent(0, 0.0), 0.0)
    (r,) = d.reinjections([p0, p1, p2], 0.05)
    assert r.target is p2


def test_single_path_has_nowhere_to_reinject_and_forgets() -> None:
    p0 = make_path(0, 0.02)
    d = DeadlineScheduler(deadline=0.05)
    d.on_packet_sent(p0, sent(0, 0.0), 0.0)
    assert d.reinjections([p0], 0.1) == []
    assert d.tracked == 0


def test_closed_path_packets_are_forgotten() -> None:
    p0, p1 = make_path(0, 0.02), make_path(1, 0.05)
    d = DeadlineScheduler(deadline=0.05)
    d.on_packet_sent(p0, sent(0, 0.0), 0.0)
    d.on_packet_sent(p1, sent(0, 0.0), 0.0)
    d.on_path_closed(p0)
    (r,) = d.reinjections([p1, make_path(2, 0.03)], 0.05)
    assert r.source is p1


def test_tracking_is_bounded() -> None:
    p0 = make_path(0, 0.02)
    d = DeadlineScheduler(deadline=10.0, max_tracked=100)
    for pn in range(10_000):
        d.on_packet_sent(p0, sent(pn, pn * 1e-4), pn * 1e-4)
    assert d.tracked == 100
    assert d.queued_deadlines <= 2 * 100 + 64


def test_hooks_expose_the_deadline_interface() -> None:
    hooks = SchedulerHooks(DeadlineScheduler(deadline=0.01))
    assert hooks.tracks_packets is True
    p0, p1 = make_path(0, 0.02), make_path(1, 0.05)
    packet = sent(0, 0.0)
    hooks.on_packet_sent(p0, packet, 0.0)
    assert hooks.next_reinjection_time() == pytest.approx(0.01)
    assert hooks.reinjections([p0, p1], 0.02) == [Reinjection(packet, p0, p1)]


@pytest.mark.parametrize("kwargs", [{"deadline": 0.0}, {"deadline": float("nan")},
                                    {"rtt_factor": -1.0}, {"max_tracked": 0}])
def test_bad_parameters_are_refused_by_name(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        DeadlineScheduler(**kwargs)  # type: ignore[arg-type]
