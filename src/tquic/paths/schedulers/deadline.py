"""deadline: send on the best path; reinject on another path what misses its deadline.

Packets go where ``minrtt`` would put them (the fastest path that can send now,
with its tail rule; ``set_remaining`` is passed on).  Every ack-eliciting
packet gets a deadline when it is sent; if it is neither acknowledged nor
declared lost by then, the scheduler asks the engine to send a copy of its
frames on the fastest *other* path with room (draft-ietf-quic-multipath "PTO
Expiration": "retransmit the content of the delayed packets on other available
paths if the congestion control window on these paths allows"), long before the
PTO of a path that has silently died.

The deadline is ``deadline`` seconds after sending when given (a latency budget
for real-time traffic), else ``rtt_factor * smoothed_rtt + peer_max_ack_delay``
of the path it was sent on.  Each packet is reinjected at most once.  The engine
feeds ``on_packet_sent`` / ``on_packets_acked`` / ``on_packets_lost`` /
``on_path_closed`` and calls ``reinjections`` at ``next_reinjection_time()``.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

from tquic.paths.path import Path
from tquic.paths.schedulers.extended import (
    Reinjection,
    SchedulerBase,
    candidates,
    fastest,
    has_room,
    rtt_of,
)
from tquic.paths.schedulers.minrtt import MinRttScheduler
from tquic.paths.sent_packets import SentPacket

DEFAULT_RTT_FACTOR = 1.5
DEFAULT_MAX_TRACKED = 4096
# When the deadline passes but no other path has room, look again this much later.
RETRY_INTERVAL = 0.005

_Key = tuple[int, int]  # (path ID, packet number)


class DeadlineScheduler(SchedulerBase):
    __slots__ = ("_heap", "_live", "_minrtt", "_seq", "deadline", "max_tracked", "reinjected",
                 "rtt_factor")
    name = "deadline"
    pacing_aware = True

    def __init__(self, deadline: float | None = None, rtt_factor: float = DEFAULT_RTT_FACTOR,
                 max_tracked: int = DEFAULT_MAX_TRACKED) -> None:
        if deadline is not None and not (deadline > 0 and math.isfinite(deadline)):
            raise ValueError(f"deadline: must be a positive number of seconds, got {deadline!r}")
        if not (rtt_factor > 0 and math.isfinite(rtt_factor)):
            raise ValueError(f"rtt_factor: must be > 0, got {rtt_factor!r}")
        if max_tracked < 1:
            raise ValueError(f"max_tracked: must be >= 1, got {max_tracked!r}")
        self.deadline = deadline
        self.rtt_factor = rtt_factor
        self.max_tracked = max_tracked
        self.reinjected = 0
        self._minrtt = MinRttScheduler()
        self._seq = 0
        # Min-heap of (due time, seq, key); entries whose key left _live are stale.
        self._heap: list[tuple[float, int, _Key]] = []
        # Packets still awaiting their fate, oldest first (dict order = send order).
        self._live: dict[_Key, tuple[Path, SentPacket]] = {}

    def deadline_for(self, path: Path) -> float:
        if self.deadline is not None:
            return self.deadline
        return self.rtt_factor * rtt_of(path) + float(path.recovery.peer_max_ack_delay)

    @property
    def tracked(self) -> int:
        return len(self._live)

    @property
    def queued_deadlines(self) -> int:
        """Deadline entries held, stale ones (packets already acknowledged or lost)
        included: at most 2 x ``max_tracked`` + 64 (then the stale ones are dropped)."""
        return len(self._heap)

    # -- choosing -----------------------------------------------------------------------

    def set_remaining(self, remaining: int | None) -> None:
        self._minrtt.set_remaining(remaining)

    def select(self, paths: Sequence[Path], now: float) -> Path | None:
        return self._minrtt.select(paths, now)

    # -- packet fates -------------------------------------------------------------------

    def on_packet_sent(self, path: Path, packet: SentPacket, now: float) -> None:
        if not packet.ack_eliciting:
            return
        key = (path.path_id, packet.packet_number)
        live = self._live
        live[key] = (path, packet)
        if len(live) > self.max_tracked:
            del live[next(iter(live))]  # bounded: the oldest is given up on
        self._seq += 1
        heapq.heappush(self._heap, (packet.time_sent + self.deadline_for(path), self._seq, key))
        if len(self._heap) > 2 * self.max_tracked + 64:
            self._rebuild()

    def on_packets_acked(self, path: Path, packets: Sequence[SentPacket], now: float) -> None:
        self._forget(path, packets)

    def on_packets_lost(self, path: Path, packets: Sequence[SentPacket], now: float) -> None:
        # Loss recovery retransmits these itself; a reinjection would be a third copy.
        self._forget(path, packets)

    def on_path_closed(self, path: Path) -> None:
        pid = path.path_id
        for key in [k for k in self._live if k[0] == pid]:
            del self._live[key]

    def _forget(self, path: Path, packets: Sequence[SentPacket]) -> None:
        live = self._live
        if not live:
            return
        pid = path.path_id
        for packet in packets:
            live.pop((pid, packet.packet_number), None)

    def _rebuild(self) -> None:
        live = self._live
        self._heap = [e for e in self._heap if e[2] in live]
        heapq.heapify(self._heap)

    # -- reinjection --------------------------------------------------------------------

    def next_reinjection_time(self) -> float | None:
        heap, live = self._heap, self._live
        while heap and heap[0][2] not in live:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def reinjections(self, paths: Sequence[Path], now: float) -> list[Reinjection]:
        heap, live = self._heap, self._live
        out: list[Reinjection] = []
        retry: list[tuple[float, int, _Key]] = []
        pool = candidates(paths)
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            key = entry[2]
            tracked = live.get(key)
            if tracked is None:
                continue
            source, packet = tracked
            others = [p for p in pool if p.path_id != source.path_id]
            if not others:
                del live[key]  # nowhere else to send it: plain loss recovery handles it
                continue
            target = fastest([p for p in others if has_room(p)])
            if target is None:
                retry.append((now + RETRY_INTERVAL, entry[1], key))
                continue
            del live[key]
            self.reinjected += 1
            out.append(Reinjection(packet, source, target))
        for item in retry:
            heapq.heappush(heap, item)
        return out
