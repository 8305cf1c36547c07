"""Tiny sans-I/O endpoints for testing the simulator itself (no QUIC).

- :class:`Blaster` sends ``count`` numbered datagrams of ``size`` bytes, one
  every ``interval`` seconds (all at once when 0), and records what comes back.
- :class:`Echo` records every datagram it receives and, when ``echo`` is set,
  sends it back to the address it came from.

Each datagram carries its sequence number, its send time and a CRC-32 of the
rest, so the receiver can tell a corrupted one apart.  Both emit a
:class:`Received` event per datagram; :class:`BlastWorkload` turns those into
deliveries and finishes when the last datagram has arrived.
"""

from __future__ import annotations

import struct
import zlib
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tquic.paths.network_path import NetworkPath
from tquic.sim.protocols import Side

if TYPE_CHECKING:
    from tquic.sim.runner import Flow

_HEADER = struct.Struct(">IQd")  # crc32 of the rest, sequence number, send time
MIN_SIZE = _HEADER.size


@dataclass(frozen=True, slots=True)
class Received:
    seq: int
    sent_at: float
    received_at: float
    size: int
    network_path: NetworkPath
    corrupted: bool


def make_datagram(seq: int, sent_at: float, size: int) -> bytes:
    body = struct.pack(">Qd", seq, sent_at) + bytes(size - MIN_SIZE)
    return struct.pack(">I", zlib.crc32(body)) + body


def parse_datagram(data: bytes, now: float, network_path: NetworkPath) -> Received:
    if len(data) < MIN_SIZE:
        return Received(-1, 0.0, now, len(data), network_path, True)
    crc, seq, sent_at = _HEADER.unpack_from(data)
    ok = zlib.crc32(data[4:]) == crc
    return Received(seq, sent_at, now, len(data), network_path, not ok)


class Echo:
    """Receives, records, and optionally echoes back to the sender's address."""

    def __init__(self, echo: bool = False) -> None:
        self.echo = echo
        self.received: list[Received] = []
        self._events: deque[Received] = deque()
        self._out: list[tuple[bytes, NetworkPath]] = []

    def receive_datagram(self, data: bytes, network_path: NetworkPath, now: float,
                         ecn: int = 0) -> None:
        rec = parse_datagram(data, now, network_path)
        self.received.append(rec)
        self._events.append(rec)
        if self.echo:
            self._out.append((data, network_path))

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, NetworkPath]]:
        out, self._out = self._out, []
        return out

    def next_timeout(self) -> float | None:
        return None

    def handle_timeout(self, now: float) -> None:
        return None

    def next_event(self) -> object | None:
        return self._events.popleft() if self._events else None


class Blaster(Echo):
    """Sends ``count`` datagrams on ``network_path``, paced at ``interval``."""

    def __init__(
        self,
        network_path: NetworkPath,
        count: int,
        size: int = 1200,
        interval: float = 0.0,
        start: float = 0.0,
    ) -> None:
        super().__init__(echo=False)
        if size < MIN_SIZE:
            raise ValueError(f"size: must be >= {MIN_SIZE}, got {size}")
        self.network_path = network_path
        self.count = count
        self.size = size
        self.interval = interval
        self.next_send = start
        self.sent = 0
        self.send_times: list[float] = []

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, NetworkPath]]:
        out = super().datagrams_to_send(now)
        while self.sent < self.count and self.next_send <= now:
            out.append((make_datagram(self.sent, now, self.size), self.network_path))
            self.send_times.append(now)
            self.sent += 1
            self.next_send += self.interval
        return out

    def next_timeout(self) -> float | None:
        return self.next_send if self.sent < self.count else None


class BlastWorkload:
    """Counts intact datagrams at ``sink`` as deliveries; done after ``expect`` of them."""

    direction = "up"

    def __init__(self, expect: int, sink: Side = Side.SERVER) -> None:
        self.expect = expect
        self.sink = sink
        self.intact = 0
        self._flow: Flow | None = None

    def start(self, flow: Flow) -> None:
        self._flow = flow

    def on_event(self, side: Side, event: object) -> None:
        flow = self._flow
        if flow is None or side is not self.sink or not isinstance(event, Received):
            return
        if not event.corrupted:
            self.intact += 1
            flow.record_delivery(event.size)
            if self.intact >= self.expect:
                flow.finish()
