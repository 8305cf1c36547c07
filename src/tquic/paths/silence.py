"""Silent paths: fail over without waiting for a PTO when the other paths prove a link dead.

RFC 9002's probe timeout (§6.2.1: smoothed_rtt + max(4 * rttvar, kGranularity) +
max_ack_delay) is the right clock for a single path, and a slow one for a bond.
Over a link with a deep queue -- an LTE modem holds a thousand packets -- the
smoothed RTT and its variance are inflated by the queue, so a link that dies is
noticed a second or more later; the data it held waits that long, and everything
behind it in the byte stream with it.

A live link with a full queue still delivers at its rate, though, and its ACKs keep
coming every few milliseconds.  What tells a dead link fast is the *silence* of its
ACKs, measured against its own ACK spacing and its unloaded (minimum) RTT -- while
another path's ACKs keep arriving after that silence began, which proves that the
peer, its ACKs and our receive side are alive, so the link is what broke.  (Asking
for ACKs of packets *sent* after the silence began would wait for the survivor's own
queue to drain first: with deep queues, hundreds of milliseconds.)

draft-ietf-quic-multipath §"Path Failure Detection and Recovery" leaves the
detection to the endpoint; this is ours.  A suspect path gets no new data, its
in-flight stream data is sent again on the live paths at once (the originals stay in
flight, so a wrong suspicion costs duplicate bytes, never correctness), and it is
probed.  An ACK on it ends the suspicion; otherwise the PTO rule
(``failover_pto_count``, paths/manager.py) declares it failed as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tquic.paths.sent_packets import SpaceId

if TYPE_CHECKING:
    from collections.abc import Iterable

    from tquic.paths.path import Path

# The silence that makes a path suspect: a few unloaded RTTs plus a few of its usual
# gaps between ACKs, plus the peer's ACK delay, and never less than the floor (radio
# links pause for tens of milliseconds when they are scheduled; that is not death).
SILENCE_FLOOR = 0.1  # seconds
SILENCE_MIN_RTTS = 3.0
SILENCE_ACK_GAPS = 4.0
# An ACK gap longer than this many smoothed RTTs was the path going idle, not its
# ACK clock: it is left out of the spacing average.
MAX_GAP_SRTTS = 1.0
GAP_GAIN = 0.125  # EWMA gain of the ACK spacing, like RFC 9002's smoothed_rtt


def note_ack(path: Path, now: float) -> bool:
    """An ACK acknowledged packets of ``path``: update its ACK clock.  True when it
    ends a suspicion.

    The spacing follows the longest recent gaps (up at once, down slowly): ACKs often
    arrive in bursts, and the average of many near-zero gaps would make the ordinary
    pause between bursts look like a silence."""
    last = path.last_ack_time
    if last is not None:
        gap = now - last
        if gap <= MAX_GAP_SRTTS * path.recovery.rtt.smoothed_rtt:
            spacing = path.ack_spacing
            if spacing is None or gap > spacing:
                path.ack_spacing = gap
            else:
                path.ack_spacing = spacing + GAP_GAIN * (gap - spacing)
    path.last_ack_time = now
    if path.suspect_since is not None:
        path.suspect_since = None
        return True
    return False


def ack_due_since(path: Path) -> float | None:
    """Since when ``path`` owes an ACK (None: nothing in flight).

    Its oldest packet in flight cannot be acknowledged before it has made a whole
    loaded round trip (queues included, also the peer's queue its ACK waits in), and
    while ACKs flow, the next one is due at the latest ACK; the later of the two."""
    recovery = path.recovery
    oldest = recovery.oldest_in_flight_time(SpaceId.APPLICATION)
    if oldest is None:
        return None
    rtt = recovery.rtt
    if rtt.has_sample:
        due = oldest + max(rtt.latest_rtt, rtt.smoothed_rtt)
    else:
        due = oldest + rtt.smoothed_rtt + 4 * rtt.rttvar
    last = path.last_ack_time
    return due if last is None or last < due else last


def silence_threshold(path: Path) -> float:
    """How long after its ACK was due ``path`` may stay silent before it is suspect: a
    few of its usual gaps between ACKs plus a few unloaded RTTs for the ACK's own trip,
    the peer's ACK delay, and never less than the floor (seconds)."""
    rtt = path.recovery.rtt
    min_rtt = rtt.min_rtt if rtt.has_sample else rtt.smoothed_rtt
    wait = SILENCE_MIN_RTTS * min_rtt + SILENCE_ACK_GAPS * (path.ack_spacing or 0.0)
    return max(SILENCE_FLOOR, float(wait)) + float(path.recovery.peer_max_ack_delay)


def silence_deadline(path: Path, paths: Iterable[Path]) -> float | None:
    """When ``path`` becomes suspect if no ACK comes for it, or None when it cannot:
    nothing in flight, already suspect, not validated, or no ACK came on another path
    well after its own was due (then nothing proves the link is to blame: our side, the
    peer or every link may be what stalled).  Called again at every ACK, so a proof
    arriving later brings the deadline back."""
    if path.suspect_since is not None or not path.validated:
        return None
    due = ack_due_since(path)
    if due is None:
        return None
    threshold = silence_threshold(path)
    # The proof: another path's ACK arrived past the middle of this path's allowed
    # silence (one from its very start could be the last before a shared outage).
    proof_after = due + threshold / 2
    for other in paths:  # a loop, not any(generator): asked per path at every timeout
        last = other.last_ack_time
        if (last is not None and last > proof_after and other is not path and other.usable
                and other.validated and other.suspect_since is None):
            return due + threshold
    return None
