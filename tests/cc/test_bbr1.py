"""BBRv1 state machine against draft-cardwell-iccrg-bbr-congestion-control-00."""

from __future__ import annotations

import math

import pytest
from cc_pipe import MDS, Pipe

from tquic.cc import create_controller
from tquic.cc.bbr1 import HIGH_GAIN, PACING_GAIN_CYCLE, Bbr1, Bbr1State
from tquic.cc.bbr_common import send_quantum

RATE = 2.5e6  # 20 Mbit/s
RTT = 0.03


def run(cc: Bbr1, end: float, step: float = 0.005) -> list[tuple[float, Bbr1State, float, int]]:
    pipe = Pipe(cc, RATE, RTT)
    trace = []
    t = 0.0
    while t < end:
        t += step
        pipe.run_until(t)
        trace.append((t, cc.state, cc.pacing_gain, cc.congestion_window))
    return trace


def test_registered_as_bbr1() -> None:
    assert isinstance(create_controller("bbr1", MDS), Bbr1)


def test_startup_uses_high_gain_for_pacing_and_cwnd() -> None:
    cc = Bbr1(MDS, seed=1)
    assert cc.state is Bbr1State.STARTUP
    assert cc.pacing_gain == cc.cwnd_gain == pytest.approx(2 / math.log(2))


def test_startup_ends_after_three_rounds_without_25_percent_growth() -> None:
    cc = Bbr1(MDS, seed=1)
    pipe = Pipe(cc, RATE, RTT)
    rounds_at_plateau = None
    t = 0.0
    while cc.state is Bbr1State.STARTUP and t < 3:
        t += 0.001
        pipe.run_until(t)
        if rounds_at_plateau is None and cc.btlbw >= 0.99 * RATE:
            rounds_at_plateau = cc.round_count
    assert cc.filled_pipe and cc.full_bw_count == 3
    assert rounds_at_plateau is not None
    # Leaves within the three (or four, counting the round that set full_bw) rounds.
    assert cc.round_count - rounds_at_plateau in (3, 4)
    assert cc.state is Bbr1State.DRAIN
    assert cc.pacing_gain == pytest.approx(1 / HIGH_GAIN)


def test_drain_then_probe_bw_at_twice_bdp() -> None:
    cc = Bbr1(MDS, seed=1)
    trace = run(cc, 3.0)
    states = [s for _, s, _, _ in trace]
    assert states.index(Bbr1State.DRAIN) < states.index(Bbr1State.PROBE_BW)
    assert cc.btlbw == pytest.approx(RATE, rel=0.02)
    bdp = cc.btlbw * cc.rtprop
    # cwnd = 2 x BDP plus three send quanta.
    quanta = 3 * send_quantum(cc.pacing_rate or 0.0, MDS)
    assert cc.target_cwnd == pytest.approx(2 * bdp + quanta, rel=0.01)
    # pacing_rate = pacing_gain x BtlBw, set directly.
    assert cc.pacing_rate == pytest.approx(cc.pacing_gain * cc.btlbw)


def test_probe_bw_cycles_through_the_eight_gains() -> None:
    cc = Bbr1(MDS, seed=2)
    trace = run(cc, 4.0, step=0.002)
    gains: list[float] = []
    for _, state, gain, _ in trace:
        if state is Bbr1State.PROBE_BW and (not gains or gains[-1] != gain):
            gains.append(gain)
    # Each 1.25 phase is followed by 0.75 and then gain 1 (the six 1.0 phases merge).
    assert 1.25 in gains and 0.75 in gains
    for i, g in enumerate(gains[:-2]):
        if g == 1.25:
            assert gains[i + 1] == 0.75 and gains[i + 2] == 1.0
    assert set(gains) == set(PACING_GAIN_CYCLE)


def test_probe_rtt_after_ten_seconds_at_four_packets_for_200_ms() -> None:
    cc = Bbr1(MDS, seed=1)
    trace = run(cc, 11.5, step=0.002)
    in_probe = [(t, cwnd) for t, s, _, cwnd in trace if s is Bbr1State.PROBE_RTT]
    assert in_probe, "never entered PROBE_RTT"
    start, end = in_probe[0][0], in_probe[-1][0]
    assert start >= 10.0
    assert end - start >= 0.2 - 0.004
    assert end - start < 0.2 + 3 * RTT
    assert min(cwnd for _, cwnd in in_probe) == 4 * MDS
    assert cc.state is Bbr1State.PROBE_BW  # back after it


def test_loss_in_recovery_conserves_then_restores_cwnd() -> None:
    cc = Bbr1(MDS, seed=1)
    pipe = Pipe(cc, RATE, RTT, drop=lambda pn: pn == 2000)
    pipe.run_until(3.0)
    assert pipe.lost == [2000]
    assert not cc.in_recovery
    assert cc.congestion_window >= 0.9 * cc.target_cwnd
