"""Two engines in memory with explicit time: a client and a server ``QuicConnection``
joined by links, for tests and examples of the sans-I/O engine (DESIGN.md "The
sans-I/O contract").  No sockets, no threads, no clock: time moves only when the
harness moves it.

    pair = EnginePair.connected(client_config, server_config)
    sid = pair.client.open_stream()
    pair.client.send_stream_data(sid, b"hello", end_stream=True)
    pair.run_until(lambda: pair.received(sid)[1], timeout=2.0)   # raises on timeout
    pair.advance(0.5)                                            # half a second later

Every datagram goes where the engine said (the NetworkPath ``datagrams_to_send``
returned).  Links are keyed by the client's local address, so a path opened from
another local address travels over its own link, with its own one-way delay, rate
(serialised FIFO per direction), drop rule and ECN rule -- or with a ``tquic.sim``
LinkProfile (jitter, random or bursty loss, a bounded queue, outages, AQM marking),
whose random draws come from the pair's ``seed``:

    pair = EnginePair.connected(cc, sc, links={CLIENT_ADDR: Link(profile=LinkProfile(
        rate_bps=20e6, delay=0.02, loss=0.01, queue_packets=64))}, seed=7)

``server_addrs`` names the addresses the server receives on: what the client sends
elsewhere (a preferred address nobody listens on, RFC 9000 §9.6) is lost;
``client_sent_to`` records where each client datagram went.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tquic.core.config import QuicConfiguration
from tquic.core.connection import QuicConnection
from tquic.core.events import Event, StreamDataReceived
from tquic.paths.network_path import Address, NetworkPath
from tquic.sim.clock import EventLoop
from tquic.sim.link import Pipe
from tquic.sim.profile import LinkProfile

CLIENT_ADDR: Address = ("10.0.0.1", 4433)
SERVER_ADDR: Address = ("10.0.0.2", 443)
UP, DOWN = "up", "down"  # client -> server, server -> client


STILL_STEPS = 10_000  # steps without time moving before the harness calls it a hang


class EngineTimeout(AssertionError):
    """``run_until``'s condition did not hold within its (virtual) time, or time
    stopped moving (an engine whose timer stays due however often it runs)."""


@dataclass
class Link:
    """One client address's link to the server, both directions.

    ``drop(index, datagram)``: drop the ``index``-th datagram (1-based, both
    directions counted together); ``ecn(index, codepoint)``: the codepoint that
    arrives; ``up`` False drops everything (a blackhole); ``nat``: the source address
    the server sees on this link's datagrams (a NAT rebinding, RFC 9000 §9.3), whose
    replies come back to the client's own address.  ``profile``: tquic.sim's model
    of each direction (a ``Pipe``, in ``pipes`` once used) carries what passed
    those rules, instead of ``delay`` and ``rate``."""

    delay: float = 0.01  # one way, seconds
    rate: float = 0.0  # bytes per second each way; 0 = unlimited
    up: bool = True
    drop: Callable[[int, bytes], bool] | None = None
    ecn: Callable[[int, int], int] | None = None
    nat: Address | None = None
    profile: LinkProfile | None = None
    pipes: dict[str, Pipe] = field(default_factory=dict)
    count: int = 0  # datagrams offered to the link
    datagrams: dict[str, int] = field(default_factory=lambda: {UP: 0, DOWN: 0})
    bytes: dict[str, int] = field(default_factory=lambda: {UP: 0, DOWN: 0})
    _busy_until: dict[str, float] = field(default_factory=lambda: {UP: 0.0, DOWN: 0.0})

    def departure(self, direction: str, now: float, size: int) -> float:
        """When a datagram of ``size`` bytes offered now has left (rate-limited FIFO)."""
        if not self.rate:
            return now
        start = max(now, self._busy_until[direction]) + size / self.rate
        self._busy_until[direction] = start
        return start


_InFlight = tuple[float, int, QuicConnection, bytes, NetworkPath, int]


class EnginePair:
    """A client and a server engine and the links between them."""

    def __init__(self, client: QuicConnection, server: QuicConnection, *,
                 links: dict[Address, Link] | None = None,
                 client_addr: Address = CLIENT_ADDR, server_addr: Address = SERVER_ADDR,
                 server_addrs: tuple[Address, ...] | None = None, seed: int = 0) -> None:
        self.client = client
        self.server = server
        self.client_addr = client_addr
        self.server_addr = server_addr
        self.links: dict[Address, Link] = links if links is not None else {client_addr: Link()}
        # The addresses the server receives on (None: every address the client sends to).
        self.server_addrs = server_addrs
        self.client_sent_to: list[Address] = []  # each client datagram's destination
        self.now = 0.0
        self.client_events: list[Event] = []
        self.server_events: list[Event] = []
        # What the server received per stream, kept as it arrives: ``received`` is
        # called after every step by many tests' conditions.
        self._stream_data: dict[int, bytearray] = {}
        self._stream_ended: set[int] = set()
        self._in_flight: list[_InFlight] = []
        self._seq = 0
        self._steps_at_now = 0  # steps in a row that did not move time
        # The clock of the links with a tquic.sim profile: their arrivals are its events.
        self._sim = EventLoop()
        self._rng = random.Random(seed)

    @classmethod
    def connected(cls, client_config: QuicConfiguration, server_config: QuicConfiguration,
                  *, timeout: float = 5.0, tls_factory: Any = None,
                  **kwargs: Any) -> EnginePair:
        """A pair whose handshake is confirmed on both sides (EngineTimeout if not
        within ``timeout`` virtual seconds)."""
        pair = cls(QuicConnection(client_config, tls_factory=tls_factory),
                   QuicConnection(server_config, is_client=False, tls_factory=tls_factory),
                   **kwargs)
        pair.connect()
        pair.run_until(lambda: pair.client.handshake_complete and pair.server.handshake_complete
                       and pair.client.handshake_confirmed, timeout=timeout, what="the handshake")
        return pair

    def connect(self) -> None:
        """The client starts its handshake from ``client_addr``."""
        self.client.connect(NetworkPath(self.client_addr, self.server_addr), self.now)

    # -- time ---------------------------------------------------------------------------

    def step(self, limit: float = float("inf")) -> bool:
        """Send what the engines have, then move to the next arrival or timer (not past
        ``limit``) and run it.  False when nothing is left to happen before ``limit``;
        EngineTimeout after STILL_STEPS steps in a row at the same time."""
        self._send()
        times = [item[0] for item in self._in_flight]
        sim_next = self._sim.next_time()
        if sim_next is not None:
            times.append(sim_next)
        for conn in (self.client, self.server):
            deadline = conn.next_timeout()
            if deadline is not None:
                times.append(deadline)
        if not times:
            return False
        if min(times) > limit:
            self.now = max(self.now, limit)
            return False
        if min(times) > self.now:
            self.now = min(times)
            self._steps_at_now = 0
        else:
            self._steps_at_now += 1
            if self._steps_at_now > STILL_STEPS:
                raise EngineTimeout(f"time stopped at {self.now:.6f} s: {STILL_STEPS} steps "
                                    "without it moving (a timer that is always due?)")
        due = sorted((x for x in self._in_flight if x[0] <= self.now), key=lambda x: x[:2])
        self._in_flight = [x for x in self._in_flight if x[0] > self.now]
        for _, _, conn, data, network_path, ecn in due:
            conn.receive_datagram(data, network_path, self.now, ecn=ecn)
        self._sim.run(until=self.now)  # the simulated links' arrivals until now
        for conn in (self.client, self.server):
            deadline = conn.next_timeout()
            if deadline is not None and deadline <= self.now:
                conn.handle_timeout(self.now)
        self._send()
        return True

    def run_until(self, cond: Callable[[], bool], timeout: float = 5.0,
                  what: str | None = None) -> None:
        """Run until ``cond()`` holds; EngineTimeout if it does not within ``timeout``
        virtual seconds (or when nothing is left to happen and it still does not)."""
        deadline = self.now + timeout
        while not cond():
            if self.now >= deadline or not self.step(deadline):
                if cond():
                    return
                raise EngineTimeout(f"{what or 'the condition'} did not hold within "
                                    f"{timeout} s (virtual time {self.now:.3f} s)")

    def advance(self, dt: float) -> None:
        """Run everything that happens in the next ``dt`` virtual seconds."""
        until = self.now + dt
        while self.step(until):
            pass
        self.now = max(self.now, until)

    # -- what arrived -------------------------------------------------------------------

    def received(self, stream_id: int) -> tuple[bytes, bool]:
        """Stream data the server received on ``stream_id`` so far, and whether its
        end (FIN) arrived."""
        self.collect()
        return bytes(self._stream_data.get(stream_id, b"")), stream_id in self._stream_ended

    def collect(self) -> None:
        """Move the engines' pending events to ``client_events`` / ``server_events``
        (every step does; call it after feeding an engine a datagram directly)."""
        for conn, sink in ((self.client, self.client_events), (self.server, self.server_events)):
            while (event := conn.next_event()) is not None:
                sink.append(event)
                if conn is self.server and isinstance(event, StreamDataReceived):
                    data = self._stream_data.setdefault(event.stream_id, bytearray())
                    data += event.data
                    if event.end_stream:
                        self._stream_ended.add(event.stream_id)

    def _send(self) -> None:
        self._sim.run(until=self.now)  # a pipe takes what is offered at its clock's time
        for conn, peer in ((self.client, self.server), (self.server, self.client)):
            for data, path in conn.datagrams_to_send(self.now):
                ecn = conn.ecn_codepoint(path)
                if conn is self.client:
                    self.client_sent_to.append(path.remote)
                    if self.server_addrs is not None and path.remote not in self.server_addrs:
                        continue  # nobody receives there
                    client_addr = path.local if path.local != ("", 0) else self.client_addr
                    link = self.links.get(client_addr)
                    seen = link.nat if link is not None and link.nat is not None else client_addr
                    dest = NetworkPath(path.remote, seen)
                    direction = UP
                else:
                    client_addr = self._behind_nat(path.remote)
                    link = self.links.get(client_addr)
                    dest = NetworkPath(client_addr, path.local)
                    direction = DOWN
                if link is None or not link.up:
                    continue
                link.count += 1
                if link.drop is not None and link.drop(link.count, data):
                    continue
                if link.ecn is not None:
                    ecn = link.ecn(link.count, ecn)
                link.datagrams[direction] += 1
                link.bytes[direction] += len(data)
                if link.profile is not None:
                    self._pipe(link, direction).offer(data, _Arrivals(self, peer), dest, ecn)
                    continue
                self._seq += 1
                arrival = link.departure(direction, self.now, len(data)) + link.delay
                self._in_flight.append((arrival, self._seq, peer, data, dest, ecn))
        self.collect()

    def _pipe(self, link: Link, direction: str) -> Pipe:
        pipe = link.pipes.get(direction)
        if pipe is None:
            assert link.profile is not None
            pipe = Pipe(self._sim, link.profile, self._rng, direction)
            link.pipes[direction] = pipe
        return pipe

    def _behind_nat(self, seen: Address) -> Address:
        """The client address whose link's NAT shows it to the server as ``seen``."""
        for address, link in self.links.items():
            if link.nat == seen:
                return address
        return seen


class _Arrivals:
    """Where a simulated pipe delivers: the receiving engine, at the pair's time."""

    __slots__ = ("conn", "pair")

    def __init__(self, pair: EnginePair, conn: QuicConnection) -> None:
        self.pair = pair
        self.conn = conn

    def deliver(self, data: bytes, network_path: NetworkPath, ecn: int = 0) -> None:
        self.conn.receive_datagram(data, network_path, self.pair.now, ecn=ecn)
