"""BBR version 1 as draft-cardwell-iccrg-bbr-congestion-control-00 specifies it.

The model is BBR.BtlBw (a windowed max of delivery-rate samples over 10
round trips, §4.1.1) and BBR.RTprop (the min RTT over 10 seconds, §4.1.2).
The state machine (§4.3) is STARTUP (gain 2/ln2 until the bandwidth stops
growing by 25 % for three rounds), DRAIN (the inverse gain until the queue is
gone), PROBE_BW (an eight-phase pacing-gain cycle 1.25, 0.75, 1 x 6, each phase
one RTprop long) and PROBE_RTT (every 10 s, at least 200 ms and one round with
cwnd at 4 packets).  cwnd = cwnd_gain x BDP (2 x BDP in PROBE_BW) plus a
quantization allowance; the pacing rate is pacing_gain x BtlBw, set directly.
"""

from __future__ import annotations

import math
import random
from enum import Enum

from tquic.cc.bbr_common import BbrBase, RateSample, WindowedMaxFilter, send_quantum

# §4.3.1: the smallest gain that doubles the sending rate every round.
HIGH_GAIN = 2.0 / math.log(2.0)
DRAIN_GAIN = 1.0 / HIGH_GAIN
CWND_GAIN = 2.0  # §4.3.3 PROBE_BW cwnd gain
PACING_GAIN_CYCLE = (1.25, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)  # §4.3.3
BTLBW_FILTER_LEN = 10  # rounds (§4.1.1.1)
RTPROP_FILTER_LEN = 10.0  # seconds (§4.1.2.1)
PROBE_RTT_DURATION = 0.2  # seconds (§4.3.4)
FULL_BW_THRESH = 1.25  # §4.3.1.2
FULL_BW_COUNT = 3


class Bbr1State(Enum):
    STARTUP = "startup"
    DRAIN = "drain"
    PROBE_BW = "probe_bw"
    PROBE_RTT = "probe_rtt"


class Bbr1(BbrBase):
    """BBRv1 (draft-cardwell-iccrg-bbr-congestion-control-00)."""

    __slots__ = (
        "_rng",
        "btlbw_filter",
        "cwnd_gain",
        "cycle_index",
        "cycle_stamp",
        "filled_pipe",
        "full_bw",
        "full_bw_count",
        "idle_restart",
        "pacing_gain",
        "probe_rtt_done_stamp",
        "probe_rtt_round_done",
        "rtprop_expired",
        "state",
        "target_cwnd",
    )

    def __init__(self, max_datagram_size: int, *, seed: int | None = None) -> None:
        super().__init__(max_datagram_size, HIGH_GAIN)
        # Without a seed, draw one from the process-wide generator: still random per
        # flow, and a simulation that seeds ``random`` replays exactly.
        self._rng = random.Random(random.getrandbits(64) if seed is None else seed)
        self.btlbw_filter = WindowedMaxFilter(BTLBW_FILTER_LEN)
        self.filled_pipe = False
        self.full_bw = 0.0
        self.full_bw_count = 0
        self.cycle_index = 0
        self.cycle_stamp = 0.0
        self.probe_rtt_done_stamp = 0.0
        self.probe_rtt_round_done = False
        self.idle_restart = False
        self.rtprop_expired = False
        self.target_cwnd = float(self.initial_cwnd)
        # §4.3.1 BBREnterStartup.
        self.state = Bbr1State.STARTUP
        self.pacing_gain = HIGH_GAIN
        self.cwnd_gain = HIGH_GAIN

    @property
    def btlbw(self) -> float:
        """BBR.BtlBw in bytes per second."""
        return self.btlbw_filter.value

    @property
    def rtprop(self) -> float:
        """BBR.RTprop in seconds (inf before the first sample)."""
        return self.min_rtt

    def _full_bw_reached(self) -> bool:
        return self.filled_pipe

    def _in_probe_rtt(self) -> bool:
        return self.state is Bbr1State.PROBE_RTT

    # -- §4.2 per-ACK update ----------------------------------------------------

    def _update(
        self,
        rs: RateSample,
        bytes_in_flight: int,
        now: float,
        ecn_ce_count: int,
        cwnd_limited: bool,
    ) -> None:
        # BBRUpdateModelAndState
        self._update_btlbw(rs)
        self._check_cycle_phase(rs, bytes_in_flight, now)
        self._check_full_pipe(rs)
        self._check_drain(bytes_in_flight, now)
        self._update_rtprop(rs, now)
        self._check_probe_rtt(rs, bytes_in_flight, now)
        # BBRUpdateControlParameters
        self._set_pacing_rate_with_gain(self.btlbw, self.pacing_gain, 0.0)
        self._set_cwnd(rs, bytes_in_flight)

    def _update_btlbw(self, rs: RateSample) -> None:
        # §4.1.1.4: round counting, then the max filter; app-limited samples only
        # when they raise the estimate.
        self._update_round(rs)
        if rs.valid and (rs.delivery_rate >= self.btlbw or not rs.is_app_limited):
            self.btlbw_filter.update(self.round_count, rs.delivery_rate)

    def _update_rtprop(self, rs: RateSample, now: float) -> None:
        # §4.1.2.3: the expiry is noted before the sample refreshes the stamp, so
        # that BBRCheckProbeRTT still sees it.  An empty filter has not expired: the
        # draft's BBRInit stamps it at Now(), and without a sample the 0.0 stamp made
        # every real connection (whose clock is time since boot) enter ProbeRTT on its
        # first ACK -- 200 ms at 4 packets where Startup belongs, on every new path.
        self.rtprop_expired = (not math.isinf(self.min_rtt)
                               and now > self.min_rtt_stamp + RTPROP_FILTER_LEN)
        if rs.rtt >= 0 and (rs.rtt <= self.min_rtt or self.rtprop_expired):
            self.min_rtt = rs.rtt
            self.min_rtt_stamp = now

    # -- §4.3.1 STARTUP and §4.3.2 DRAIN ---------------------------------------------

    def _check_full_pipe(self, rs: RateSample) -> None:
        # §4.3.1.2 BBRCheckFullPipe.
        if self.filled_pipe or not self.round_start or rs.is_app_limited:
            return
        if self.btlbw >= self.full_bw * FULL_BW_THRESH:
            self.full_bw = self.btlbw
            self.full_bw_count = 0
            return
        self.full_bw_count += 1
        if self.full_bw_count >= FULL_BW_COUNT:
            self.filled_pipe = True

    def _check_drain(self, bytes_in_flight: int, now: float) -> None:
        if self.state is Bbr1State.STARTUP and self.filled_pipe:
            self.state = Bbr1State.DRAIN
            self.pacing_gain = DRAIN_GAIN
            self.cwnd_gain = HIGH_GAIN
        if self.state is Bbr1State.DRAIN and bytes_in_flight <= self._inflight(1.0):
            self._enter_probe_bw(now)

    # -- §4.3.3 PROBE_BW ------------------------------------------------------------

    def _enter_probe_bw(self, now: float) -> None:
        self.state = Bbr1State.PROBE_BW
        self.pacing_gain = 1.0
        self.cwnd_gain = CWND_GAIN
        # Start at a random phase other than the 0.75 one.
        self.cycle_index = len(PACING_GAIN_CYCLE) - 1 - self._rng.randint(0, 6)
        self._advance_cycle_phase(now)

    def _advance_cycle_phase(self, now: float) -> None:
        self.cycle_stamp = now
        self.cycle_index = (self.cycle_index + 1) % len(PACING_GAIN_CYCLE)
        self.pacing_gain = PACING_GAIN_CYCLE[self.cycle_index]

    def _check_cycle_phase(self, rs: RateSample, bytes_in_flight: int, now: float) -> None:
        if self.state is Bbr1State.PROBE_BW and self._is_next_cycle_phase(
            rs, bytes_in_flight, now
        ):
            self._advance_cycle_phase(now)

    def _is_next_cycle_phase(self, rs: RateSample, bytes_in_flight: int, now: float) -> bool:
        # §4.3.3 BBRIsNextCyclePhase; prior_inflight is what was in flight before
        # this ACK.
        is_full_length = now - self.cycle_stamp > self.min_rtt
        prior_inflight = bytes_in_flight + rs.newly_acked
        if self.pacing_gain == 1.0:
            return is_full_length
        if self.pacing_gain > 1.0:
            return is_full_length and (
                rs.newly_lost > 0 or prior_inflight >= self._inflight(self.pacing_gain)
            )
        return is_full_length or prior_inflight <= self._inflight(1.0)

    # -- §4.3.4 PROBE_RTT -------------------------------------------------------------

    def _check_probe_rtt(self, rs: RateSample, bytes_in_flight: int, now: float) -> None:
        if (
            self.state is not Bbr1State.PROBE_RTT
            and self.rtprop_expired
            and not math.isinf(self.min_rtt)
            and not self.idle_restart
        ):
            self.prior_cwnd = self._save_cwnd()
            self._enter_probe_rtt()
            self.probe_rtt_done_stamp = 0.0
        if self.state is Bbr1State.PROBE_RTT:
            self._handle_probe_rtt(bytes_in_flight, now)
        self.idle_restart = False

    def _enter_probe_rtt(self) -> None:
        self.state = Bbr1State.PROBE_RTT
        self.pacing_gain = 1.0
        self.cwnd_gain = 1.0

    def _handle_probe_rtt(self, bytes_in_flight: int, now: float) -> None:
        # Samples taken while draining to 4 packets say nothing about the bottleneck.
        self.sampler.mark_app_limited(bytes_in_flight)
        if self.probe_rtt_done_stamp == 0.0 and bytes_in_flight <= self.min_pipe_cwnd:
            self.probe_rtt_done_stamp = now + PROBE_RTT_DURATION
            self.probe_rtt_round_done = False
            self._start_round()
        elif self.probe_rtt_done_stamp != 0.0:
            if self.round_start:
                self.probe_rtt_round_done = True
            if self.probe_rtt_round_done and now > self.probe_rtt_done_stamp:
                self.min_rtt_stamp = now
                self._restore_cwnd()
                self._exit_probe_rtt(now)

    def _exit_probe_rtt(self, now: float) -> None:
        if self.filled_pipe:
            self._enter_probe_bw(now)
        else:
            self.state = Bbr1State.STARTUP
            self.pacing_gain = HIGH_GAIN
            self.cwnd_gain = HIGH_GAIN

    # -- §4.2.3 cwnd ------------------------------------------------------------------

    def _inflight(self, gain: float) -> float:
        """BBRInflight: gain x BDP plus 3 send quanta for delayed/stretched ACKs."""
        if math.isinf(self.min_rtt):
            return float(self.initial_cwnd)
        quanta = 3 * send_quantum(self._pacing_rate, self.max_datagram_size)
        return self._bdp(self.btlbw, gain) + quanta

    def _set_cwnd(self, rs: RateSample, bytes_in_flight: int) -> None:
        self.target_cwnd = self._inflight(self.cwnd_gain)
        self._modulate_cwnd_for_recovery(rs, bytes_in_flight)
        if not self.packet_conservation:
            if self.filled_pipe:
                self._cwnd = min(self._cwnd + rs.newly_acked, self.target_cwnd)
            elif (
                self._cwnd < self.target_cwnd
                or self.sampler.delivered < self.initial_cwnd
            ):
                self._cwnd += rs.newly_acked
        self._cwnd = max(self._cwnd, float(self.min_pipe_cwnd))
        if self.state is Bbr1State.PROBE_RTT:
            self._cwnd = min(self._cwnd, float(self.min_pipe_cwnd))

    def __repr__(self) -> str:
        return (
            f"Bbr1({self.state.value}, btlbw={self.btlbw:.0f} B/s, rtprop={self.min_rtt:.4f}, "
            f"cwnd={self.congestion_window}, pacing_gain={self.pacing_gain:.2f})"
        )


def create_bbr1(max_datagram_size: int) -> Bbr1:
    return Bbr1(max_datagram_size)
