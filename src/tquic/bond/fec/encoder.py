"""The sending half: frames sources at once, closes blocks, emits repairs (sans-I/O).

``protect(packet, now, path)`` returns the framed source to send now (the code
is systematic: the packet goes out unchanged behind a 4-byte header) and, when
it filled the block, the block's repairs right behind it.  A block also closes
``max_delay`` after its first source, or as soon as the flow pauses (no source
for ``IDLE_FACTOR`` times its usual spacing): a slow flow never waits for k
packets (the deadline bounds the delay a recovered packet can see), and a
burst — a video frame — gets its repairs right behind it, not at the deadline.
A block also closes at once when the flow's next packet is not expected before
the deadline (a call's 2-packet block closes on its second packet), and on a
packet the application marked as the end of its burst (``end``: an RTP marker,
the last packet of a video frame) — its repairs then leave with it, without the
pause's wait and without a timer that a busy event loop fires late.

Repairs leave ``repair_spacing`` after the block closes, then one per source
spacing (``poll``): sent in the same instant as the last source, a small repair
would share its QUIC packet (the packet builder coalesces DATAGRAM frames) and be
lost with it — measured in real time, XOR on a call then recovered almost
nothing on one lossy link.  A repair that cannot share a packet with any source
of a block of several (together over ``SHARED_PACKET`` bytes: video) leaves at
once, without the wait and the timer it costs.  Which
code and how many repairs is the policy's call (policy.py), made when the block
closes, with the paths its sources took; the receiver's feedback about the
block comes back through ``on_feedback`` and feeds the policy's loss statistics.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from dataclasses import dataclass

from tquic.bond.fec import codes, wire
from tquic.bond.fec.loss import PathId
from tquic.bond.fec.policy import RepairPolicy
from tquic.bond.fec.stats import FecStats

IDLE_FACTOR = 4.0
"""A gap this many times the flow's mean spacing (within blocks) ends the block."""
MIN_IDLE = 0.003
"""Seconds: the shortest pause that ends a block — packets handed over by a busy event loop
arrive in clumps, and a frame split into small blocks gets weaker repairs."""
SHARED_PACKET = 1400
"""Bytes of DATAGRAM frames one QUIC packet may carry at most (a 1452-byte path MTU, the
PMTUD default ceiling): a repair and a source together longer than this cannot share a
packet, so the repair needs no spacing from them."""
_FRAMING = 2 * 5 + wire.SOURCE_HEADER
"""Two DATAGRAM frames' type, length, quarter stream ID and Context ID (5 bytes at least
each), and the source's FEC header."""
MARKER_MEMORY = 1.0
"""Seconds: a stream whose sources carried an end-of-burst marker this recently ends its
blocks on markers (and when full, or at the deadline), not on pauses.  A sender's event
loop that stalls for a few ms mid-frame looks like a pause: measured in real time (5
Mbit/s video, 30 frames of 19 packets a second), half the frames were cut in two, each
half with fewer repairs than the frame (0.56 % left instead of 0.27 %)."""
MAX_PENDING_FEEDBACK = 512
"""Closed blocks remembered until their feedback arrives (oldest forgotten first)."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One FEC payload to send on the FEC context ID.

    ``kind`` is ``"source"``, ``"repair"`` or ``"feedback"``; ``path`` is a hint
    for the sender's scheduler (repairs prefer another path than their
    sources); None means any path.
    """

    payload: bytes
    kind: str
    path: PathId = None


class FecEncoder:
    """Blocks of sources on one FEC ``stream`` (wire.py), repairs by ``policy``."""

    __slots__ = ("_block", "_bytes", "_first", "_gap", "_last", "_longest", "_marked",
                 "_max_delay", "_paths", "_pending", "_policy", "_queue", "_queued", "_sent",
                 "_sources", "_spacing", "stream")

    def __init__(self, stream: int, policy: RepairPolicy, max_delay: float = 0.025,
                 repair_spacing: float = 0.002) -> None:
        if not 0 <= stream < wire.MAX_STREAMS:
            raise ValueError(f"stream must be in 0..{wire.MAX_STREAMS - 1}, got {stream}")
        if not max_delay > 0:
            raise ValueError(f"max_delay must be > 0 seconds, got {max_delay}")
        if not 0 <= repair_spacing <= max_delay:
            raise ValueError(f"repair_spacing must be in [0, max_delay], got {repair_spacing}")
        self.stream = stream
        self._policy = policy
        self._spacing = repair_spacing
        self._queue: list[tuple[float, int, Outgoing]] = []  # (due, order, repair)
        self._queued = 0
        self._max_delay = max_delay
        self._block = 0
        self._first = 0.0
        self._last = 0.0
        self._gap = -1.0  # mean spacing of sources (EWMA), seconds; < 0 until measured
        self._marked = -MARKER_MEMORY - 1.0  # when a source last carried an end marker
        self._sources: list[bytes] = []
        self._paths: list[PathId] = []
        self._bytes = 0  # of the open block's sources
        self._longest = 0
        # block id -> paths of its symbols in index order (sources, then repairs)
        self._sent: OrderedDict[int, tuple[PathId, ...]] = OrderedDict()
        # counters: sources, source bytes, repairs, repair bytes, header bytes
        self._pending = [0, 0, 0, 0, 0]

    @property
    def policy(self) -> RepairPolicy:
        return self._policy

    def protect(self, packet: bytes, now: float, path: PathId = None,
                end: bool = False) -> list[Outgoing]:
        """Frame ``packet`` (to be sent on ``path`` if the caller knows it) and return it,
        followed by the block's repairs if it completed the block (``end``: the
        application marked it the last of its burst; the block closes if it is big
        enough for a repair)."""
        if len(packet) > codes.MAX_PAYLOAD:
            raise codes.CodeError(f"packet of {len(packet)} bytes exceeds {codes.MAX_PAYLOAD}")
        out = self._due(now)
        if self._sources:
            gap = now - self._last
            if gap < self._max_delay:
                self._gap = gap if self._gap < 0 else self._gap + (gap - self._gap) / 8.0
            if now >= self._deadline():
                self._close(now)
        self._last = now
        if end:
            self._marked = now
        if not self._sources:
            self._first = now
        index = len(self._sources)
        self._sources.append(packet)
        self._paths.append(path)
        self._bytes += len(packet)
        self._longest = max(self._longest, len(packet))
        p = self._pending
        p[0] += 1
        p[1] += len(packet)
        p[4] += wire.SOURCE_HEADER
        out.append(Outgoing(wire.encode_source(self.stream, self._block, index, packet),
                            "source", path))
        # Full, the burst's end, or the next source is not expected before the
        # deadline: the repairs go now rather than later (a lost packet waits less).
        if len(self._sources) >= self._policy.max_block or (
                (end or (self._gap >= 0 and now + self._gap > self._first + self._max_delay))
                and self._enough()):
            self._close(now)
            out.extend(self._due(now))
        return out

    def _enough(self) -> bool:
        return self._policy.enough(len(self._sources), self._bytes,
                                   self._longest + codes.PREFIX)

    def _deadline(self) -> float:
        deadline = self._first + self._max_delay
        if self._gap < 0 or not self._enough():
            return deadline  # too small for a repair yet: only the deadline closes it
        if self._last - self._marked < MARKER_MEMORY:
            return deadline  # the flow marks its bursts' ends: a pause is a stall
        return min(deadline, self._last + max(MIN_IDLE, IDLE_FACTOR * self._gap))

    def next_timeout(self) -> float | None:
        times = [self._queue[0][0]] if self._queue else []
        if self._sources:
            times.append(self._deadline())
        return min(times) if times else None

    def poll(self, now: float) -> list[Outgoing]:
        """Repairs now due: of a block whose deadline passed (or whose flow paused), and
        those waiting for their spacing."""
        if self._sources and now >= self._deadline():
            self._close(now)
        return self._due(now)  # every repair due, of this block or earlier ones

    def flush(self) -> list[Outgoing]:
        """Close the open block and release every repair now (the tunnel is closing)."""
        if self._sources:
            self._close(self._last)
        out = [o for _, _, o in sorted(self._queue)]
        self._queue.clear()
        return out

    def _due(self, now: float) -> list[Outgoing]:
        queue = self._queue
        out: list[Outgoing] = []
        while queue and queue[0][0] <= now:
            out.append(heapq.heappop(queue)[2])
        return out

    def _close(self, now: float) -> None:
        """Close the block; its repairs are queued (see the module docstring)."""
        sources, paths = self._sources, self._paths
        self._sources, self._paths = [], []
        self._bytes = self._longest = 0
        block = self._block
        self._block = (block + 1) & 0xFFFF
        k = len(sources)
        length = codes.symbol_length(sources)
        plan = self._policy.plan(paths, sum(len(s) for s in sources), length)
        m = plan.m
        if m:
            _, symbols = codes.encode(plan.code, sources, m)
            p = self._pending
            spacing = self._spacing
            if k > 1 and (length + wire.REPAIR_HEADER + min(map(len, sources)) + _FRAMING
                          > SHARED_PACKET):
                # Large packets (video): no repair can share a source's packet.  A copy
                # (redundant, k = 1) keeps its spacing: right behind its source, one burst
                # of loss takes both (simulated Gilbert-Elliott: 0.13 % -> 1.85 % left).
                spacing = 0.0
            step = min(spacing, self._gap) if self._gap >= 0 else spacing
            for j, sym in enumerate(symbols):
                data = wire.encode_repair(self.stream, block, k + j, k, m, plan.code, sym)
                self._queued += 1
                heapq.heappush(self._queue, (now + spacing + j * step, self._queued,
                                             Outgoing(data, "repair", plan.path)))
                p[2] += 1
                p[3] += len(data)
        self._sent[block] = (*paths, *(plan.path for _ in range(m)))
        while len(self._sent) > MAX_PENDING_FEEDBACK:
            self._sent.popitem(last=False)

    def on_feedback(self, frame: wire.FeedbackFrame) -> None:
        """The receiver's view of one block: per-path loss samples for the policy."""
        paths = self._sent.pop(frame.block, None)
        if paths is None:
            return  # unknown or already reported: a duplicate or a forgotten block
        received = frame.received
        for i, path in enumerate(paths):
            self._policy.observe(path, not (i < len(received) and received[i]))

    def stats(self) -> FecStats:
        s, sb, r, rb, h = self._pending
        return FecStats(sources=s, source_bytes=sb, repairs_sent=r, repair_bytes=rb,
                        header_bytes=h)
