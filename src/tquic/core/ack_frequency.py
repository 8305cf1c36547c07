"""Asking the peer for fewer ACKs (draft-ietf-quic-ack-frequency, sender side).

When the peer advertised min_ack_delay (§3: it accepts ACK_FREQUENCY and
IMMEDIATE_ACK), a bulk sender asks it to acknowledge every N-th ack-eliciting
packet instead of every second one (RFC 9000 §13.2.2), which halves or better
the ACKs both ends build, protect, send, receive and process:

- Ack-Eliciting Threshold: the congestion window in full-size packets / 8,
  capped at 10 -- several ACKs per window keep the ACK clock and congestion
  control responsive (§"Congestion Control": no larger than the window);
- Requested Max Ack Delay: smoothed_rtt / 4 (§"Congestion Control": no more than
  an RTT, from smoothed_rtt rather than min_rtt), at least the peer's
  min_ack_delay and at most its max_ack_delay transport parameter -- never above
  what our PTO already allows for, so the PTO needs no adjustment (§6: "the
  greater of the current max_ack_delay and the value in flight");
- Reordering Threshold: 3, the loss-detection packet threshold (RFC 9002
  §6.1.1), as §"Setting the Reordering Threshold Value" recommends.

A new frame goes out at most once per smoothed RTT and only when the values
changed enough to matter (§"Congestion Control": "not every change should
trigger an update").  PTO probes carry IMMEDIATE_ACK (§6: avoids the ACK delay
on the probe's acknowledgment).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tquic.paths.path import Path
from tquic.wire.frame_types import AckFrequencyFrame, ImmediateAckFrame

if TYPE_CHECKING:
    from tquic.core.config import QuicConfiguration
    from tquic.wire.params import TransportParameters

MAX_THRESHOLD = 10
WINDOW_FRACTION = 8  # ACKs per congestion window, at least
RTT_FRACTION = 4  # Requested Max Ack Delay = smoothed_rtt / RTT_FRACTION
REORDERING_THRESHOLD = 3  # RFC 9002 §6.1.1 kPacketThreshold
DELAY_HYSTERESIS = 0.25  # a delay change under 25% is not worth a frame


class AckFrequencySender:
    """Decides when to send ACK_FREQUENCY and with which values; no I/O."""

    __slots__ = ("_last", "_next_check", "max_delay_us", "min_delay_us", "sequence_number")

    def __init__(self, peer_min_ack_delay_us: int, peer_max_ack_delay_ms: int) -> None:
        self.min_delay_us = peer_min_ack_delay_us
        self.max_delay_us = max(peer_min_ack_delay_us, peer_max_ack_delay_ms * 1000)
        self.sequence_number = 0
        self._last: tuple[int, int] = (1, self.max_delay_us)  # the RFC 9000 defaults
        self._next_check = 0.0

    def desired(self, cwnd: int, max_datagram_size: int, smoothed_rtt: float) -> tuple[int, int]:
        """(ack-eliciting threshold, requested max ack delay in µs) for these metrics."""
        packets = cwnd // max(1, max_datagram_size)
        threshold = max(1, min(MAX_THRESHOLD, packets // WINDOW_FRACTION))
        delay = int(smoothed_rtt * 1e6 / RTT_FRACTION)
        delay = min(self.max_delay_us, max(self.min_delay_us, delay))
        return threshold, delay

    def update(self, now: float, cwnd: int, max_datagram_size: int,
               smoothed_rtt: float) -> AckFrequencyFrame | None:
        """The frame to send now, if any (at most one per smoothed RTT)."""
        if now < self._next_check:
            return None
        self._next_check = now + smoothed_rtt
        threshold, delay = self.desired(cwnd, max_datagram_size, smoothed_rtt)
        last_threshold, last_delay = self._last
        if threshold == last_threshold and (
                abs(delay - last_delay) <= DELAY_HYSTERESIS * last_delay):
            return None
        self._last = (threshold, delay)
        frame = AckFrequencyFrame(self.sequence_number, threshold, delay, REORDERING_THRESHOLD)
        self.sequence_number += 1
        return frame


class AckFrequency:
    """The connection's ACK-frequency component (the first of issue 16's owned
    components, replacing a mixin): it owns the sender, is told when the
    handshake completes, when an ACK arrives and when a PTO probe goes out, and
    returns the frame to queue, if any.  It reads nothing else of the connection."""

    __slots__ = ("sender",)

    def __init__(self) -> None:
        self.sender: AckFrequencySender | None = None  # None: not in use

    @property
    def active(self) -> bool:
        """Whether ACK_FREQUENCY frames are being sent on this connection."""
        return self.sender is not None

    def start(self, config: QuicConfiguration, peer: TransportParameters | None) -> None:
        """After the handshake: enabled when configured and both sides advertised
        min_ack_delay.  The draft (§3) makes the peer's parameter alone enough, but
        stacks that implemented earlier versions (picoquic) take the frames as
        negotiated only when both sent it and close with FRAME_ENCODING_ERROR
        otherwise: asking for both interoperates with every stack."""
        if (config.request_ack_frequency and config.min_ack_delay is not None
                and peer is not None and peer.min_ack_delay is not None):
            self.sender = AckFrequencySender(peer.min_ack_delay, peer.max_ack_delay)

    def on_ack(self, path: Path, now: float) -> AckFrequencyFrame | None:
        """After an ACK that acknowledged packets on ``path``: maybe another
        acknowledgment rate.  Path 0 (the first path) sets the rate; ACK_FREQUENCY is
        connection-wide."""
        sender = self.sender
        if sender is None or path.path_id != 0:
            return None
        recovery = path.recovery
        return sender.update(now, int(recovery.controller.congestion_window),
                             path.max_datagram_size, recovery.rtt.smoothed_rtt)

    def on_probe(self) -> ImmediateAckFrame | None:
        """A PTO probe is about to go out: IMMEDIATE_ACK asks for its acknowledgment
        without delay (§6)."""
        return ImmediateAckFrame() if self.sender is not None else None
