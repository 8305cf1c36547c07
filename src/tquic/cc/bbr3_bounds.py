"""BBRv3's bounds on its path model, and the congestion signals they adapt from.

draft-ietf-ccwg-bbr-06 "Network Path Model" keeps, beside BBR.max_bw and
BBR.min_rtt, three bounds (named here as in earlier revisions, Linux and QUICHE):

- ``inflight_hi`` (BBR.inflight_longterm): the flight at which a bandwidth probe
  saw more than BBRLossThresh of loss (or too much ECN-CE); cwnd stays under it
  while probing, and it is raised 1, 2, 4, ... packets per round while the loss
  rate is safe ("AdaptLongTermModel", "BBRProbeInflightHiUpward").
- ``bw_lo`` / ``inflight_lo`` (BBR.bw_shortterm / BBR.inflight_shortterm): cut at
  most by BBRBeta at the end of every round with loss or CE outside probing
  ("BBRAdaptLowerBoundsFromCongestion"), forgotten when a probe starts.

and the per-round signals behind them ("BBRUpdateLatestDeliverySignals",
"BBRUpdateCongestionSignals", "BBRNoteLoss"): the latest round's delivery rate and
volume, whether it lost (or saw CE on) anything, and the ECN alpha.  ``Bbr3``
(cc/bbr3.py) runs the state machine and calls these at the draft's steps.

Random loss, as the draft intends it: the long-term bound (inflight_hi) ignores a
loss rate below BBRLossThresh, but the short-term bounds do not --
BBRLossLowerBounds runs at the end of every round with any loss outside probing,
floored by what that round delivered, and a lost packet is not delivered.  At 2 %
random loss nearly every round loses a packet, so bw_lo / inflight_lo step down
round after round until the next REFILL resets them (every 2-3 s): in the simulator
(20 Mbit/s, 30 ms, 2 % each way) inflight_lo is what limits cwnd 82-85 % of the
time and the pacing rate sags from 19.6 to ~13 Mbit/s between probes, 0.75 of the
link.  That is the algorithm, not a slip of this code; bbr1 is the controller for
links with random loss (docs/realtime.md, docs/congestion.md).
"""

from __future__ import annotations

import math

from tquic.cc.bbr3_params import PROBE_BW_STATES, Bbr3State, BbrParams
from tquic.cc.bbr_common import INF, PacketState, RateSample


class Bbr3Bounds:
    """inflight_hi, bw_lo / inflight_lo and the loss-round signals of one flow."""

    __slots__ = (
        "bw_latest",
        "bw_lo",
        "bw_probe_up_acks",
        "bw_probe_up_rounds",
        "ce_in_round",
        "delivered_in_round",
        "ecn_alpha",
        "inflight_hi",
        "inflight_latest",
        "inflight_lo",
        "loss_events_in_round",
        "loss_in_round",
        "loss_round_delivered",
        "loss_round_start",
        "lost_in_round",
        "mds",
        "min_pipe",
        "params",
        "probe_up_cnt",
    )

    def __init__(self, params: BbrParams, max_datagram_size: int, min_pipe_cwnd: int) -> None:
        self.params = params
        self.mds = max_datagram_size  # both fixed for the controller's life
        self.min_pipe = min_pipe_cwnd
        self.bw_lo = INF
        self.inflight_lo = INF
        self.inflight_hi = INF
        self.bw_latest = 0.0
        self.inflight_latest = 0
        self.loss_round_delivered = 0
        self.loss_round_start = False
        self.loss_in_round = False
        self.loss_events_in_round = 0  # loss-marking events (ACKs with losses), at most 15
        self.lost_in_round = 0
        self.ce_in_round = 0
        self.delivered_in_round = 0
        self.ecn_alpha = 1.0  # starts pessimistic, as DCTCP's alpha (RFC 8257 §3.3)
        self.probe_up_cnt = INF
        self.bw_probe_up_acks = 0
        self.bw_probe_up_rounds = 0

    # -- the loss round's signals ------------------------------------------------------

    def update_latest_delivery_signals(self, rs: RateSample, delivered: int) -> None:
        # "BBRUpdateLatestDeliverySignals": per loss round, the max bw and delivered.
        self.loss_round_start = False
        if rs.valid:
            self.bw_latest = max(self.bw_latest, rs.delivery_rate)
        self.inflight_latest = max(self.inflight_latest, rs.delivered)
        if rs.prior_delivered >= self.loss_round_delivered:
            self.loss_round_delivered = delivered
            self.loss_round_start = True

    def advance_latest_delivery_signals(self, rs: RateSample) -> None:
        if self.loss_round_start:
            self.bw_latest = rs.delivery_rate if rs.valid else 0.0
            self.inflight_latest = rs.delivered

    def count(self, rs: RateSample, ecn_ce_count: int) -> None:
        """"BBRUpdateCongestionSignals": this ACK's deliveries, losses and CE marks."""
        self.delivered_in_round += rs.newly_acked
        if rs.newly_lost > 0:
            self.loss_in_round = True
            self.lost_in_round += rs.newly_lost
        if ecn_ce_count > 0 and self.params.ecn:
            self.ce_in_round += ecn_ce_count * self.mds

    def end_loss_round(self, probing: bool, max_bw: float, cwnd: float) -> None:
        """A loss round ended: adapt the short-term bounds (outside ``probing``) and
        start counting the next one."""
        self._update_ecn_alpha()
        if not probing:
            self._adapt_lower_bounds_from_congestion(max_bw, cwnd)
        self._clear_round()

    def note_loss(self, delivered: int) -> None:
        # "BBRNoteLoss": the first loss of a round restarts the loss round at
        # C.delivered, so the lower bounds are adapted one full round after it,
        # with bw_latest / inflight_latest measured over that whole round of
        # delivery rather than over whatever was left of the round the loss hit.
        if not self.loss_in_round:
            self.loss_round_delivered = delivered
        self.loss_in_round = True

    def on_probe_down(self) -> None:
        """ProbeBW_DOWN starts a cycle: the round's signals start again, and
        inflight_hi does not grow until the next probe up sets its slope."""
        self.reset_congestion_signals()
        self.probe_up_cnt = INF

    def reset_congestion_signals(self) -> None:
        self._clear_round()
        self.bw_latest = 0.0
        self.inflight_latest = 0

    def _clear_round(self) -> None:
        self.loss_in_round = False
        self.lost_in_round = 0
        self.ce_in_round = 0
        self.delivered_in_round = 0

    def _round_ce_ratio(self) -> float:
        if self.delivered_in_round <= 0:
            return 0.0
        return min(1.0, self.ce_in_round / self.delivered_in_round)

    def _update_ecn_alpha(self) -> None:
        # ECN alpha: an EWMA of the CE-marked share per round (gain 1/16), as DCTCP.
        if not self.params.ecn or self.delivered_in_round <= 0:
            return
        g = self.params.ecn_alpha_gain
        self.ecn_alpha = (1.0 - g) * self.ecn_alpha + g * self._round_ce_ratio()

    # -- the short-term bounds: bw_lo, inflight_lo ---------------------------------------

    def _adapt_lower_bounds_from_congestion(self, max_bw: float, cwnd: float) -> None:
        # "BBRAdaptLowerBoundsFromCongestion": once per round, outside probing.
        ecn = self.params.ecn and self.ce_in_round > 0
        loss = self.loss_in_round  # any loss in the round, random or not
        if not (loss or ecn):
            return
        # BBRInitLowerBounds
        if math.isinf(self.bw_lo):
            self.bw_lo = max_bw
        if math.isinf(self.inflight_lo):
            self.inflight_lo = cwnd
        if loss:
            # BBRLossLowerBounds
            beta = self.params.beta
            self.bw_lo = max(self.bw_latest, beta * self.bw_lo)
            self.inflight_lo = max(float(self.inflight_latest), beta * self.inflight_lo)
        if ecn:
            cut = 1.0 - self.ecn_alpha * self.params.ecn_factor
            self.inflight_lo = max(self.inflight_lo * cut, float(self.min_pipe))

    def reset_lower_bounds(self) -> None:
        self.bw_lo = INF
        self.inflight_lo = INF

    def cap_inflight_lo(self) -> None:
        # Cruise never plans more than the long-term bound allows (Linux tcp_bbr.c
        # v3 bbr_start_bw_probe_cruise, QUICHE EnterProbeCruise: cap_inflight_lo).
        if not math.isinf(self.inflight_lo):
            self.inflight_lo = min(self.inflight_lo, self.inflight_hi)

    def on_persistent_congestion(self, probing: bool, cwnd: float, prior_cwnd: float) -> None:
        # Outside probing inflight_lo keeps the cwnd from before the collapse for
        # BBRAdaptLowerBoundsFromCongestion (Linux tcp_bbr.c v3, TCP_CA_Loss).
        if not probing and math.isinf(self.inflight_lo):
            self.inflight_lo = max(cwnd, prior_cwnd)

    # -- the long-term bound: inflight_hi ------------------------------------------------

    def is_inflight_too_high(self, lost: int, tx_in_flight: int, rs: RateSample | None) -> bool:
        # "IsInflightTooHigh" (draft-ietf-ccwg-bbr-06 §5.5.10.2): more than
        # BBRLossThresh of the flight lost since the packet was sent (QUIC always
        # has selective ACKs), or (ECN, beyond the draft) the CE-marked share of
        # the sample's deliveries above BBRECNThresh.
        if (
            tx_in_flight > 0
            and lost > tx_in_flight * self.params.loss_thresh
            and self.loss_events_in_round >= self.params.probe_bw_full_loss_count
        ):
            return True
        if rs is not None and self.params.ecn and rs.delivered > 0 and rs.ce_delivered > 0:
            return rs.ce_delivered / rs.delivered > self.params.ecn_thresh
        return False

    def on_startup_queue_too_high(self, bdp: float) -> None:
        # BBRHandleQueueTooHighInStartup
        self.inflight_hi = max(bdp, float(self.inflight_latest))

    def on_inflight_too_high(self, tx_in_flight: float, target_inflight: float) -> None:
        # "HandleInflightTooHigh" when not app-limited: the probe found the ceiling.
        self.inflight_hi = max(tx_in_flight, target_inflight * self.params.beta)

    def on_refill(self) -> None:
        """ProbeBW_REFILL: forget the short-term bounds; inflight_hi grows from one
        packet per round again once probing up."""
        self.reset_lower_bounds()
        self.bw_probe_up_rounds = 0
        self.bw_probe_up_acks = 0

    def raise_inflight_hi(self, rs: RateSample, probing_up: bool, cwnd_limited: bool,
                          cwnd: float, round_start: bool) -> None:
        """"AdaptLongTermModel" with a safe loss rate: inflight_hi follows the flight
        that was safe and, probing up, grows with the ACKs."""
        if math.isinf(self.inflight_hi):
            return
        if rs.tx_in_flight > self.inflight_hi:
            self.inflight_hi = float(rs.tx_in_flight)
        if probing_up:
            self._probe_inflight_hi_upward(rs, cwnd_limited, cwnd, round_start)

    def _probe_inflight_hi_upward(self, rs: RateSample, cwnd_limited: bool, cwnd: float,
                                  round_start: bool) -> None:
        # "BBRProbeInflightHiUpward": grow inflight_hi 1, 2, 4, ... packets per round.
        if not cwnd_limited or cwnd < self.inflight_hi:
            return
        self.bw_probe_up_acks += rs.newly_acked
        if self.bw_probe_up_acks >= self.probe_up_cnt:
            delta = int(self.bw_probe_up_acks // self.probe_up_cnt)
            self.bw_probe_up_acks -= int(delta * self.probe_up_cnt)
            self.inflight_hi += delta * self.mds
        if round_start:
            self.raise_inflight_hi_slope(cwnd)

    def raise_inflight_hi_slope(self, cwnd: float) -> None:
        growth_this_round = float(1 << self.bw_probe_up_rounds) * self.mds
        self.bw_probe_up_rounds = min(self.bw_probe_up_rounds + 1, 30)
        # Bytes to acknowledge per max_datagram_size of inflight_hi growth.
        self.probe_up_cnt = max(cwnd / growth_this_round, 1.0) * self.mds

    def inflight_at_loss(self, p: PacketState, lost_bytes: int) -> float:
        # "BBRInflightAtLoss": where in the flight the loss rate crossed the threshold.
        thresh = self.params.loss_thresh
        inflight_prev = p.tx_in_flight - p.size
        lost_prev = lost_bytes - p.size
        # Losses before this packet may already exceed the budget: no prefix then.
        lost_prefix = max(thresh * inflight_prev - lost_prev, 0.0) / (1.0 - thresh)
        return max(inflight_prev + lost_prefix, float(self.min_pipe))

    def inflight_with_headroom(self) -> float:
        # "BBRInflightWithHeadroom": leave BBRHeadroom of inflight_hi for others.
        if math.isinf(self.inflight_hi):
            return INF
        headroom = max(float(self.mds), self.params.headroom * self.inflight_hi)
        return max(self.inflight_hi - headroom, float(self.min_pipe))

    def cwnd_cap(self, state: Bbr3State) -> float:
        """"BBRBoundCwndForModel": the most cwnd the bounds allow in ``state``."""
        cap = INF
        if state in PROBE_BW_STATES and state is not Bbr3State.PROBE_BW_CRUISE:
            cap = self.inflight_hi
        elif state in (Bbr3State.PROBE_RTT, Bbr3State.PROBE_BW_CRUISE):
            cap = self.inflight_with_headroom()
        return max(min(cap, self.inflight_lo), float(self.min_pipe))
