"""The extended scheduler interface: optional methods with defaults, and path-state helpers.

The core protocol (``tquic.paths.schedulers.Scheduler``) is one method,
``select(paths, now) -> Path | None``.  Some schedulers need more from the
engine (docs/schedulers.md says exactly what the engine calls and when):

- ``select_many(paths, now) -> list[Path]``: the paths ONE packet goes on.  The
  first is the primary (what ``select`` would return); every further path gets
  a copy of the packet's retransmittable frames (redundant scheduling for
  real-time traffic).
- ``set_send_state(backlog_bytes, send_window)``: how much the application has
  queued and the connection-level send window (BLEST and ECF need them; the
  MPTCP papers read the socket's send buffer and window).
- ``on_packet_sent`` / ``on_packets_acked`` / ``on_packets_lost`` /
  ``on_path_closed``: what happened to ack-eliciting 1-RTT packets.
- ``reinjections(paths, now) -> list[Reinjection]`` and
  ``next_reinjection_time()``: copies of still-unacknowledged packets to send
  on another path now, and when to ask again (the deadline scheduler).

A scheduler may implement any subset.  :class:`SchedulerBase` gives every
default (inherit from it), and :class:`SchedulerHooks` wraps any object that
only has ``select`` so the engine can call the whole interface without
``getattr`` on the per-packet path.

What "select returns a path" means (the engine's send loop, core/packet_builder):
the engine builds the next datagram on the returned path; if that path's
congestion window is full it can only carry frames that are not congestion
controlled (ACKs) and the loop stops.  So a scheduler that wants to *wait* for
a path (BLEST, ECF) returns that full path, and ``None`` is only for "no path
at all".  Pacing: a path whose pacer holds packets back cannot send at this
instant.  A scheduler with ``pacing_aware = True`` (every built-in) sees that
through ``ready(path, now)`` and either picks another path or returns the paced
one, which means "wait for it" (the engine sleeps until the pacer releases it).
For a scheduler without the flag the engine skips a paced-out path and asks
again among the others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tquic.paths.path import Path
from tquic.paths.sent_packets import SentPacket

__all__ = [
    "Reinjection",
    "SchedulerBase",
    "SchedulerHooks",
    "candidates",
    "fastest",
    "forward_delay",
    "has_room",
    "paced_until",
    "ready",
    "rtt_of",
    "rttvar_of",
    "wait_for",
]


@dataclass(frozen=True, slots=True)
class Reinjection:
    """Send a copy of ``packet``'s retransmittable frames (sent on ``source``) on ``target``.

    The original stays in flight on ``source``: it is neither lost nor acknowledged
    by this (draft-ietf-quic-multipath "Retransmissions", strategy b; "PTO
    Expiration": retransmit delayed packets on other paths).  Whichever copy is
    acknowledged first completes the frames.
    """

    packet: SentPacket
    source: Path
    target: Path


# -- per-path state every scheduler reads ---------------------------------------------


def has_room(path: Path) -> bool:
    """A full-sized datagram fits in the path's congestion window (RFC 9002 §7)."""
    return bool(path.recovery.can_send(path.max_datagram_size))


def paced_until(path: Path, now: float) -> float:
    """When the path's pacer lets a full-sized datagram leave (``now`` if it may now).

    RFC 9002 §7.7: a path sending at its pacing rate holds packets back between
    sends even with window room.  Read-only for the scheduler: the pacer's rate is
    the one it was last given, its tokens are only topped up to ``now``."""
    pacer = getattr(path.recovery, "pacer", None)
    if pacer is None:
        return now
    return float(pacer.next_send_time(now, path.max_datagram_size))


def ready(path: Path, now: float) -> bool:
    """The path can send a full-sized datagram at this instant: window room AND its
    pacer is not holding packets back (a paced-out path is unavailable until
    ``paced_until``; a scheduler then picks another path or waits for it)."""
    return bool(path.recovery.can_send(path.max_datagram_size)) and (
        paced_until(path, now) <= now)


def wait_for(paths: Sequence[Path], now: float) -> Path | None:
    """When no path can send at this instant: the path with window room whose pacer
    frees it first (returning it arms the engine's pacing timer), else the fastest
    (whose window an ACK will open)."""
    soonest: Path | None = None
    soonest_at = float("inf")
    for p in paths:
        if p.recovery.can_send(p.max_datagram_size):
            at = paced_until(p, now)
            if at < soonest_at:
                soonest, soonest_at = p, at
    return soonest if soonest is not None else fastest(paths)


def forward_delay(path: Path) -> float:
    """Estimated one-way delay of a packet sent now on ``path``: the smoothed RTT
    minus half the minimum RTT (the queue the path builds is on the sending side;
    the base delay is assumed symmetric)."""
    rtt = path.recovery.rtt
    srtt = float(rtt.smoothed_rtt)
    if not rtt.has_sample:
        return srtt
    return max(srtt - float(rtt.min_rtt) / 2.0, srtt / 2.0)


def rtt_of(path: Path) -> float:
    """Smoothed RTT (RFC 9002 §5.3; kInitialRtt until the first sample)."""
    return float(path.recovery.rtt.smoothed_rtt)


def rttvar_of(path: Path) -> float:
    return float(path.recovery.rtt.rttvar)


def candidates(paths: Sequence[Path]) -> Sequence[Path]:
    """Validated paths if there are any, else all (a lone path still being validated
    is all there is; the engine enforces its anti-amplification budget)."""
    for p in paths:
        if not p.validated:
            break
    else:
        return paths
    validated = [p for p in paths if p.validated]
    return validated if validated else paths


def fastest(paths: Sequence[Path]) -> Path | None:
    """The path with the lowest smoothed RTT (ties: lowest path ID, i.e. first seen)."""
    best: Path | None = None
    best_rtt = float("inf")
    for p in paths:
        rtt = p.recovery.rtt.smoothed_rtt
        if rtt < best_rtt:
            best, best_rtt = p, rtt
    return best


def fast_or_slow(paths: Sequence[Path], now: float) -> tuple[Path | None, Path | None]:
    """The choice a fastest-first scheduler (BLEST, ECF) weighs at this instant.

    ``(path, None)`` when it is already made: the only path, the fastest path if it can
    send now, or the path to wait for if none can.  Else ``(fast, slow)``: the fastest
    path cannot send now, and ``slow``, the fastest of those that can, could go instead.
    """
    if len(paths) <= 1:
        return (paths[0] if paths else None), None
    pool = candidates(paths)
    fast = fastest(pool)
    if fast is None or ready(fast, now):
        return fast, None
    slow = fastest([p for p in pool if ready(p, now)])
    if slow is None:
        return wait_for(pool, now), None
    return fast, slow


# -- defaults -------------------------------------------------------------------------


class SchedulerBase:
    """Every optional method with its default.  Subclasses override ``select`` at least."""

    __slots__ = ()
    name = "base"
    # True: select() treats a path whose pacer holds packets as unavailable (see
    # ``ready``) and returning such a path means "wait for it".
    pacing_aware = False

    def select(self, paths: Sequence[Path], now: float) -> Path | None:
        raise NotImplementedError

    def select_many(self, paths: Sequence[Path], now: float) -> list[Path]:
        path = self.select(paths, now)
        return [] if path is None else [path]

    def still_selects(self, paths: Sequence[Path], now: float, path: Path) -> bool:
        """Whether ``select(paths, now)`` would return ``path`` again, where ``path`` is
        what select returned last, for these very ``paths`` at this ``now``, and the
        only change since is one packet sent on it (the send loop asks this after each
        packet of a stream train).  False: the engine calls ``select``.  A scheduler
        answers True only when it can tell cheaply, and only for the same answer."""
        return False

    def set_send_state(self, backlog_bytes: int | None, send_window: int | None) -> None:
        """Bytes the application has queued to send (None: unknown) and the connection's
        send window (flow control, None: unknown)."""

    def set_remaining(self, remaining: int | None) -> None:
        """Bytes left before the end of everything queued, when that end is known
        (every stream with data queued has its FIN written, no DATAGRAM queued); None
        while the application may still add more (a streaming sender)."""

    def on_packet_sent(self, path: Path, packet: SentPacket, now: float) -> None:
        """An ack-eliciting 1-RTT packet left on ``path``."""

    def on_packets_acked(self, path: Path, packets: Sequence[SentPacket], now: float) -> None:
        """Packets of ``path`` newly acknowledged (``AckOutcome.acked``)."""

    def on_packets_lost(self, path: Path, packets: Sequence[SentPacket], now: float) -> None:
        """Packets of ``path`` declared lost (``AckOutcome.lost``, ``TimeoutOutcome.lost``)."""

    def on_path_closed(self, path: Path) -> None:
        """``path`` was abandoned; forget its packets (the engine reinjects them itself)."""

    def reinjections(self, paths: Sequence[Path], now: float) -> list[Reinjection]:
        return []

    def next_reinjection_time(self) -> float | None:
        return None


_BASE = SchedulerBase()


class SchedulerHooks:
    """The full interface over any scheduler, with defaults bound once.

    The engine builds one per connection (``SchedulerHooks(path_manager.scheduler)``)
    and calls its attributes; a scheduler that lacks a method gets the default.
    """

    __slots__ = (
        "next_reinjection_time",
        "on_packet_sent",
        "on_packets_acked",
        "on_packets_lost",
        "on_path_closed",
        "pacing_aware",
        "picks_one",
        "reinjections",
        "scheduler",
        "select",
        "select_many",
        "set_remaining",
        "set_send_state",
        "still_selects",
        "tracks_packets",
    )

    def __init__(self, scheduler: Any) -> None:
        self.scheduler = scheduler
        self.select: Callable[[Sequence[Path], float], Path | None] = scheduler.select
        many = getattr(scheduler, "select_many", None)
        if many is None:
            def many(paths: Sequence[Path], now: float) -> list[Path]:
                path = scheduler.select(paths, now)
                return [] if path is None else [path]
        self.select_many: Callable[[Sequence[Path], float], list[Path]] = many
        # select_many is select's answer as a list (no copies): the engine asks select
        # itself, one call less per packet.
        own = getattr(scheduler, "select_many", None)
        self.picks_one = own is None or getattr(own, "__func__", None) is SchedulerBase.select_many
        self.still_selects: Callable[[Sequence[Path], float, Path], bool] = getattr(
            scheduler, "still_selects", _BASE.still_selects)
        self.set_send_state: Callable[[int | None, int | None], None] = getattr(
            scheduler, "set_send_state", _BASE.set_send_state)
        self.set_remaining: Callable[[int | None], None] = getattr(
            scheduler, "set_remaining", _BASE.set_remaining)
        # A pacing-aware scheduler decides itself between another path and waiting for
        # a paced-out one; for any other the engine skips a paced path and asks again.
        self.pacing_aware = bool(getattr(scheduler, "pacing_aware", False))
        self.on_packet_sent: Callable[[Path, SentPacket, float], None] = getattr(
            scheduler, "on_packet_sent", _BASE.on_packet_sent)
        self.on_packets_acked: Callable[[Path, Sequence[SentPacket], float], None] = getattr(
            scheduler, "on_packets_acked", _BASE.on_packets_acked)
        self.on_packets_lost: Callable[[Path, Sequence[SentPacket], float], None] = getattr(
            scheduler, "on_packets_lost", _BASE.on_packets_lost)
        self.on_path_closed: Callable[[Path], None] = getattr(
            scheduler, "on_path_closed", _BASE.on_path_closed)
        self.reinjections: Callable[[Sequence[Path], float], list[Reinjection]] = getattr(
            scheduler, "reinjections", _BASE.reinjections)
        self.next_reinjection_time: Callable[[], float | None] = getattr(
            scheduler, "next_reinjection_time", _BASE.next_reinjection_time)
        # The engine may skip the per-packet notifications when nobody listens.
        sent = getattr(type(scheduler), "on_packet_sent", None)
        self.tracks_packets = sent is not None and sent is not SchedulerBase.on_packet_sent
