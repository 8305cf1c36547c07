"""BBRv3 / BBRv2 state machine against draft-ietf-ccwg-bbr (section names cited)."""

from __future__ import annotations

import itertools
import math

import pytest
from cc_pipe import MDS, Pipe

from tquic.cc import create_controller
from tquic.cc.base import AckedPacket, RttSample, SentInfo
from tquic.cc.bbr3 import BBR2_PARAMS, BBR3_PARAMS, Bbr3, Bbr3State

RATE = 2.5e6  # 20 Mbit/s
RTT = 0.03


def trace(cc: Bbr3, pipe: Pipe, end: float, step: float = 0.002) -> list[tuple[float, Bbr3State]]:
    out: list[tuple[float, Bbr3State]] = []
    t = pipe.now
    while t < end:
        t += step
        pipe.run_until(t)
        if not out or out[-1][1] is not cc.state:
            out.append((t, cc.state))
    return out


def state_of(cc: Bbr3) -> Bbr3State:
    return cc.state  # (a call, so that type narrowing does not outlive the run)


def test_names_and_parameter_sets() -> None:
    assert isinstance(create_controller("bbr", MDS), Bbr3)
    assert create_controller("bbr3", MDS).params is BBR3_PARAMS  # type: ignore[attr-defined]
    bbr2 = create_controller("bbr2", MDS)
    assert isinstance(bbr2, Bbr3) and bbr2.params is BBR2_PARAMS
    # "Startup": 4 ln 2 ~= 2.77 pacing and cwnd gain 2 (v3); 2/ln2 for v2.
    assert BBR3_PARAMS.startup_pacing_gain == pytest.approx(2.77, abs=0.005)
    assert BBR3_PARAMS.startup_cwnd_gain == 2.0
    assert BBR2_PARAMS.startup_pacing_gain == pytest.approx(2 / math.log(2))
    assert BBR3_PARAMS.probe_rtt_interval == 5.0 and BBR3_PARAMS.beta == 0.7
    assert BBR3_PARAMS.loss_thresh == 0.02


def test_startup_exits_after_three_rounds_without_25_percent_growth() -> None:
    cc = Bbr3(MDS, seed=1)
    pipe = Pipe(cc, RATE, RTT)
    plateau_round = None
    t = 0.0
    while cc.state is Bbr3State.STARTUP and t < 3:
        t += 0.001
        pipe.run_until(t)
        if plateau_round is None and cc.max_bw >= 0.99 * RATE:
            plateau_round = cc.round_count
    assert cc.full_bw_reached and cc.full_bw_count == 3
    assert plateau_round is not None and cc.round_count - plateau_round in (3, 4)
    assert cc.state is Bbr3State.DRAIN
    assert cc.pacing_gain == BBR3_PARAMS.drain_pacing_gain
    assert math.isinf(cc.bounds.inflight_hi)  # no loss: no upper bound yet


def test_startup_exits_on_loss_above_threshold_and_sets_inflight_hi() -> None:
    # A fast path (no bandwidth plateau in sight) that loses 1 packet in 10 from pn 300.
    cc = Bbr3(MDS, seed=1)
    pipe = Pipe(cc, 100e6, RTT, drop=lambda pn: pn >= 300 and pn % 10 == 0)
    t = 0.0
    while cc.state is Bbr3State.STARTUP and t < 1.0:
        t += 0.001
        pipe.run_until(t)
    assert cc.state is not Bbr3State.STARTUP and cc.full_bw_reached
    assert cc.full_bw_count < 3  # it left on loss, not on the bandwidth plateau
    assert math.isfinite(cc.bounds.inflight_hi) and cc.bounds.inflight_hi > 0


def test_startup_ignores_loss_below_threshold() -> None:
    cc = Bbr3(MDS, seed=1)
    # One loss per 200 packets: 0.5 % < BBRLossThresh.
    pipe = Pipe(cc, RATE, RTT, drop=lambda pn: pn > 0 and pn % 200 == 0)
    trace(cc, pipe, 0.25, step=0.001)
    assert pipe.lost  # it did lose
    assert cc.state is Bbr3State.STARTUP and math.isinf(cc.bounds.inflight_hi)


def test_probe_bw_phases_cycle_down_cruise_refill_up_down() -> None:
    cc = Bbr3(MDS, seed=3)
    pipe = Pipe(cc, RATE, RTT)
    states = [s for _, s in trace(cc, pipe, 4.8)]
    probe = [s for s in states if s.value.startswith("probe_bw")]
    # DOWN -> CRUISE -> REFILL -> UP -> DOWN, in that order, at least once round.
    order = [
        Bbr3State.PROBE_BW_DOWN,
        Bbr3State.PROBE_BW_CRUISE,
        Bbr3State.PROBE_BW_REFILL,
        Bbr3State.PROBE_BW_UP,
    ]
    # (Drain ends in DOWN, which may turn to CRUISE on the same ACK.)
    first = probe.index(Bbr3State.PROBE_BW_REFILL)
    assert probe[first : first + 5] == [*order[2:], *order[:3]]
    for a, b in itertools.pairwise(probe):
        assert order.index(b) == (order.index(a) + 1) % 4


def test_probe_bw_up_gains_and_cruise_gains() -> None:
    cc = Bbr3(MDS, seed=3)
    pipe = Pipe(cc, RATE, RTT)
    seen: dict[Bbr3State, tuple[float, float]] = {}
    t = 0.0
    while t < 3.0:
        t += 0.002
        pipe.run_until(t)
        seen.setdefault(cc.state, (cc.pacing_gain, cc.cwnd_gain))
    assert seen[Bbr3State.PROBE_BW_UP] == (1.25, 2.25)
    assert seen[Bbr3State.PROBE_BW_DOWN] == (0.9, 2.0)
    assert seen[Bbr3State.PROBE_BW_CRUISE] == (1.0, 2.0)
    assert seen[Bbr3State.PROBE_BW_REFILL] == (1.0, 2.0)


def test_loss_while_probing_up_sets_inflight_hi_and_goes_down() -> None:
    cc = Bbr3(MDS, seed=3)
    burst: set[int] = set()
    pipe = Pipe(cc, RATE, RTT, drop=lambda pn: pn in burst)
    t = 0.0
    while cc.state is not Bbr3State.PROBE_BW_UP and t < 5:
        t += 0.001
        pipe.run_until(t)
    assert cc.state is Bbr3State.PROBE_BW_UP and math.isinf(cc.bounds.inflight_hi)
    # Lose 5 % of the next 200 packets: more than BBRLossThresh of a flight.
    burst.update(range(pipe.next_pn + 20, pipe.next_pn + 220, 20))
    pipe.run_until(t + 0.2)
    assert math.isfinite(cc.bounds.inflight_hi)
    assert state_of(cc) is not Bbr3State.PROBE_BW_UP
    # "BBRHandleInflightTooHigh": never below beta x the target inflight.
    assert cc.bounds.inflight_hi >= 0.7 * min(cc.bw * cc.min_rtt, cc.congestion_window) - MDS


def test_loss_outside_probing_cuts_bw_lo_and_inflight_lo_by_beta_at_most() -> None:
    cc = Bbr3(MDS, seed=3)
    drops: set[int] = set()
    pipe = Pipe(cc, RATE, RTT, drop=lambda pn: pn in drops)
    t = 0.0
    while cc.state is not Bbr3State.PROBE_BW_CRUISE and t < 5:
        t += 0.001
        pipe.run_until(t)
    assert math.isinf(cc.bounds.bw_lo) and math.isinf(cc.bounds.inflight_lo)
    max_bw = cc.max_bw
    drops.add(pipe.next_pn + 5)
    pipe.run_until(t + 3 * RTT)
    assert cc.state is Bbr3State.PROBE_BW_CRUISE
    # "BBRLossLowerBounds": bw_lo = max(bw_latest, beta * bw_lo) with bw_lo from max_bw.
    assert 0.7 * max_bw <= cc.bounds.bw_lo <= max_bw
    assert math.isfinite(cc.bounds.inflight_lo)
    assert cc.congestion_window <= cc.bounds.inflight_lo


def test_probe_rtt_when_min_rtt_is_stale_for_200_ms_and_a_round() -> None:
    cc = Bbr3(MDS, seed=5)
    pipe = Pipe(cc, RATE, RTT)
    pipe.run_until(1.0)
    stale_since = cc.probe_rtt_min_stamp
    pipe.rtt = RTT + 0.005  # the path gets longer: min_rtt is no longer refreshed
    t = 1.0
    entered = left = None
    cwnd_in_probe: list[int] = []
    while t < 6.5:
        t += 0.002
        pipe.run_until(t)
        if cc.state is Bbr3State.PROBE_RTT:
            entered = entered if entered is not None else t
            cwnd_in_probe.append(cc.congestion_window)
        elif entered is not None and left is None:
            left = t
    assert entered is not None and left is not None
    # "BBRProbeRTTInterval": 5 s after the last refresh of the min RTT.
    assert stale_since + 5.0 < entered < stale_since + 5.0 + 2 * RTT
    assert left - entered >= 0.2
    assert left - entered <= 0.2 + 4 * RTT
    bdp = cc.bw * cc.min_rtt
    assert min(cwnd_in_probe) <= 0.5 * bdp + 4 * MDS  # "BBRProbeRTTCwnd": 0.5 x BDP
    assert cc.state is Bbr3State.PROBE_BW_CRUISE  # back to ProbeBW (full_bw_reached)


def test_ecn_ce_above_threshold_ends_startup() -> None:
    cc = Bbr3(MDS, seed=1)
    pipe = Pipe(cc, 100e6, RTT, ce=lambda pn: pn >= 200)
    trace(cc, pipe, 0.5, step=0.001)
    assert cc.full_bw_reached and cc.state is not Bbr3State.STARTUP
    assert math.isfinite(cc.bounds.inflight_hi)


def test_app_limited_samples_do_not_lower_max_bw() -> None:
    cc = Bbr3(MDS, seed=1)
    pipe = Pipe(cc, RATE, RTT)
    pipe.run_until(2.0)
    max_bw = cc.max_bw
    # Application-limited: a trickle, flagged as such.
    now = 2.5
    for i in range(50):
        pn = 10**6 + i
        t = now + i * 0.05
        cc.on_packet_sent(SentInfo(pn, MDS, t, MDS, True), t)
        rtt = RttSample(RTT, RTT, RTT / 2, RTT, True)
        cc.on_packets_acked([AckedPacket(pn, MDS, t)], rtt, 0, t + RTT)
    assert cc.max_bw == max_bw


def test_pacing_rate_is_gain_times_bw_with_one_percent_margin() -> None:
    cc = Bbr3(MDS, seed=1)
    pipe = Pipe(cc, RATE, RTT)
    pipe.run_until(1.5)
    assert cc.pacing_rate == pytest.approx(cc.pacing_gain * cc.bw * 0.99, rel=1e-6)


def test_bbr2_runs_the_same_machine_with_its_gains() -> None:
    cc = Bbr3(MDS, BBR2_PARAMS, seed=3)
    pipe = Pipe(cc, RATE, RTT)
    seen: dict[Bbr3State, float] = {}
    t = 0.0
    while t < 3.0:
        t += 0.002
        pipe.run_until(t)
        seen.setdefault(cc.state, cc.pacing_gain)
    assert seen[Bbr3State.STARTUP] == pytest.approx(2 / math.log(2))
    assert seen[Bbr3State.PROBE_BW_DOWN] == 0.75
    assert pipe.delivered / 3.0 > 0.8 * RATE
