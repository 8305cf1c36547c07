"""LIA (RFC 6356), OLIA (Khalili et al.) and BALIA (Peng et al.): increases and decreases
against hand-computed values, driven through the controller interface."""

from __future__ import annotations

import pytest

from tquic.cc import create_controller
from tquic.cc.base import AckedPacket, LostPacket, RttSample, SentInfo
from tquic.cc.coupled import Balia, CoupledController, CoupledGroup, Lia, Olia
from tquic.cc.coupled_registry import (
    connection_controller_factory,
    is_coupled,
    release_controller,
)
from tquic.cc.newreno import NewReno

MSS = 1200


def in_avoidance(ctrl: CoupledController, cwnd: float, srtt: float) -> CoupledController:
    """Put ``ctrl`` in congestion avoidance with this window and smoothed RTT."""
    ctrl._cwnd = float(cwnd)
    ctrl.ssthresh = int(cwnd)
    ctrl.srtt = srtt
    return ctrl


def ack(ctrl: CoupledController | NewReno, nbytes: int, srtt: float, now: float = 10.0) -> float:
    """One window-limited ACK of ``nbytes``; returns the window change."""
    before = ctrl.congestion_window if isinstance(ctrl, NewReno) else ctrl.cwnd
    ctrl.on_packet_sent(SentInfo(1, nbytes, now - srtt, ctrl.congestion_window, False), now - srtt)
    ctrl.on_packets_acked([AckedPacket(1, nbytes, now - srtt)],
                          RttSample(srtt, srtt, srtt / 2, srtt), 0, now)
    after = ctrl.congestion_window if isinstance(ctrl, NewReno) else ctrl.cwnd
    return after - before


def lose(ctrl: CoupledController, now: float = 20.0) -> None:
    ctrl.on_packets_lost([LostPacket(9, MSS, now - 0.01)], 0, now)


# -- LIA ---------------------------------------------------------------------------------


def test_lia_alpha_rfc6356_equation_2() -> None:
    group = CoupledGroup()
    a = in_avoidance(Lia(MSS, group), 24_000, 0.1)
    in_avoidance(Lia(MSS, group), 12_000, 0.2)
    # total 36000; max(24000/0.01, 12000/0.04) = 2.4e6; sum(cwnd/rtt) = 300000.
    assert isinstance(a, Lia)
    assert a.alpha() == pytest.approx(36_000 * 2.4e6 / 300_000**2)  # 0.96


def test_lia_increase_is_the_coupled_term_when_below_tcp() -> None:
    group = CoupledGroup()
    a = in_avoidance(Lia(MSS, group), 24_000, 0.1)
    b = in_avoidance(Lia(MSS, group), 12_000, 0.2)
    # alpha * 1200 * 1200 / 36000 = 0.96 * 40 = 38.4 on either path
    # (uncoupled would be 60 on a, 120 on b).
    assert ack(a, 1200, 0.1) == pytest.approx(38.4)
    in_avoidance(a, 24_000, 0.1)
    assert ack(b, 1200, 0.2) == pytest.approx(38.4)


def test_lia_increase_is_capped_at_what_tcp_would_do() -> None:
    group = CoupledGroup()
    in_avoidance(Lia(MSS, group), 12_000, 0.01)
    b = in_avoidance(Lia(MSS, group), 120_000, 1.0)
    # alpha = 132000 * 1.2e8 / 1.32e6^2 = 9.09; coupled = 9.09 * 1.44e6 / 132000 = 99.2,
    # uncoupled = 1.44e6 / 120000 = 12 -> 12.
    assert ack(b, 1200, 1.0) == pytest.approx(12.0)


def test_lia_equal_paths_have_alpha_one_over_n() -> None:
    group = CoupledGroup()
    members = [in_avoidance(Lia(MSS, group), 30_000, 0.05) for _ in range(3)]
    assert isinstance(members[0], Lia)
    assert members[0].alpha() == pytest.approx(1 / 3)
    # increase = (1/3) * 1.44e6 / 90000 = 5.333
    assert ack(members[0], 1200, 0.05) == pytest.approx(1.44e6 / 3 / 90_000)


def test_lia_alone_grows_like_newreno() -> None:
    lia = in_avoidance(Lia(MSS), 12_000, 0.05)
    assert ack(lia, 1200, 0.05) == pytest.approx(120.0)  # 1200 * 1200 / 12000
    reno = NewReno(MSS)
    reno._cwnd = 12_000.0
    reno.ssthresh = 12_000
    total = sum(ack(reno, 1200, 0.05) for _ in range(10))  # one window: + 1 MSS
    assert total == 1200


def test_lia_and_olia_halve_on_loss() -> None:
    for cls in (Lia, Olia):
        ctrl = in_avoidance(cls(MSS), 24_000, 0.1)
        lose(ctrl)
        assert ctrl.congestion_window == 12_000


# -- OLIA --------------------------------------------------------------------------------


def olia_pair() -> tuple[Olia, Olia]:
    group = CoupledGroup()
    a, b = Olia(MSS, group), Olia(MSS, group)
    in_avoidance(a, 24_000, 0.1)
    in_avoidance(b, 12_000, 0.1)
    a._acked_total = 100_000  # l_a = 100000 -> l/rtt^2 = 1e7
    b._acked_total = 400_000  # l_b = 400000 -> 4e7: b is the best path, a has max window
    return a, b


def test_olia_alpha_moves_window_from_max_path_to_best_path() -> None:
    a, b = olia_pair()
    assert b.alpha() == pytest.approx(1 / (2 * 1))
    assert a.alpha() == pytest.approx(-1 / (2 * 1))


def test_olia_increase_hand_computed() -> None:
    a, b = olia_pair()
    # rate sum = 240000 + 120000 = 360000.
    # a: 1.44e6 * (2.4e6 / 1.296e11) - 1.44e6 * 0.5 / 24000 = 26.667 - 30 = -3.333
    assert ack(a, 1200, 0.1) == pytest.approx(26.0 + 2 / 3 - 30.0)
    in_avoidance(a, 24_000, 0.1)
    # b: 1.44e6 * (1.2e6 / 1.296e11) + 1.44e6 * 0.5 / 12000 = 13.333 + 60 = 73.333
    assert ack(b, 1200, 0.1) == pytest.approx(13.0 + 1 / 3 + 60.0)


def test_olia_alpha_is_zero_when_the_best_path_has_the_max_window() -> None:
    a, b = olia_pair()
    a._acked_total = 10_000_000  # a is now both best and largest
    assert a.alpha() == 0.0 and b.alpha() == 0.0


def test_olia_inter_loss_bytes_tracks_the_last_two_losses() -> None:
    o = in_avoidance(Olia(MSS), 24_000, 0.1)
    assert isinstance(o, Olia)
    for _ in range(5):
        ack(o, 1200, 0.1)
    assert o.inter_loss_bytes == 6000
    lose(o, now=20.0)
    assert o.inter_loss_bytes == 6000  # 6000 between the losses, 0 since the last
    ack(o, 1200, 0.1, now=30.0)
    lose(o, now=40.0)
    assert o.inter_loss_bytes == 1200


# -- BALIA -------------------------------------------------------------------------------


def balia_pair() -> tuple[Balia, Balia]:
    group = CoupledGroup()
    a, b = Balia(MSS, group), Balia(MSS, group)
    in_avoidance(a, 24_000, 0.1)  # x = 240000
    in_avoidance(b, 12_000, 0.2)  # x = 60000
    return a, b


def test_balia_alpha_is_max_rate_over_own_rate() -> None:
    a, b = balia_pair()
    assert a.alpha() == pytest.approx(1.0)
    assert b.alpha() == pytest.approx(4.0)


def test_balia_increase_hand_computed() -> None:
    a, b = balia_pair()
    # a: 1.44e6 * 240000 / (0.1 * 300000^2) * (2/2) * (5/5) = 38.4
    assert ack(a, 1200, 0.1) == pytest.approx(38.4)
    in_avoidance(a, 24_000, 0.1)
    # b: 1.44e6 * 60000 / (0.2 * 9e10) * (5/2) * (8/5) = 4.8 * 4 = 19.2
    assert ack(b, 1200, 0.2) == pytest.approx(19.2)


def test_balia_decrease_uses_min_alpha_capped_at_1_5() -> None:
    a, b = balia_pair()
    lose(b)  # alpha 4 -> factor 1.5 / 2: 12000 * 0.25 = 3000
    assert b.congestion_window == 3000
    lose(a)  # alpha 1 (computed with b's new window: still the fastest) -> halve
    assert a.congestion_window == 12_000


def test_balia_alone_is_reno() -> None:
    solo = in_avoidance(Balia(MSS), 12_000, 0.05)
    assert ack(solo, 1200, 0.05) == pytest.approx(120.0)
    lose(solo)
    assert solo.congestion_window == 6060  # (12000 + 120) / 2


# -- coupling plumbing ---------------------------------------------------------------------


def test_registered_by_name_each_in_its_own_group() -> None:
    for name, cls in (("lia", Lia), ("olia", Olia), ("balia", Balia)):
        assert is_coupled(name.upper())
        c1, c2 = create_controller(name, MSS), create_controller(name, MSS)
        assert isinstance(c1, cls) and isinstance(c2, cls)
        assert c1.group is not c2.group
    assert not is_coupled("cubic")


def test_connection_factory_shares_one_group_and_release_detaches() -> None:
    factory = connection_controller_factory("lia")
    c1, c2 = factory(MSS), factory(MSS)
    assert isinstance(c1, Lia) and isinstance(c2, Lia)
    assert c1.group is c2.group and len(c1.group) == 2
    release_controller(c2)
    assert list(c1.group) == [c1]
    release_controller(NewReno(MSS))  # uncoupled: nothing to do
    other = connection_controller_factory("lia")(MSS)
    assert isinstance(other, Lia) and other.group is not c1.group


def test_connection_factory_passes_uncoupled_names_through_and_rejects_unknown() -> None:
    assert isinstance(connection_controller_factory("newreno")(MSS), NewReno)
    with pytest.raises(ValueError, match="unknown congestion controller"):
        connection_controller_factory("nope")


def test_paths_without_rtt_are_left_out_of_the_coupling() -> None:
    group = CoupledGroup()
    a = in_avoidance(Lia(MSS, group), 12_000, 0.05)
    Lia(MSS, group)  # a fresh path: no ACK yet, no RTT
    assert ack(a, 1200, 0.05) == pytest.approx(120.0)  # as if alone


def test_slow_start_is_not_coupled() -> None:
    group = CoupledGroup()
    a, b = Lia(MSS, group), Lia(MSS, group)
    b.srtt = 0.05
    b._cwnd = 1_000_000.0
    assert ack(a, 1200, 0.05) == 1200  # slow start: + bytes acked
