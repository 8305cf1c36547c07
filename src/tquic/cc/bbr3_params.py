"""BBRv2/v3 parameters and state names (draft-ietf-ccwg-bbr "Parameters",
"State Machine Operation"), shared by :mod:`tquic.cc.bbr3` and its tests."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True, slots=True)
class BbrParams:
    """The draft's "Parameters" (section "Summary of Control Behavior" constants)."""

    name: str
    startup_pacing_gain: float  # BBRStartupPacingGain
    startup_cwnd_gain: float  # BBRStartupCwndGain
    drain_pacing_gain: float  # BBRDrainPacingGain
    down_pacing_gain: float  # ProbeBW_DOWN pacing gain
    up_pacing_gain: float = 1.25  # ProbeBW_UP pacing gain
    up_cwnd_gain: float = 2.25  # ProbeBW_UP cwnd gain
    cwnd_gain: float = 2.0  # BBRDefaultCwndGain
    loss_thresh: float = 0.02  # BBRLossThresh
    beta: float = 0.7  # BBRBeta
    headroom: float = 0.15  # BBRHeadroom
    pacing_margin: float = 0.01  # BBRPacingMarginPercent
    full_bw_thresh: float = 1.25
    full_bw_count: int = 3
    startup_full_loss_cnt: int = 6  # BBRStartupFullLossCnt
    probe_rtt_interval: float = 5.0  # BBRProbeRTTInterval (s)
    probe_rtt_duration: float = 0.2  # BBRProbeRTTDuration (s)
    probe_rtt_cwnd_gain: float = 0.5  # BBRProbeRTTCwndGain
    min_rtt_filter_len: float = 10.0  # BBRMinRTTFilterLen (s)
    extra_acked_filter_len: int = 10  # BBRExtraAckedFilterLen (rounds)
    ecn: bool = True  # react to ECN-CE (L4S-style) at all
    ecn_thresh: float = 0.5  # BBRECNThresh: CE ratio judged "too high"
    ecn_alpha_gain: float = 1.0 / 16  # EWMA gain of BBR.ecn_alpha
    ecn_factor: float = 1.0 / 3  # how much of ecn_alpha cuts inflight_lo
    max_probe_wait_rounds: int = 63  # Reno-coexistence bound on rounds between probes
    # Loss-marking events (ACKs that declared packets lost) a round needs before a
    # bandwidth probe's loss rate may be judged too high.  QUICHE's bbr2 sender
    # (Bbr2Params::probe_bw_full_loss_count, Google's QUIC BBRv2/v3) uses 2, so a
    # single random loss cannot end a probe; 1 is the draft's / Linux's behaviour.
    probe_bw_full_loss_count: int = 2
    # Loss rate of a round above which the short-term bounds (bw_lo, inflight_lo)
    # react.  The draft reacts to any loss (0.0); a positive value lets random
    # loss below it pass, as inflight_hi already does with BBRLossThresh.
    lower_bounds_loss_thresh: float = 0.0


# draft-ietf-ccwg-bbr: 4 ln 2 for Startup pacing, cwnd gain 2, Drain 0.35,
# ProbeBW_DOWN 0.9, ProbeBW_UP cwnd gain 2.25.
BBR3_PARAMS = BbrParams(
    name="bbr3",
    startup_pacing_gain=4.0 * math.log(2.0),
    startup_cwnd_gain=2.0,
    drain_pacing_gain=0.35,
    down_pacing_gain=0.9,
)
# BBRv2 (draft-cardwell-iccrg-bbr-congestion-control-02 era / Linux v2alpha):
# the same machine with Startup pacing 2/ln2, Drain its inverse, ProbeBW_DOWN
# 0.75 and cwnd gain 2 while probing up.  ProbeRTT already every 5 s.
BBR2_PARAMS = BbrParams(
    name="bbr2",
    startup_pacing_gain=2.0 / math.log(2.0),
    startup_cwnd_gain=2.0,
    drain_pacing_gain=math.log(2.0) / 2.0,
    down_pacing_gain=0.75,
    up_cwnd_gain=2.0,
)


class Bbr3State(Enum):
    STARTUP = "startup"
    DRAIN = "drain"
    PROBE_BW_DOWN = "probe_bw_down"
    PROBE_BW_CRUISE = "probe_bw_cruise"
    PROBE_BW_REFILL = "probe_bw_refill"
    PROBE_BW_UP = "probe_bw_up"
    PROBE_RTT = "probe_rtt"


PROBE_BW_STATES = frozenset(
    {
        Bbr3State.PROBE_BW_DOWN,
        Bbr3State.PROBE_BW_CRUISE,
        Bbr3State.PROBE_BW_REFILL,
        Bbr3State.PROBE_BW_UP,
    }
)
# BBRIsProbingBW(): states in which loss does not cut the short-term model.
PROBING_STATES = frozenset({Bbr3State.STARTUP, Bbr3State.PROBE_BW_REFILL, Bbr3State.PROBE_BW_UP})


class AckPhase(Enum):
    INIT = 0
    PROBE_STARTING = 1
    PROBE_FEEDBACK = 2
    PROBE_STOPPING = 3
    REFILLING = 4
