"""DATAGRAM frames waiting for a packet (RFC 9221), each with an optional path preference.

``QuicConnection.send_datagram(data, path_id=...)`` may name the path a datagram
should leave on: FEC repairs (tquic.bond.fec) want another path than their
sources, so that one lossy link cannot take a block's sources and its repairs
together.  It is a preference, never a guarantee (RFC 9221 §5: DATAGRAM frames
are unreliable and any path may carry them):

- a packet built for path P takes, in order, the datagrams preferring P, then
  those without a preference, then those preferring a path that cannot send now
  (``orphans``: gone, not validated, a backup not in use, or its congestion
  window full) — so a preferred datagram never starves behind a path that will
  not send;
- the multipath send loop builds packets on a path that has datagrams preferring
  it before the scheduler distributes the rest (core/packet_builder.py), within
  that path's window and pacing.

Bounded: at most ``limit`` datagrams in all; when full, the oldest datagram
without a preference goes first (else the oldest of the fullest path's queue).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator

from tquic.core.empty_queue import EMPTY, writable
from tquic.wire.buffer import varint_size

# A 1-RTT packet's overhead at its longest: first byte, 20-byte CID, 4-byte packet
# number (RFC 9000 §17.3.1) and the AEAD tag (RFC 9001 §5.3).
SHORT_PACKET_OVERHEAD = 1 + 20 + 4 + 16


def datagram_payload_limit(frame_limit: int, path_mtu: int, peer_max_udp: int) -> int:
    """The largest DATAGRAM payload that fits one 1-RTT packet (RFC 9221 §5: a
    DATAGRAM frame never spans packets) of ``path_mtu`` bytes, at most the peer's
    ``max_udp_payload_size`` and its ``max_datagram_frame_size`` (``frame_limit``).

    The header is counted at its longest, so the figure does not move with CID
    changes.
    """
    packet = min(path_mtu, peer_max_udp)
    room = min(packet - SHORT_PACKET_OVERHEAD, frame_limit)
    payload = room - 1 - varint_size(room)  # type byte 0x31 and the length varint
    return max(0, payload)


class DatagramQueue:
    """The connection's queued DATAGRAM payloads (see the module docstring)."""

    __slots__ = ("_any", "_by_path", "_count", "_limit", "dropped")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self._limit = limit
        self._any: deque[bytes] = EMPTY  # lazily created: see core/empty_queue.py
        self._by_path: dict[int, deque[bytes]] = {}
        self._count = 0  # datagrams in the preferred queues
        self.dropped = 0  # pushed out by newer ones while the queue was full

    def __len__(self) -> int:
        return len(self._any) + self._count

    def __bool__(self) -> bool:
        return bool(self._any) or self._count > 0

    def __iter__(self) -> Iterator[bytes]:
        yield from self._any
        for queue in self._by_path.values():
            yield from queue

    def push(self, data: bytes, path_id: int | None = None) -> None:
        """Queue ``data``, preferring path ``path_id`` (None: any path)."""
        if len(self) >= self._limit:
            self._drop_oldest()
        if path_id is None:
            self._any = writable(self._any)
            self._any.append(data)
            return
        queue = self._by_path.get(path_id)
        if queue is None:
            queue = self._by_path[path_id] = deque()
        queue.append(data)
        self._count += 1

    def _drop_oldest(self) -> None:
        self.dropped += 1
        if self._any:
            self._any.popleft()
            return
        fullest = max(self._by_path, key=lambda p: len(self._by_path[p]))
        self._by_path[fullest].popleft()
        self._count -= 1
        self.tidy()

    @property
    def has_preferences(self) -> bool:
        """Whether any queued datagram prefers a path."""
        return self._count > 0

    def pending_for(self, path_id: int) -> int:
        """How many datagrams prefer ``path_id``."""
        queue = self._by_path.get(path_id)
        return len(queue) if queue is not None else 0

    def preferred_paths(self) -> list[int]:
        """The path IDs some queued datagram prefers."""
        return list(self._by_path)

    def queues_for(self, path_id: int, orphans: Iterable[int]) -> list[deque[bytes]]:
        """The queues a packet on ``path_id`` takes from, in order (module docstring).
        The caller pops what it sends from their heads, then calls ``tidy``."""
        by_path = self._by_path
        if not by_path:
            return [self._any]
        out: list[deque[bytes]] = []
        own = by_path.get(path_id)
        if own is not None:
            out.append(own)
        out.append(self._any)
        for other in orphans:
            queue = by_path.get(other)
            if queue is not None and other != path_id:
                out.append(queue)
        return out

    def tidy(self) -> None:
        """Recount after the caller popped from ``queues_for``'s queues; forget empty ones."""
        if not self._by_path:
            return
        for path_id in [p for p, q in self._by_path.items() if not q]:
            del self._by_path[path_id]
        self._count = sum(map(len, self._by_path.values()))
