"""Round-trip time estimation for one path (RFC 9002 §5).

Each path keeps its own estimator (RFC 9002 §5.3: "Packets sent on other paths
do not contribute RTT samples to the current path"; draft-ietf-quic-multipath
§"Computing Path RTT").  All times are float seconds; nothing here reads a clock.
"""

from __future__ import annotations

import math

from tquic.cc.base import RttSample

# RFC 9002 §6.1.2 / Appendix A.2: timer granularity.
K_GRANULARITY = 0.001
# RFC 9002 §6.2.2: the initial RTT when nothing better is known.
K_INITIAL_RTT = 0.333


class RttEstimator:
    """latest_rtt, min_rtt, smoothed_rtt and rttvar of one path (RFC 9002 §5)."""

    __slots__ = (
        "has_sample",
        "initial_rtt",
        "latest_rtt",
        "min_rtt",
        "rttvar",
        "smoothed_rtt",
    )

    def __init__(self, initial_rtt: float = K_INITIAL_RTT) -> None:
        if not (initial_rtt > 0 and math.isfinite(initial_rtt)):
            raise ValueError(
                f"initial_rtt must be a positive number of seconds, got {initial_rtt!r}"
            )
        self.initial_rtt = initial_rtt
        self.reset()

    def reset(self, initial_rtt: float | None = None) -> None:
        """Forget every sample (RFC 9000 §9.4 migration; RFC 9002 §5.3 initialisation)."""
        if initial_rtt is not None:
            if not (initial_rtt > 0 and math.isfinite(initial_rtt)):
                raise ValueError(
                    f"initial_rtt must be a positive number of seconds, got {initial_rtt!r}"
                )
            self.initial_rtt = initial_rtt
        # RFC 9002 §5.3: smoothed_rtt = kInitialRtt, rttvar = kInitialRtt / 2.
        self.smoothed_rtt = self.initial_rtt
        self.rttvar = self.initial_rtt / 2
        self.latest_rtt = 0.0
        # RFC 9002 §5.2: min_rtt is defined by the first sample; until then it is
        # infinite so that nothing compares below it.
        self.min_rtt = math.inf
        self.has_sample = False

    def update(
        self,
        latest_rtt: float,
        ack_delay: float,
        handshake_confirmed: bool,
        max_ack_delay: float,
    ) -> None:
        """Fold one RTT sample in (RFC 9002 §5.3 and Appendix A.7 UpdateRtt).

        ``ack_delay`` is the peer's decoded ACK Delay in seconds (pass 0 for the
        Initial space, RFC 9002 §5.3 first bullet); ``max_ack_delay`` is the peer's
        transport parameter in seconds.
        """
        # A clock that runs backwards or a negative delay would poison every later
        # computation; a sample is a duration, so it is never below zero.
        latest_rtt = max(latest_rtt, 0.0)
        ack_delay = max(ack_delay, 0.0)
        self.latest_rtt = latest_rtt
        if not self.has_sample:
            # RFC 9002 §5.2/§5.3: the first sample sets min_rtt and resets the estimator.
            self.has_sample = True
            self.min_rtt = latest_rtt
            self.smoothed_rtt = latest_rtt
            self.rttvar = latest_rtt / 2
            return
        # RFC 9002 §5.2: min_rtt ignores the acknowledgment delay.
        if latest_rtt < self.min_rtt:
            self.min_rtt = latest_rtt
        # RFC 9002 §5.3: the peer's max_ack_delay bounds the delay only once the
        # handshake is confirmed (it may legitimately exceed it before).
        if handshake_confirmed and ack_delay > max_ack_delay:
            ack_delay = max_ack_delay
        # RFC 9002 §5.3: never subtract a delay that would take the sample below min_rtt.
        adjusted = latest_rtt
        if latest_rtt >= self.min_rtt + ack_delay:
            adjusted = latest_rtt - ack_delay
        self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.smoothed_rtt - adjusted)
        self.smoothed_rtt = 0.875 * self.smoothed_rtt + 0.125 * adjusted

    def reset_min_rtt(self) -> None:
        """RFC 9002 §5.2: after persistent congestion, min_rtt restarts at the newest sample."""
        if self.has_sample:
            self.min_rtt = self.latest_rtt

    def pto_base(self) -> float:
        """smoothed_rtt + max(4*rttvar, kGranularity): the PTO without max_ack_delay (§6.2.1)."""
        return self.smoothed_rtt + max(4 * self.rttvar, K_GRANULARITY)

    def sample(self, new_sample: bool = True) -> RttSample:
        """The current state as the value handed to congestion controllers."""
        # Positional: a frozen dataclass built with keywords costs noticeably more,
        # and this runs for every ACK.
        return RttSample(self.latest_rtt, self.smoothed_rtt, self.rttvar, self.min_rtt, new_sample)

    def __repr__(self) -> str:
        return (
            f"RttEstimator(latest={self.latest_rtt:.6f}, smoothed={self.smoothed_rtt:.6f}, "
            f"rttvar={self.rttvar:.6f}, min={self.min_rtt:.6f}, has_sample={self.has_sample})"
        )
