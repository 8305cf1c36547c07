"""The probe timeout of one path (RFC 9002 §6.2, Appendix A.8): when it fires, in which
packet-number space, its exponential backoff, and the persistent-congestion duration.

Functions of the live packet-number spaces and the figures the caller passes in
(RTT estimator, PTO count, the peer's max_ack_delay, whether the handshake is
confirmed); :class:`~tquic.paths.recovery.PathRecovery` keeps that state and
builds its loss-detection timer from them.  Nothing here changes anything.
"""

from __future__ import annotations

from tquic.paths.loss_detection import K_PERSISTENT_CONGESTION_THRESHOLD
from tquic.paths.rtt import RttEstimator
from tquic.paths.sent_packets import PacketSpace, SpaceId

__all__ = [
    "MAX_PTO_BACKOFF_EXPONENT",
    "anti_deadlock_space",
    "persistent_congestion_duration",
    "pto_backoff",
    "pto_time_and_space",
]

# The PTO backoff exponent is capped so that 2**pto_count stays a sane float; the
# idle timeout ends the connection long before (RFC 9002 §6.2.1).
MAX_PTO_BACKOFF_EXPONENT = 24


def pto_backoff(pto_count: int) -> float:
    """2 ** pto_count (RFC 9002 §6.2.1), capped."""
    if not pto_count:
        return 1.0  # the usual case, asked on every timer computation
    return float(2 ** min(pto_count, MAX_PTO_BACKOFF_EXPONENT))


def pto_time_and_space(spaces: tuple[PacketSpace, ...], rtt: RttEstimator, pto_count: int,
                       peer_max_ack_delay: float, handshake_confirmed: bool
                       ) -> tuple[float | None, SpaceId]:
    """RFC 9002 Appendix A.8 GetPtoTimeAndSpace over the live ``spaces``, for a path with
    ack-eliciting packets in flight (the caller handles the anti-deadlock PTO)."""
    backoff = pto_backoff(pto_count)
    duration = rtt.pto_base() * backoff
    pto_time: float | None = None
    pto_space = SpaceId.INITIAL
    for space in spaces:
        if space.ack_eliciting_in_flight == 0 or space.time_of_last_ack_eliciting is None:
            continue
        if space.space == SpaceId.APPLICATION:
            # §6.2.1: no Application Data PTO before handshake confirmation; then
            # max_ack_delay counts (with the backoff).
            if not handshake_confirmed:
                break
            duration += peer_max_ack_delay * backoff
        t = space.time_of_last_ack_eliciting + duration
        if pto_time is None or t < pto_time:
            pto_time = t
            pto_space = space.space
    return pto_time, pto_space


def anti_deadlock_space(has_handshake_keys: bool, handshake: PacketSpace) -> SpaceId:
    """RFC 9002 §6.2.2.1: the client's anti-deadlock probe is a Handshake packet if it has
    Handshake keys, else a padded Initial."""
    if has_handshake_keys and not handshake.discarded:
        return SpaceId.HANDSHAKE
    return SpaceId.INITIAL


def persistent_congestion_duration(rtt: RttEstimator, peer_max_ack_delay: float) -> float:
    """RFC 9002 §7.6.1, max_ack_delay included whatever the space."""
    return (rtt.pto_base() + peer_max_ack_delay) * K_PERSISTENT_CONGESTION_THRESHOLD
