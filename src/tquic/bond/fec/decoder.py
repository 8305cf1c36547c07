"""The receiving half: hands sources up at once, rebuilds lost ones from repairs.

Sources are delivered as they arrive (the code is systematic), so FEC adds no
delay to a packet that was not lost.  When a block has k of its k + m symbols
and lacks a source, the missing sources are rebuilt and delivered, in index
order; the bond's reorder stage puts them back among the others by their
sequence numbers.  A block is kept ``hold`` seconds after its first symbol
(later repairs are useless to real-time traffic anyway); then its lost
sources are counted ``unrecoverable`` and a feedback frame tells the sender
which of its symbols arrived.

Nothing a peer sends can make this raise or deliver wrong bytes: a repair that
fails its CRC or disagrees with its block (other k, m, code or symbol length)
is dropped and counted; a source that could not belong to the block (index >= k,
longer than the symbol) stops recovery for that block; a rebuilt symbol whose
length prefix or padding is inconsistent is not delivered.  State is bounded
by ``max_blocks`` per stream.
"""

from __future__ import annotations

from collections import OrderedDict

from tquic.bond.fec import codes, wire

DEFAULT_HOLD = 0.2
DEFAULT_MAX_BLOCKS = 128


class _Block:
    __slots__ = ("broken", "code", "done", "first_seen", "k", "length", "m", "received",
                 "repairs", "sources")

    def __init__(self, now: float) -> None:
        self.first_seen = now
        self.sources: dict[int, bytes] = {}  # received or rebuilt, all delivered
        self.repairs: dict[int, bytes] = {}
        self.received: set[int] = set()  # indexes that actually arrived (for feedback)
        self.k = 0  # 0 until a repair says
        self.m = 0
        self.code = codes.Code.RS
        self.length = 0
        self.broken = False
        self.done = False  # expired: counted and reported


class StreamDecoder:
    """The blocks of one FEC stream."""

    __slots__ = ("_blocks", "_counters", "_feedback", "_gone", "_hold", "_max_blocks", "stream")

    def __init__(self, stream: int, counters: dict[str, int], feedback: list[bytes],
                 hold: float = DEFAULT_HOLD, max_blocks: int = DEFAULT_MAX_BLOCKS) -> None:
        self.stream = stream
        self._hold = hold
        self._max_blocks = max_blocks
        self._blocks: OrderedDict[int, _Block] = OrderedDict()
        # blocks forgotten recently: their stragglers are dropped, not taken for new blocks
        self._gone: OrderedDict[int, None] = OrderedDict()
        self._counters = counters
        self._feedback = feedback

    def _get(self, block: int, now: float) -> _Block | None:
        b = self._blocks.get(block)
        if b is None:
            if block in self._gone:
                self._counters["late"] += 1
                return None
            b = self._blocks[block] = _Block(now)
            while len(self._blocks) > self._max_blocks:
                old_id, old = self._blocks.popitem(last=False)
                self._finish(old_id, old)
                self._forget(old_id)
        return b

    def on_source(self, f: wire.SourceFrame, now: float) -> list[bytes]:
        b = self._get(f.block, now)
        if b is None:
            return []
        if f.index in b.sources:
            self._counters["duplicates"] += 1
            return []
        self._counters["received_sources"] += 1
        b.received.add(f.index)
        b.sources[f.index] = f.packet
        if b.done:
            return [f.packet]  # late, after the block was given up: still a packet
        if b.k and (f.index >= b.k or len(f.packet) + codes.PREFIX > b.length):
            b.broken = True
        return [f.packet, *self._try_decode(b)]

    def on_repair(self, f: wire.RepairFrame, now: float) -> list[bytes]:
        b = self._get(f.block, now)
        if b is None:
            return []
        self._counters["received_repairs"] += 1
        if b.done:
            return []
        if not b.k:
            b.k, b.m, b.code, b.length = f.k, f.m, f.code, len(f.symbol)
            if any(i >= b.k or len(p) + codes.PREFIX > b.length for i, p in b.sources.items()):
                b.broken = True
        elif (f.k, f.m, f.code, len(f.symbol)) != (b.k, b.m, b.code, b.length):
            self._counters["repairs_dropped"] += 1
            return []
        if f.index in b.repairs:
            self._counters["duplicates"] += 1
            return []
        b.received.add(f.index)
        b.repairs[f.index] = f.symbol
        return self._try_decode(b)

    def _try_decode(self, b: _Block) -> list[bytes]:
        if b.broken or not b.k or len(b.sources) >= b.k:
            return []
        if len(b.sources) + len(b.repairs) < b.k:
            return []
        rebuilt = codes.decode(b.code, b.k, b.m, b.length, b.sources, b.repairs)
        if rebuilt is None:
            return []
        out: list[bytes] = []
        for i in sorted(rebuilt):
            packet = codes.unpad(rebuilt[i])
            if packet is None:
                b.broken = True  # inconsistent block: deliver nothing rebuilt from it
                self._counters["repairs_dropped"] += len(b.repairs)
                return []
            b.sources[i] = packet
            out.append(packet)
        self._counters["recovered"] += len(out)
        return out

    def poll(self, now: float) -> None:
        """Give up on blocks older than ``hold``; forget them after twice that (a late
        duplicate of a rebuilt packet is still recognised meanwhile)."""
        hold = self._hold
        for block_id, b in list(self._blocks.items()):
            if now < b.first_seen + hold:
                break
            self._finish(block_id, b)
            if now >= b.first_seen + 2 * hold:
                del self._blocks[block_id]
                self._forget(block_id)

    def _forget(self, block_id: int) -> None:
        gone = self._gone
        gone[block_id] = None
        gone.move_to_end(block_id)
        while len(gone) > 4 * self._max_blocks:
            gone.popitem(last=False)

    def next_timeout(self) -> float | None:
        for b in self._blocks.values():
            if not b.done:
                return b.first_seen + self._hold
        return None

    def _finish(self, block_id: int, b: _Block) -> None:
        if b.done:
            return
        b.done = True
        known = b.k + b.m if b.k else (max(b.received) + 1 if b.received else 0)
        k = b.k if b.k else known
        self._counters["unrecoverable"] += sum(1 for i in range(k) if i not in b.sources)
        if not known:
            return
        received = tuple(i in b.received for i in range(known))
        self._feedback.append(wire.encode_feedback(self.stream, block_id, received))
        self._counters["feedback_sent"] += 1
