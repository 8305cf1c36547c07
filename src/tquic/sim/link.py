"""Simulated links: a :class:`Pipe` per direction, a :class:`Link` per address pair.

A pipe is the model of one direction of a bottleneck: admission (outage,
random and bursty loss), a drop-tail queue in front of a serialiser running at
the link rate, then propagation delay with jitter, optional reordering and
corruption.  Each datagram costs one event on the loop (its arrival): the
serialiser is modelled analytically by the time it becomes free, so a busy
link adds no per-byte or per-tick work.

A link joins two pipes (up = client→server, down = server→client) to a client
and a server address, and models the NAT in front of the client (rebinding).
Two links may share pipes: that is how cross traffic or a second address on the
same access network compete for the same queue.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from tquic.paths.network_path import Address, NetworkPath
from tquic.sim.clock import EventLoop
from tquic.sim.profile import LinkProfile, LinkSpec

DROP_CAUSES = ("loss", "queue", "outage", "corruption", "nat")
"""Why a datagram did not reach its receiver intact.  "corruption" counts
datagrams delivered with flipped bits (the receiver must discard them); "nat"
counts replies sent to a client address whose NAT binding is gone."""


class Receiver(Protocol):
    """What a pipe hands arriving datagrams to (an endpoint driver)."""

    def deliver(self, data: bytes, network_path: NetworkPath, ecn: int = 0) -> None: ...


@dataclass(frozen=True, slots=True)
class PipeStats:
    """Counters of one direction of a link, frozen for a report."""

    offered: int
    offered_bytes: int
    delivered: int
    delivered_bytes: int
    dropped: tuple[tuple[str, int], ...]  # (cause, count) for every cause in DROP_CAUSES
    ce_marked: int = 0  # datagrams the AQM marked CE instead of queueing them further
    bleached: int = 0  # datagrams whose ECN field the link cleared

    def drops(self, cause: str) -> int:
        return dict(self.dropped)[cause]

    @property
    def total_dropped(self) -> int:
        return sum(n for _, n in self.dropped)


class Pipe:
    """One direction of a link (see the module docstring for the model)."""

    __slots__ = (
        "_busy_until",
        "_ge_bad",
        "_last_arrival",
        "_loop",
        "_queue",
        "_queued_bytes",
        "_rng",
        "bleached",
        "ce_marked",
        "delivered",
        "delivered_bytes",
        "dropped",
        "name",
        "offered",
        "offered_bytes",
        "profile",
    )

    def __init__(self, loop: EventLoop, profile: LinkProfile, rng: random.Random, name: str) -> None:
        self._loop = loop
        self.profile = profile
        self._rng = rng
        self.name = name
        self._busy_until = 0.0
        self._last_arrival = 0.0
        self._ge_bad = False
        # (departure time, wire size) of every datagram waiting or being serialised
        self._queue: deque[tuple[float, int]] = deque()
        self._queued_bytes = 0
        self.offered = 0
        self.offered_bytes = 0
        self.delivered = 0
        self.delivered_bytes = 0
        self.dropped = dict.fromkeys(DROP_CAUSES, 0)
        self.ce_marked = 0
        self.bleached = 0

    def stats(self) -> PipeStats:
        return PipeStats(
            self.offered, self.offered_bytes, self.delivered, self.delivered_bytes,
            tuple((c, self.dropped[c]) for c in DROP_CAUSES), self.ce_marked, self.bleached,
        )

    def queue_delay(self, now: float) -> float:
        """Seconds a datagram entering now waits before its serialisation starts."""
        return max(0.0, self._busy_until - now)

    def queue_length(self, now: float) -> int:
        """Datagrams waiting or being serialised at ``now``."""
        self._drain(now)
        return len(self._queue)

    def _drain(self, now: float) -> None:
        q = self._queue
        while q and q[0][0] <= now:
            self._queued_bytes -= q.popleft()[1]

    def offer(self, data: bytes, receiver: Receiver, network_path: NetworkPath,
              ecn: int = 0) -> bool:
        """The sender puts ``data`` on the link now, with ``ecn`` in its IP header's ECN
        field (0 Not-ECT, 1 ECT(1), 2 ECT(0), 3 CE); True if it was not dropped on entry."""
        now = self._loop.now
        p = self.profile
        rng = self._rng
        size = len(data)
        self.offered += 1
        self.offered_bytes += size
        if p.outages and p.down_during(now):
            self.dropped["outage"] += 1
            return False
        if p.loss and rng.random() < p.loss:
            self.dropped["loss"] += 1
            return False
        ge = p.bursty
        if ge is not None:
            # Gilbert-Elliott: decide with the current state, then move the chain.
            lost = rng.random() < (ge.loss_bad if self._ge_bad else ge.loss_good)
            if self._ge_bad:
                if rng.random() < ge.r:
                    self._ge_bad = False
            elif rng.random() < ge.p:
                self._ge_bad = True
            if lost:
                self.dropped["loss"] += 1
                return False
        departure = now
        queue_delay = 0.0
        if p.rate_bps is not None:
            wire = size + p.overhead_bytes
            self._drain(now)
            if (p.queue_packets is not None and len(self._queue) >= p.queue_packets) or (
                p.queue_bytes is not None and self._queued_bytes + wire > p.queue_bytes
            ):
                self.dropped["queue"] += 1
                return False
            queue_delay = self._busy_until - now  # before this datagram is serialised
            departure = max(now, self._busy_until) + wire * 8.0 / p.rate_bps
            self._busy_until = departure
            self._queue.append((departure, wire))
            self._queued_bytes += wire
        delay = p.delay
        if p.jitter:
            delay = max(0.0, delay + rng.uniform(-p.jitter, p.jitter))
        arrival = departure + delay
        if p.reorder and rng.random() < p.reorder:
            arrival += p.reorder_delay  # held back: later datagrams overtake it
        elif not p.jitter_reorders:
            # FIFO: jitter never lets a datagram overtake an earlier one.
            if arrival < self._last_arrival:
                arrival = self._last_arrival
            self._last_arrival = arrival
        if p.corrupt and rng.random() < p.corrupt and size:
            flipped = bytearray(data)
            for _ in range(p.corrupt_bits):
                bit = rng.randrange(size * 8)
                flipped[bit >> 3] ^= 1 << (bit & 7)
            data = bytes(flipped)
            self.dropped["corruption"] += 1
        if ecn and p.ecn != "none":
            ecn = self._mark(ecn, queue_delay)
        self._loop.call_at(arrival, self._arrive, (data, receiver, network_path, ecn))
        return True

    def _mark(self, ecn: int, queue_delay: float) -> int:
        """The ECN field after this bottleneck's AQM (see LinkProfile.ecn)."""
        p = self.profile
        mode = p.ecn
        if mode == "bleach":
            self.bleached += 1
            return 0
        if ecn == 3:
            return 3  # CE stays CE (RFC 3168 §5)
        # RFC 9332: a shallow step for L4S (ECT(1)); classic marks where an AQM
        # would otherwise drop early (RFC 3168 §5).
        threshold = p.l4s_threshold if mode == "l4s" and ecn == 1 else p.ecn_threshold
        if queue_delay > threshold:
            self.ce_marked += 1
            return 3
        return ecn

    def _arrive(self, item: tuple[bytes, Receiver, NetworkPath, int]) -> None:
        data, receiver, network_path, ecn = item
        self.delivered += 1
        self.delivered_bytes += len(data)
        if ecn:
            receiver.deliver(data, network_path, ecn)
        else:
            receiver.deliver(data, network_path)


@dataclass(frozen=True, slots=True)
class LinkStats:
    """Counters of one link (both directions), frozen for a report."""

    name: str
    client: Address
    server: Address
    up: PipeStats
    down: PipeStats


class Link:
    """A client address and a server address joined by an up and a down pipe.

    The NAT in front of the client: ``external(now)`` is the client's address as
    the server sees it; each :class:`~tquic.sim.profile.Rebind` changes it at its
    time.  The addresses are fixed when the link is built (random ports drawn
    then), so they do not depend on traffic.
    """

    __slots__ = ("_externals", "client", "down", "name", "server", "spec", "up")

    def __init__(
        self, spec: LinkSpec, up: Pipe, down: Pipe, rng: random.Random, name: str
    ) -> None:
        self.spec = spec
        self.up = up
        self.down = down
        self.client = spec.client
        self.server = spec.server
        self.name = name
        externals: list[tuple[float, Address]] = [(0.0, spec.client)]
        host, port = spec.client
        for rb in spec.rebinds:
            new_host = rb.host if rb.host is not None else host
            new_port = rb.port if rb.port is not None else port
            if rb.host is None and rb.port is None:
                while new_port == port:
                    new_port = rng.randrange(1024, 65536)
            host, port = new_host, new_port
            externals.append((rb.at, (host, port)))
        self._externals = externals

    @property
    def external_addresses(self) -> tuple[Address, ...]:
        """Every address the server may see for this link's client, in time order."""
        return tuple(a for _, a in self._externals)

    def external(self, now: float) -> Address:
        """The client's address as the server sees it at ``now``."""
        externals = self._externals
        if len(externals) == 1:
            return externals[0][1]
        current = externals[0][1]
        for at, addr in externals:
            if at > now:
                break
            current = addr
        return current

    def stats(self) -> LinkStats:
        return LinkStats(self.name, self.client, self.server, self.up.stats(), self.down.stats())
