"""BBRv3 / BBRv2 under random loss: the draft-ietf-ccwg-bbr loss rules one by one,
then goodput on a lossy 20 Mbit/s path through real loss detection (cc_harness)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
from cc_pipe import MDS, Pipe

from tquic.cc.base import LostPacket, SentInfo
from tquic.cc.bbr1 import Bbr1
from tquic.cc.bbr3 import BBR2_PARAMS, BBR3_PARAMS, Bbr3, Bbr3State, BbrParams

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import cc_harness

RATE = 2.5e6  # 20 Mbit/s in bytes per second
RTT = 0.03


def run_to(cc: Bbr3, pipe: Pipe, state: Bbr3State, limit: float = 6.0) -> float:
    t = pipe.now
    while cc.state is not state and t < limit:
        t += 0.001
        pipe.run_until(t)
    assert cc.state is state
    return t


def lose_one_in_flight(cc: Bbr1 | Bbr3, pipe: Pipe) -> None:
    """Declare the oldest packet in flight lost, as the loss detector would."""
    pn = min(pipe.in_flight)
    sent = pipe.in_flight.pop(pn)
    pipe.bytes_in_flight -= MDS
    cc.on_packets_lost([LostPacket(pn, MDS, sent)], pipe.bytes_in_flight, pipe.now)


def test_fast_recovery_loss_leaves_bbr3_cwnd_to_the_model() -> None:
    # BBRv3 answers loss through inflight_lo / inflight_hi, not with the v1
    # packet-conservation cut (Linux tcp_bbr.c v3 bbr_set_cwnd has none).
    cc = Bbr3(MDS, seed=3)
    pipe = Pipe(cc, RATE, RTT)
    run_to(cc, pipe, Bbr3State.PROBE_BW_CRUISE)
    pipe.run_until(pipe.now + 0.1)
    before = cc.congestion_window
    lose_one_in_flight(cc, pipe)
    assert cc.in_recovery and not cc.packet_conservation
    assert cc.congestion_window == before


def test_bbr1_still_conserves_packets_in_fast_recovery() -> None:
    cc = Bbr1(MDS, seed=3)
    pipe = Pipe(cc, RATE, RTT)
    pipe.run_until(1.5)
    lose_one_in_flight(cc, pipe)
    assert cc.packet_conservation
    assert cc.congestion_window == pipe.bytes_in_flight + MDS


def test_persistent_congestion_keeps_the_pre_collapse_cwnd_as_inflight_lo() -> None:
    # RTO-style collapse (Linux tcp_bbr.c v3 bbr_set_state(TCP_CA_Loss)): cwnd drops
    # to BBRMinPipeCwnd, but outside probing inflight_lo remembers the cwnd before.
    cc = Bbr3(MDS, seed=3)
    pipe = Pipe(cc, RATE, RTT)
    run_to(cc, pipe, Bbr3State.PROBE_BW_CRUISE)
    pipe.run_until(pipe.now + 0.1)
    before = cc.congestion_window
    cc.on_persistent_congestion(pipe.now)
    assert cc.congestion_window == cc.min_pipe_cwnd
    assert cc.bounds.inflight_lo == pytest.approx(before, abs=1) and cc.full_bw == 0.0


def test_first_loss_of_a_round_restarts_the_loss_round() -> None:
    # "BBRNoteLoss": loss_round_delivered = C.delivered at the first loss only.
    cc = Bbr3(MDS, seed=3)
    pipe = Pipe(cc, RATE, RTT)
    run_to(cc, pipe, Bbr3State.PROBE_BW_CRUISE)
    pipe.run_until(pipe.now + 0.1)
    assert not cc.bounds.loss_in_round
    lose_one_in_flight(cc, pipe)
    assert cc.bounds.loss_in_round and cc.bounds.loss_round_delivered == cc.sampler.delivered
    marked = cc.bounds.loss_round_delivered
    pipe.run_until(pipe.now + 0.002)  # some deliveries, same round
    lose_one_in_flight(cc, pipe)
    assert cc.bounds.loss_round_delivered == marked


def test_lower_bounds_adapt_one_round_after_the_loss_by_beta_at_most() -> None:
    cc = Bbr3(MDS, seed=3)
    pipe = Pipe(cc, RATE, RTT)
    run_to(cc, pipe, Bbr3State.PROBE_BW_CRUISE)
    pipe.run_until(pipe.now + 0.1)
    cwnd, max_bw = cc.congestion_window, cc.max_bw
    lose_one_in_flight(cc, pipe)
    pipe.run_until(pipe.now + 0.5 * RTT)
    assert math.isinf(cc.bounds.bw_lo)  # the loss round is not over yet
    pipe.run_until(pipe.now + 1.5 * RTT)
    # "BBRLossLowerBounds": max(latest, BBRBeta x bound), bounds from max_bw / cwnd.
    assert 0.7 * max_bw <= cc.bounds.bw_lo <= max_bw
    assert 0.7 * cwnd <= cc.bounds.inflight_lo <= cwnd


def test_lower_bounds_are_not_touched_while_probing() -> None:
    # "BBRAdaptLowerBoundsFromCongestion": skipped in BBRIsProbingBW() states, and
    # REFILL starts from BBRResetLowerBounds.
    cc = Bbr3(MDS, seed=3)
    drops: set[int] = set()
    pipe = Pipe(cc, RATE, RTT, drop=lambda pn: pn in drops)
    run_to(cc, pipe, Bbr3State.PROBE_BW_REFILL)
    assert math.isinf(cc.bounds.bw_lo) and math.isinf(cc.bounds.inflight_lo)
    drops.add(pipe.next_pn + 5)  # one loss, so that the probe runs for rounds
    t = pipe.now
    while cc.state in (Bbr3State.PROBE_BW_REFILL, Bbr3State.PROBE_BW_UP) and t < 6:
        assert math.isinf(cc.bounds.bw_lo) and math.isinf(cc.bounds.inflight_lo)
        t += 0.001
        pipe.run_until(t)
    assert pipe.lost


def test_one_random_loss_does_not_end_a_probe() -> None:
    # "IsInflightTooHigh": one lost packet in a flight of more than 1 / BBRLossThresh
    # = 50 packets (here ~65) is within the 2 % loss budget.
    cc = Bbr3(MDS, seed=3)
    pipe = Pipe(cc, RATE, RTT)
    run_to(cc, pipe, Bbr3State.PROBE_BW_UP)
    hi = cc.bounds.inflight_hi
    assert pipe.bytes_in_flight > 50 * MDS
    lose_one_in_flight(cc, pipe)
    assert cc.state is Bbr3State.PROBE_BW_UP and cc.bounds.inflight_hi == hi


def test_inflight_at_loss_never_goes_below_the_flight_before_the_packet() -> None:
    # "BBRInflightAtLoss": losses before the packet already over budget -> no prefix.
    cc = Bbr3(MDS, seed=1)
    cc.sampler.on_packet_sent(SentInfo(1, MDS, 0.0, 50 * MDS, False))
    ((state, _),) = cc.sampler.on_loss([LostPacket(1, MDS, 0.0)])
    assert cc.bounds.inflight_at_loss(state, 10 * MDS) == pytest.approx(49 * MDS)


def test_cruise_caps_inflight_lo_at_inflight_hi() -> None:
    cc = Bbr3(MDS, seed=1)
    cc.bounds.inflight_lo, cc.bounds.inflight_hi = 100 * MDS, 60 * MDS
    cc._start_probe_bw_cruise()
    assert cc.bounds.inflight_lo == 60 * MDS


@pytest.mark.parametrize("params", [BBR3_PARAMS, BBR2_PARAMS], ids=lambda p: p.name)
def test_holds_80_percent_of_a_20_mbit_link_at_1_percent_random_loss(params: BbrParams) -> None:
    # Real PathRecovery loss detection + the controller over a modelled bottleneck
    # (20 Mbit/s, 30 ms, one-BDP drop-tail queue, 1 % Bernoulli loss), 6 s runs.
    for seed in (1, 2):
        link = cc_harness.Bottleneck(20e6, RTT, int(RATE * RTT), loss=0.01)
        bed = cc_harness.Testbed(link, seed=seed)
        result = bed.add_flow("f", params.name)
        bed.run(6.0)
        goodput = sum(b for _, b in result.delivered) / 6.0
        assert goodput >= 0.80 * RATE, (seed, goodput / RATE)
