"""BBRv3 (draft-ietf-ccwg-bbr-06), with BBRv2 as a parameter set of the same machine.

Section names below are the draft's (its ``inflight_longterm`` / ``inflight_shortterm``
/ ``bw_shortterm`` are ``inflight_hi`` / ``inflight_lo`` / ``bw_lo`` here, the names of
earlier revisions and of Linux / QUICHE).  The model ("Network Path Model"): BBR.max_bw
(max delivery rate over the last two ProbeBW cycles), BBR.min_rtt (10 s) and the
bounds BBR.inflight_hi (long term, raised while probing, cut when a probe's loss
rate exceeds BBRLossThresh = 2 %) and BBR.bw_lo / BBR.inflight_lo (short term, cut
at most by BBRBeta = 0.7 at the end of every round with loss outside of bandwidth
probing, reset when a probe starts).  The state machine ("State Machine
Operation"): Startup (pacing gain 2.77, cwnd gain 2) until the bandwidth stops
growing 25 % for three rounds or the loss rate is too high; Drain (gain 0.5) until
inflight <= BDP or three rounds; ProbeBW with DOWN / CRUISE / REFILL / UP phases,
a probe every 2-3 s or 63 rounds, precautionary probing after a probe that went
too high; ProbeRTT every 5 s with cwnd at 0.5 x BDP for 200 ms and a round.

Loss acts only through the model (§5.6.4.4 "Modulating cwnd in Loss Recovery"):
fast recovery saves cwnd and restores it on exit, with no packet-conservation
cut; "NoteLoss" restarts the loss round at a round's first loss; each lost
packet is judged with C.lost counted up to it ("HandleLostPacket"), and only
that ends a bandwidth probe in v3 (v2 also ends it on the per-ACK sample).
ECN-CE is read as BBRv2 / Linux v3 do (the draft leaves the ECN response open).
Not implemented: the undo of spurious loss recovery (§5.5.11): the loss
detector does not report spurious losses.  Bounds and random loss: cc/bbr3_bounds.py.
"""

from __future__ import annotations

import math
import random

from tquic.cc.base import LostPacket
from tquic.cc.bbr3_bounds import Bbr3Bounds
from tquic.cc.bbr3_params import (
    BBR2_PARAMS,
    BBR3_PARAMS,
    PROBE_BW_STATES,
    PROBING_STATES,
    AckPhase,
    Bbr3State,
    BbrParams,
)
from tquic.cc.bbr_common import INF, BbrBase, PacketState, RateSample, WindowedMaxFilter

__all__ = [
    "BBR2_PARAMS",
    "BBR3_PARAMS",
    "PROBE_BW_STATES",
    "PROBING_STATES",
    "AckPhase",
    "Bbr3",
    "Bbr3State",
    "BbrParams",
    "create_bbr2",
    "create_bbr3",
]


class Bbr3(BbrBase):
    """BBRv3 (or BBRv2 with ``params=BBR2_PARAMS``)."""

    # draft-ietf-ccwg-bbr-06 §5.6.4.4: in fast recovery BBR "uses the response
    # described in Updating the Model Upon Packet Loss" -- no packet conservation
    # (the v1 rule): cwnd only follows BBR.max_inflight and the model's bounds.
    RECOVERY_CWND_MODULATION = False

    __slots__ = (
        "_bw_hi", "_cwnd_limited_prev_round", "_cwnd_limited_this_round", "_rng", "ack_phase",
        "bounds", "bw", "bw_probe_samples", "bw_probe_wait", "cwnd_gain", "cwnd_limited",
        "cycle_count", "cycle_stamp", "drain_start_round", "extra_acked",
        "extra_acked_delivered", "extra_acked_filter", "extra_acked_interval_start", "full_bw",
        "full_bw_count", "full_bw_now", "full_bw_reached", "idle_restart", "max_inflight",
        "pacing_gain", "params", "prev_probe_precautionary", "prev_probe_too_high",
        "probe_rtt_done_stamp", "probe_rtt_expired", "probe_rtt_min_delay",
        "probe_rtt_min_stamp", "probe_rtt_round_done", "rounds_since_bw_probe", "state",
    )

    def __init__(
        self, max_datagram_size: int, params: BbrParams = BBR3_PARAMS, *, seed: int | None = None
    ) -> None:
        super().__init__(max_datagram_size, params.startup_pacing_gain)
        self.params = params
        # Without a seed, draw one from the process-wide generator: still random per
        # flow, and a simulation that seeds ``random`` replays exactly.
        self._rng = random.Random(random.getrandbits(64) if seed is None else seed)
        # "Initialization": BBROnInit.
        self._bw_hi = [0.0, 0.0]  # BBR.MaxBwFilter: this cycle and the previous one
        self.cycle_count = 0
        self.bw = 0.0
        # inflight_hi, bw_lo / inflight_lo and the loss round's signals (cc/bbr3_bounds.py)
        self.bounds = Bbr3Bounds(params, max_datagram_size, self.min_pipe_cwnd)
        self.extra_acked_filter = WindowedMaxFilter(params.extra_acked_filter_len)
        self.extra_acked = 0.0
        self.extra_acked_interval_start = 0.0
        self.extra_acked_delivered = 0
        self.full_bw = 0.0
        self.full_bw_count = 0
        self.full_bw_now = False
        self.full_bw_reached = False
        self.probe_rtt_min_delay = INF
        self.probe_rtt_min_stamp = 0.0
        self.probe_rtt_expired = False
        self.probe_rtt_done_stamp = 0.0
        self.probe_rtt_round_done = False
        self.idle_restart = False
        self.cycle_stamp = 0.0
        self.bw_probe_wait = 0.0
        self.rounds_since_bw_probe = 0
        self.bw_probe_samples = 0
        self.ack_phase = AckPhase.INIT
        self.prev_probe_too_high = False
        self.prev_probe_precautionary = False
        self.drain_start_round = 0
        self.max_inflight = float(self.initial_cwnd)
        self.cwnd_limited = False
        self._cwnd_limited_this_round = False
        self._cwnd_limited_prev_round = False
        self.state = Bbr3State.STARTUP
        self.pacing_gain = params.startup_pacing_gain
        self.cwnd_gain = params.startup_cwnd_gain

    @property
    def max_bw(self) -> float:
        """BBR.max_bw in bytes per second."""
        return max(self._bw_hi)

    def _full_bw_reached(self) -> bool:
        return self.full_bw_reached

    def _in_probe_rtt(self) -> bool:
        return self.state is Bbr3State.PROBE_RTT

    # -- "Per-ACK Steps" ----------------------------------------------------------

    def _update(
        self,
        rs: RateSample,
        bytes_in_flight: int,
        now: float,
        ecn_ce_count: int,
        cwnd_limited: bool,
    ) -> None:
        # C.is_cwnd_limited: "fully utilized C.cwnd at any point in the last
        # packet-timed round trip" (§2.2) -- this round or the one before.
        self._cwnd_limited_this_round |= cwnd_limited
        self.cwnd_limited = self._cwnd_limited_this_round or self._cwnd_limited_prev_round
        # BBRUpdateModelAndState
        bounds = self.bounds
        bounds.update_latest_delivery_signals(rs, self.sampler.delivered)
        self._update_congestion_signals(rs, ecn_ce_count)
        self._update_ack_aggregation(rs, now)
        self._check_full_bw_reached(rs)
        self._check_startup_done(rs)
        self._check_drain_done(bytes_in_flight, now)
        self._update_probe_bw_cycle_phase(rs, bytes_in_flight, now)
        self._update_min_rtt(rs, now)
        self._check_probe_rtt(rs, bytes_in_flight, now)
        bounds.advance_latest_delivery_signals(rs)
        self._bound_bw_for_model()
        # BBRUpdateControlParameters
        self._set_pacing_rate_with_gain(self.bw, self.pacing_gain, self.params.pacing_margin)
        self._set_cwnd(rs, bytes_in_flight)

    def _update_congestion_signals(self, rs: RateSample, ecn_ce_count: int) -> None:
        # "BBRUpdateCongestionSignals"
        self._update_max_bw(rs)
        bounds = self.bounds
        bounds.count(rs, ecn_ce_count)
        if not bounds.loss_round_start:
            return
        bounds.end_loss_round(self.state in PROBING_STATES, self.max_bw, self._cwnd)
        if self.full_bw_reached or self.state is not Bbr3State.STARTUP:
            bounds.loss_events_in_round = 0

    def _update_max_bw(self, rs: RateSample) -> None:
        # "BBRUpdateMaxBw": round counting, then the two-cycle max filter.
        self._update_round(rs)
        if (
            rs.valid
            and (rs.delivery_rate >= self.max_bw or not rs.is_app_limited)
            and rs.delivery_rate > self._bw_hi[1]
        ):
            self._bw_hi[1] = rs.delivery_rate

    def _on_round_start(self) -> None:
        self.rounds_since_bw_probe += 1
        self._cwnd_limited_prev_round = self._cwnd_limited_this_round
        self._cwnd_limited_this_round = False

    def _advance_max_bw_filter(self) -> None:
        # "BBRAdvanceMaxBwFilter": forget the cycle before last.
        self.cycle_count += 1
        if self._bw_hi[1] == 0.0:
            return
        self._bw_hi[0] = self._bw_hi[1]
        self._bw_hi[1] = 0.0

    def _bound_bw_for_model(self) -> None:
        self.bw = min(self.max_bw, self.bounds.bw_lo)

    def _update_ack_aggregation(self, rs: RateSample, now: float) -> None:
        # "BBRUpdateACKAggregation": data acknowledged beyond what bw explains.
        interval = now - self.extra_acked_interval_start
        expected = self.bw * interval
        if self.extra_acked_delivered <= expected:
            self.extra_acked_delivered = 0
            self.extra_acked_interval_start = now
            expected = 0.0
        self.extra_acked_delivered += rs.newly_acked
        extra = min(self.extra_acked_delivered - expected, self._cwnd)
        # Remember one round in Startup, BBRExtraAckedFilterLen rounds after it.
        p = self.params
        self.extra_acked_filter.window = (
            p.extra_acked_filter_len if self.full_bw_reached else p.startup_extra_acked_filter_len
        )
        self.extra_acked = self.extra_acked_filter.update(self.round_count, max(extra, 0.0))

    # -- "Startup" and "Drain" -------------------------------------------------------

    def _reset_full_bw(self) -> None:
        self.full_bw = 0.0
        self.full_bw_count = 0
        self.full_bw_now = False

    def _check_full_bw_reached(self, rs: RateSample) -> None:
        # "BBRCheckFullBWReached": three rounds without 25 % growth.
        if self.full_bw_now or not self.round_start or rs.is_app_limited or not rs.valid:
            return
        if rs.delivery_rate >= self.full_bw * self.params.full_bw_thresh:
            self._reset_full_bw()
            self.full_bw = rs.delivery_rate
            return
        self.full_bw_count += 1
        self.full_bw_now = self.full_bw_count >= self.params.full_bw_count
        if self.full_bw_now:
            self.full_bw_reached = True

    def _check_startup_done(self, rs: RateSample) -> None:
        self._check_startup_high_loss(rs)
        if self.state is Bbr3State.STARTUP and self.full_bw_reached:
            self._enter_drain()

    def _check_startup_high_loss(self, rs: RateSample) -> None:
        # "Exiting Startup Based on Packet Loss": in recovery for a round, at least
        # BBRStartupFullLossCnt loss events, and loss (or ECN) above threshold.
        if self.full_bw_reached or self.state is not Bbr3State.STARTUP:
            return
        too_high = False
        if (
            self.bounds.loss_round_start
            and self.in_recovery
            and self.bounds.loss_events_in_round >= self.params.startup_full_loss_cnt
            and self.bounds.is_inflight_too_high(rs.lost, rs.tx_in_flight, rs)
        ):
            too_high = True
        if self.bounds.loss_round_start:
            self.bounds.loss_events_in_round = 0
        if (
            not too_high
            and self.params.ecn
            and self.round_start
            and rs.valid
            and rs.ce_delivered > 0
            and rs.ce_delivered / max(rs.delivered, 1) > self.params.ecn_thresh
        ):
            too_high = True
        if too_high:
            self.full_bw_reached = True
            self.bounds.on_startup_queue_too_high(self._bdp(self.max_bw, 1.0))

    def _enter_startup(self) -> None:
        self.state = Bbr3State.STARTUP
        self.pacing_gain = self.params.startup_pacing_gain
        self.cwnd_gain = self.params.startup_cwnd_gain

    def _enter_drain(self) -> None:
        self.state = Bbr3State.DRAIN
        self.pacing_gain = self.params.drain_pacing_gain
        self.cwnd_gain = self.params.startup_cwnd_gain
        self.drain_start_round = self.round_count

    def _check_drain_done(self, bytes_in_flight: int, now: float) -> None:
        # "CheckDrainDone": the queue is gone (inflight <= BDP), or -- when Startup
        # overestimated the bandwidth -- 3 rounds have passed (v3 only).
        if self.state is not Bbr3State.DRAIN:
            return
        max_rounds = self.params.drain_max_rounds
        if bytes_in_flight <= self._inflight(self.bw, 1.0) or (
            max_rounds is not None and self.round_count > self.drain_start_round + max_rounds
        ):
            self._enter_probe_bw(now)

    # -- "ProbeBW" -------------------------------------------------------------------

    def _enter_probe_bw(self, now: float) -> None:
        self.cwnd_gain = self.params.cwnd_gain
        self._start_probe_bw_down(now)

    def _pick_probe_wait(self) -> None:
        # "BBRPickProbeWait": 2-3 s of wall clock, and a random 0/1 round offset.
        self.rounds_since_bw_probe = self._rng.randint(0, 1)
        self.bw_probe_wait = 2.0 + self._rng.random()

    def _start_probe_bw_down(self, now: float) -> None:
        self.bounds.on_probe_down()
        self._pick_probe_wait()
        self.cycle_stamp = now
        self.ack_phase = AckPhase.PROBE_STOPPING
        self._start_round()
        self.state = Bbr3State.PROBE_BW_DOWN
        self.pacing_gain = self.params.down_pacing_gain
        self.cwnd_gain = self.params.cwnd_gain

    def _start_probe_bw_cruise(self) -> None:
        self.bounds.cap_inflight_lo()
        self.state = Bbr3State.PROBE_BW_CRUISE
        self.pacing_gain = 1.0
        self.cwnd_gain = self.params.cwnd_gain

    def _start_probe_bw_refill(self) -> None:
        self.bounds.on_refill()
        self.prev_probe_precautionary = False
        self.ack_phase = AckPhase.REFILLING
        self._start_round()
        self.state = Bbr3State.PROBE_BW_REFILL
        self.pacing_gain = 1.0
        self.cwnd_gain = self.params.cwnd_gain

    def _start_probe_bw_up(self, rs: RateSample, now: float) -> None:
        self.ack_phase = AckPhase.PROBE_STARTING
        self._start_round()
        self._reset_full_bw()
        self.full_bw = rs.delivery_rate if rs.valid else 0.0
        self.cycle_stamp = now
        self.state = Bbr3State.PROBE_BW_UP
        self.pacing_gain = self.params.up_pacing_gain
        self.cwnd_gain = self.params.up_cwnd_gain
        self.bounds.raise_inflight_hi_slope(self._cwnd)

    def _update_probe_bw_cycle_phase(
        self, rs: RateSample, bytes_in_flight: int, now: float
    ) -> None:
        # "BBRUpdateProbeBWCyclePhase"
        if not self.full_bw_reached:
            return
        if self._adapt_upper_bounds(rs, now):
            return  # it already chose the next phase
        state = self.state
        if state not in PROBE_BW_STATES:
            return
        if state is Bbr3State.PROBE_BW_DOWN:
            if self._is_time_to_probe_bw(now):
                return
            if self._is_time_to_cruise(bytes_in_flight):
                self._start_probe_bw_cruise()
        elif state is Bbr3State.PROBE_BW_CRUISE:
            self._is_time_to_probe_bw(now)
        elif state is Bbr3State.PROBE_BW_REFILL:
            # One round of REFILL (inflight at the bounds), then probe up.
            if self.round_start:
                self.bw_probe_samples = 1
                self._start_probe_bw_up(rs, now)
        elif self._is_time_to_go_down(rs, bytes_in_flight):
            self.prev_probe_too_high = False  # no high loss (yet)
            self._start_probe_bw_down(now)

    def _is_time_to_cruise(self, bytes_in_flight: int) -> bool:
        if bytes_in_flight > self.bounds.inflight_with_headroom():
            return False  # not enough headroom yet
        return bytes_in_flight <= self._inflight(self.max_bw, 1.0)

    def _is_time_to_go_down(self, rs: RateSample, bytes_in_flight: int) -> bool:
        # "Precautionary Bandwidth Probing: Deceleration": the last probe went too
        # high, so this one stops where that one found excess loss.
        # The flight is judged as this ACK found it (Linux tcp_bbr.c v3 uses
        # rs->prior_in_flight): after the ACK it is always below a cwnd equal to
        # inflight_hi, and UP would keep raising inflight_hi instead of stopping.
        if (
            self.params.precautionary_probing
            and self.prev_probe_too_high
            and bytes_in_flight + rs.newly_acked >= self.bounds.inflight_hi
        ):
            self.prev_probe_precautionary = True
            return True
        if self.cwnd_limited and self._cwnd >= self.bounds.inflight_hi:
            # inflight_hi, not the path, limits the growth: keep probing.
            self._reset_full_bw()
            self.full_bw = rs.delivery_rate if rs.valid else 0.0
        elif self.full_bw_now:
            return True  # the bandwidth plateaued: the pipe is full
        return False

    def _has_elapsed_in_phase(self, interval: float, now: float) -> bool:
        return now > self.cycle_stamp + interval

    def _is_reno_coexistence_probe_time(self) -> bool:
        # "BBRIsRenoCoexistenceProbeTime": probe at least as often as Reno would
        # refill a BDP-sized window (one packet per round), capped at 63 rounds.
        reno_rounds = self._target_inflight() / self.max_datagram_size
        rounds = min(reno_rounds, float(self.params.max_probe_wait_rounds))
        return self.rounds_since_bw_probe >= rounds

    def _target_inflight(self) -> float:
        return min(self._bdp(self.bw, 1.0), self._cwnd)

    def _is_time_to_probe_bw(self, now: float) -> bool:
        if (
            self._has_elapsed_in_phase(self.bw_probe_wait, now)
            or self._is_reno_coexistence_probe_time()
        ):
            self._start_probe_bw_refill()
            return True
        return False

    def _adapt_upper_bounds(self, rs: RateSample, now: float) -> bool:
        # "AdaptLongTermModel" (draft-ietf-ccwg-bbr-06 §5.3.3.9); True when it
        # started a new phase.
        if self.ack_phase is AckPhase.PROBE_STARTING and self.round_start:
            self.ack_phase = AckPhase.PROBE_FEEDBACK
        if self.ack_phase is AckPhase.PROBE_STOPPING and self.round_start:
            # The probe's own samples are in: start a new max_bw cycle.
            self.bw_probe_samples = 0
            self.ack_phase = AckPhase.INIT
            in_probe_bw = self.state in PROBE_BW_STATES
            if in_probe_bw and not rs.is_app_limited:
                self._advance_max_bw_filter()
            # "Precautionary Bandwidth Probing: Acceleration": a round of feedback
            # from the cautious probe showed no excess loss, so probe again now.
            if in_probe_bw and self.prev_probe_precautionary and not self.prev_probe_too_high:
                self._start_probe_bw_refill()
                return True
        if self.bounds.is_inflight_too_high(rs.lost, rs.tx_in_flight, rs):
            # BBRv2 ends a probe on the per-ACK sample too; v3 only on lost packets.
            if self.params.per_ack_inflight_too_high and self.bw_probe_samples:
                self._handle_inflight_too_high(rs.is_app_limited, rs.tx_in_flight, now)
            return False
        # The loss rate is safe: raise the upper bound.
        self.bounds.raise_inflight_hi(rs, self.state is Bbr3State.PROBE_BW_UP,
                                      self.cwnd_limited, self._cwnd, self.round_start)
        return False

    def _handle_inflight_too_high(self, app_limited: bool, tx_in_flight: float, now: float) -> None:
        # "HandleInflightTooHigh": the probe found the ceiling.
        self.prev_probe_too_high = True
        self.bw_probe_samples = 0
        if not app_limited:
            self.bounds.on_inflight_too_high(tx_in_flight, self._target_inflight())
        if self.state is Bbr3State.PROBE_BW_UP:
            self._start_probe_bw_down(now)

    def _on_loss(
        self,
        lost: list[LostPacket],
        states: list[tuple[PacketState, int]],
        bytes_in_flight: int,
        now: float,
    ) -> None:
        # One loss-marking event (Linux: an ACK with rs->losses; QUICHE: a
        # congestion event with losses), counted for the Startup and probe exits.
        bounds = self.bounds
        bounds.loss_events_in_round = min(bounds.loss_events_in_round + 1, 0xF)
        # "BBRHandleLostPacket", packet by packet as each is marked lost.
        for p, lost_after in states:
            bounds.note_loss(self.sampler.delivered)
            if not self.bw_probe_samples:
                continue  # not a packet sent while probing for bandwidth
            # RS.lost = C.lost - packet.lost, with C.lost counted up to this packet.
            lost_bytes = lost_after - p.lost
            if bounds.is_inflight_too_high(lost_bytes, p.tx_in_flight, None):
                self._handle_inflight_too_high(
                    p.app_limited, bounds.inflight_at_loss(p, lost_bytes), now
                )
        if len(states) < len(lost):
            bounds.note_loss(self.sampler.delivered)  # packets whose send state we lost

    def _exit_recovery(self) -> None:
        # §5.6.4.4: "When BBR exits loss recovery it restores C.cwnd to the last
        # known good value"; BoundCwndForModel then applies the model's bounds.
        super()._exit_recovery()
        self._restore_cwnd()

    def _on_persistent_congestion(self, now: float) -> None:
        # An RTO-style collapse (Linux tcp_bbr.c v3 bbr_set_state(TCP_CA_Loss)):
        # the bandwidth plateau is re-learned, and outside probing inflight_lo keeps
        # the cwnd from before the collapse for BBRAdaptLowerBoundsFromCongestion.
        self._reset_full_bw()
        self.bounds.on_persistent_congestion(self.state in PROBING_STATES, self._cwnd,
                                             self.prior_cwnd)

    # -- "ProbeRTT" and "min_rtt" ----------------------------------------------------------

    def _update_min_rtt(self, rs: RateSample, now: float) -> None:
        p = self.params
        # An empty filter has not expired ("Initialization" stamps it at Now()): with
        # the 0.0 stamp every real connection, its clock being time since boot,
        # entered ProbeRTT on its first ACK.
        self.probe_rtt_expired = (not math.isinf(self.probe_rtt_min_delay)
                                  and now > self.probe_rtt_min_stamp + p.probe_rtt_interval)
        if rs.rtt >= 0 and (rs.rtt < self.probe_rtt_min_delay or self.probe_rtt_expired):
            self.probe_rtt_min_delay = rs.rtt
            self.probe_rtt_min_stamp = now
        min_rtt_expired = now > self.min_rtt_stamp + p.min_rtt_filter_len
        if self.probe_rtt_min_delay < self.min_rtt or min_rtt_expired:
            self.min_rtt = self.probe_rtt_min_delay
            self.min_rtt_stamp = self.probe_rtt_min_stamp

    def _check_probe_rtt(self, rs: RateSample, bytes_in_flight: int, now: float) -> None:
        if (
            self.state is not Bbr3State.PROBE_RTT
            and self.probe_rtt_expired
            and not self.idle_restart
            and not math.isinf(self.min_rtt)
        ):
            self.prior_cwnd = self._save_cwnd()
            self.state = Bbr3State.PROBE_RTT
            self.pacing_gain = 1.0
            self.cwnd_gain = self.params.probe_rtt_cwnd_gain
            self.probe_rtt_done_stamp = 0.0
            self.ack_phase = AckPhase.PROBE_STOPPING
            self._start_round()
        if self.state is Bbr3State.PROBE_RTT:
            self._handle_probe_rtt(bytes_in_flight, now)
        if rs.delivered > 0:
            self.idle_restart = False

    def _probe_rtt_cwnd(self) -> float:
        cwnd = self._bdp(self.bw, self.params.probe_rtt_cwnd_gain)
        return max(cwnd, float(self.min_pipe_cwnd))

    def _handle_probe_rtt(self, bytes_in_flight: int, now: float) -> None:
        self.sampler.mark_app_limited(bytes_in_flight)  # ignore low-rate samples
        if self.probe_rtt_done_stamp == 0.0 and bytes_in_flight <= self._probe_rtt_cwnd():
            self.probe_rtt_done_stamp = now + self.params.probe_rtt_duration
            self.probe_rtt_round_done = False
            self._start_round()
        elif self.probe_rtt_done_stamp != 0.0:
            if self.round_start:
                self.probe_rtt_round_done = True
            if self.probe_rtt_round_done and now > self.probe_rtt_done_stamp:
                # BBRCheckProbeRTTDone: schedule the next one, restore, exit.
                self.probe_rtt_min_stamp = now
                self._restore_cwnd()
                self._exit_probe_rtt(now)

    def _exit_probe_rtt(self, now: float) -> None:
        self.bounds.reset_lower_bounds()
        if self.full_bw_reached:
            self._start_probe_bw_down(now)
            self._start_probe_bw_cruise()
        else:
            self._enter_startup()

    # -- "Updating Control Parameters": cwnd ----------------------------------------------

    def _quantization_budget(self, inflight: float) -> float:
        # "BBRQuantizationBudget": room for 3 send quanta (offload budget), the
        # minimum pipe, and 2 packets more while probing up.
        quantum = min(self._pacing_rate * 0.001, 64 * 1024.0)
        quantum = max(quantum, 2.0 * self.max_datagram_size)
        inflight = max(inflight, 3.0 * quantum, float(self.min_pipe_cwnd))
        if self.state is Bbr3State.PROBE_BW_UP:
            inflight += 2 * self.max_datagram_size
        return inflight

    def _inflight(self, bw: float, gain: float) -> float:
        return self._quantization_budget(self._bdp(bw, gain))

    def _set_cwnd(self, rs: RateSample, bytes_in_flight: int) -> None:
        # BBRUpdateMaxInflight
        self.max_inflight = self._quantization_budget(
            self._bdp(self.bw, self.cwnd_gain) + self.extra_acked
        )
        self._modulate_cwnd_for_recovery(rs, bytes_in_flight)
        if not self.packet_conservation:
            if self.full_bw_reached:
                self._cwnd = min(self._cwnd + rs.newly_acked, self.max_inflight)
            elif self._cwnd < self.max_inflight or self.sampler.delivered < self.initial_cwnd:
                self._cwnd += rs.newly_acked
        self._cwnd = max(self._cwnd, float(self.min_pipe_cwnd))
        # BBRBoundCwndForProbeRTT
        if self.state is Bbr3State.PROBE_RTT:
            self._cwnd = min(self._cwnd, self._probe_rtt_cwnd())
        self._cwnd = min(self._cwnd, self.bounds.cwnd_cap(self.state))  # BBRBoundCwndForModel

    def __repr__(self) -> str:
        b = self.bounds
        return (
            f"Bbr3({self.params.name}, {self.state.value}, max_bw={self.max_bw:.0f} B/s, "
            f"min_rtt={self.min_rtt:.4f}, cwnd={self.congestion_window}, "
            f"inflight_hi={b.inflight_hi:.0f}, inflight_lo={b.inflight_lo:.0f}, "
            f"bw_lo={b.bw_lo:.0f})"
        )


def create_bbr3(max_datagram_size: int) -> Bbr3:
    return Bbr3(max_datagram_size, BBR3_PARAMS)


def create_bbr2(max_datagram_size: int) -> Bbr3:
    return Bbr3(max_datagram_size, BBR2_PARAMS)
