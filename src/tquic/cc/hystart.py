"""HyStart++ (RFC 9406): leave slow start on an RTT increase, through Conservative Slow Start.

A round (RFC 9406 §4.2) is one window of packets: it starts with
``window_end`` = the largest packet number sent so far and ends when a packet
sent after that is acknowledged.  Within a round the minimum RTT sample is
tracked; when a round's minimum has grown by ``RttThresh`` over the previous
round's, slow start ends and Conservative Slow Start (CSS) begins, growing the
window by a quarter of what slow start would.  If CSS then sees an RTT below its
baseline the exit was spurious and slow start resumes; after ``CSS_ROUNDS``
rounds of CSS the sender enters congestion avoidance.

The sender paces (``tquic.cc.pacer``), so L = infinity (RFC 9406 §4.3: "L =
infinity if paced"): no per-ACK cap on the increase.
"""

from __future__ import annotations

import math
from enum import IntEnum

# RFC 9406 §4.3 constants.
MIN_RTT_THRESH = 0.004
MAX_RTT_THRESH = 0.016
MIN_RTT_DIVISOR = 8
N_RTT_SAMPLE = 8
CSS_GROWTH_DIVISOR = 4
CSS_ROUNDS = 5


class HyStartPhase(IntEnum):
    SLOW_START = 0
    CSS = 1  # Conservative Slow Start
    DONE = 2  # congestion avoidance (or HyStart++ no longer in use)


class HyStartPlusPlus:
    """The HyStart++ state machine; the controller owns the window and asks it how much to grow."""

    __slots__ = (
        "_current_round_min_rtt",
        "_largest_sent",
        "_last_round_min_rtt",
        "_rtt_sample_count",
        "_window_end",
        "css_baseline_min_rtt",
        "css_rounds",
        "phase",
        "rounds",
    )

    def __init__(self) -> None:
        self.phase = HyStartPhase.SLOW_START
        self._largest_sent = -1
        # RFC 9406 §4.2 initialisation.
        self._window_end: int | None = None
        self._last_round_min_rtt = math.inf
        self._current_round_min_rtt = math.inf
        self._rtt_sample_count = 0
        self.css_baseline_min_rtt = math.inf
        self.css_rounds = 0
        self.rounds = 0

    @property
    def in_css(self) -> bool:
        return self.phase == HyStartPhase.CSS

    @property
    def current_round_min_rtt(self) -> float:
        return self._current_round_min_rtt

    @property
    def last_round_min_rtt(self) -> float:
        return self._last_round_min_rtt

    def on_packet_sent(self, packet_number: int) -> None:
        if packet_number > self._largest_sent:
            self._largest_sent = packet_number
        if self._window_end is None:
            # The first round ends when a packet sent after this one is acknowledged.
            self._window_end = packet_number

    def stop(self) -> None:
        """A congestion event (loss or ECN-CE) ends HyStart++ (RFC 9406 §4.2, last paragraph)."""
        self.phase = HyStartPhase.DONE

    def increase(self, acked_bytes: int) -> float:
        """Window growth for ``acked_bytes`` newly acknowledged in slow start or CSS (§4.2)."""
        if self.phase == HyStartPhase.CSS:
            return acked_bytes / CSS_GROWTH_DIVISOR
        return float(acked_bytes)

    def on_ack(self, largest_acked_pn: int, latest_rtt: float, new_sample: bool) -> bool:
        """Feed one ACK; True when the sender must now enter congestion avoidance.

        Call after the growth of this ACK was applied (the growth used the phase
        the ACK arrived in).
        """
        if self.phase == HyStartPhase.DONE:
            return False
        # Round boundary: an ACK for a packet sent after window_end (RFC 9406 §4.2
        # "the round ends when windowEnd is acknowledged").
        if self._window_end is not None and largest_acked_pn > self._window_end:
            self.rounds += 1
            if self.phase == HyStartPhase.CSS:
                self.css_rounds += 1
                if self.css_rounds >= CSS_ROUNDS:
                    # RFC 9406 §4.2: "If CSS_ROUNDS rounds are complete, enter
                    # congestion avoidance by setting the ssthresh to the current cwnd."
                    self.phase = HyStartPhase.DONE
                    return True
            self._last_round_min_rtt = self._current_round_min_rtt
            self._current_round_min_rtt = math.inf
            self._rtt_sample_count = 0
            self._window_end = self._largest_sent
        if not new_sample:
            return False
        # RFC 9406 §4.2: keep track of the minimum observed RTT of this round.
        if latest_rtt < self._current_round_min_rtt:
            self._current_round_min_rtt = latest_rtt
        self._rtt_sample_count += 1
        if self._rtt_sample_count < N_RTT_SAMPLE:
            return False
        if self.phase == HyStartPhase.SLOW_START:
            if math.isinf(self._current_round_min_rtt) or math.isinf(self._last_round_min_rtt):
                return False
            rtt_thresh = max(
                MIN_RTT_THRESH, min(self._last_round_min_rtt / MIN_RTT_DIVISOR, MAX_RTT_THRESH)
            )
            if self._current_round_min_rtt >= self._last_round_min_rtt + rtt_thresh:
                # Delay increase: leave slow start for CSS.
                self.css_baseline_min_rtt = self._current_round_min_rtt
                self.phase = HyStartPhase.CSS
                self.css_rounds = 0
        elif self._current_round_min_rtt < self.css_baseline_min_rtt:
            # RFC 9406 §4.2: the RTT fell below the baseline: the exit was spurious,
            # resume slow start (with HyStart++).
            self.css_baseline_min_rtt = math.inf
            self.phase = HyStartPhase.SLOW_START
            self.css_rounds = 0
        return False
