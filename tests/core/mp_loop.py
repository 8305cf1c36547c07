"""Two engines over several links in memory (explicit time), for multipath tests.

Each link is keyed by the client's local address and has its own one-way delay,
rate (bytes/s, serialised FIFO; 0 = unlimited) and an ``up`` switch (a link
that is down drops everything: a blackhole).  Datagrams go where the engine
says (the NetworkPath returned by ``datagrams_to_send``), so a path opened from
another local address really travels over another link.  Real TLS by default
(tquic.crypto.tls); ``fake_tls=True`` uses tests/core/engine_fake_tls.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from engine_certs import server_config

from tquic.core.config import QuicConfiguration
from tquic.core.connection import QuicConnection
from tquic.core.events import StreamDataReceived
from tquic.paths.network_path import NetworkPath

SERVER_ADDR = ("192.0.2.1", 443)
LINK_A = ("10.0.0.1", 5000)
LINK_B = ("10.0.1.1", 5000)


@dataclass
class Link:
    delay: float = 0.01
    rate: float = 0.0
    up: bool = True
    busy_until: dict[str, float] = field(default_factory=lambda: {"up": 0.0, "down": 0.0})
    bytes: dict[str, int] = field(default_factory=lambda: {"up": 0, "down": 0})
    drop: Callable[[int], bool] | None = None
    count: int = 0
    # What the link does to a datagram's ECN codepoint (count, codepoint) -> codepoint;
    # None carries it unchanged.
    ecn: Callable[[int, int], int] | None = None


class MpLoop:
    def __init__(self, client: QuicConnection, server: QuicConnection,
                 links: dict[tuple[str, int], Link]) -> None:
        self.client = client
        self.server = server
        self.links = links
        self.now = 0.0
        self.queue: list[tuple[float, int, QuicConnection, bytes, NetworkPath, int]] = []
        self.seq = 0
        self.client_events: list[Any] = []
        self.server_events: list[Any] = []
        self.delivery_times: list[tuple[float, int]] = []  # (time, bytes) of stream data

    def _link_for(self, client_addr: tuple[str, int]) -> Link | None:
        return self.links.get(client_addr)

    def _send(self) -> None:
        for conn, peer in ((self.client, self.server), (self.server, self.client)):
            for data, path in conn.datagrams_to_send(self.now):
                ecn = conn.ecn_codepoint(path)
                if conn is self.client:
                    client_addr = path.local if path.local != ("", 0) else LINK_A
                    dest = NetworkPath(path.remote, client_addr)
                    direction = "up"
                else:
                    client_addr = path.remote
                    dest = NetworkPath(client_addr, path.local)
                    direction = "down"
                link = self._link_for(client_addr)
                if link is None or not link.up:
                    continue
                link.count += 1
                if link.drop is not None and link.drop(link.count):
                    continue
                if link.ecn is not None:
                    ecn = link.ecn(link.count, ecn)
                link.bytes[direction] += len(data)
                start = max(self.now, link.busy_until[direction])
                if link.rate:
                    start += len(data) / link.rate
                    link.busy_until[direction] = start
                self.seq += 1
                self.queue.append((start + link.delay, self.seq, peer, data, dest, ecn))

    def _collect(self) -> None:
        for conn, sink in ((self.client, self.client_events), (self.server, self.server_events)):
            while (event := conn.next_event()) is not None:
                sink.append(event)
                if sink is self.server_events and isinstance(event, StreamDataReceived):
                    self.delivery_times.append((self.now, len(event.data)))

    def step(self, limit: float) -> bool:
        self._send()
        self._collect()
        times = [t for t, *_ in self.queue]
        for conn in (self.client, self.server):
            t = conn.next_timeout()
            if t is not None:
                times.append(t)
        if not times or min(times) > limit:
            self.now = max(self.now, limit)
            return False
        self.now = max(self.now, min(times))
        due = sorted((x for x in self.queue if x[0] <= self.now), key=lambda x: (x[0], x[1]))
        self.queue = [x for x in self.queue if x[0] > self.now]
        for _, _, conn, data, path, ecn in due:
            conn.receive_datagram(data, path, self.now, ecn=ecn)
        for conn in (self.client, self.server):
            t = conn.next_timeout()
            if t is not None and t <= self.now:
                conn.handle_timeout(self.now)
        self._send()
        self._collect()
        return True

    def run_until(self, cond: Callable[[], bool], max_time: float = 30.0,
                  max_steps: int = 400_000) -> bool:
        for _ in range(max_steps):
            if cond():
                return True
            if self.now >= max_time or not self.step(max_time):
                return cond()
        return cond()

    def longest_gap(self, since: float) -> float:
        """The longest time without stream data arriving at the server after ``since``."""
        times = [since] + [t for t, n in self.delivery_times if t >= since and n]
        return max((b - a for a, b in pairwise(times)), default=0.0)

    def received(self, stream_id: int) -> tuple[bytes, bool]:
        data = b"".join(e.data for e in self.server_events
                        if isinstance(e, StreamDataReceived) and e.stream_id == stream_id)
        fin = any(isinstance(e, StreamDataReceived) and e.stream_id == stream_id
                  and e.end_stream for e in self.server_events)
        return data, fin


def mp_pair(*, client_max_path_id: int | None = 4, server_max_path_id: int | None = 4,
            links: dict[tuple[str, int], Link] | None = None, fake_tls: bool = False,
            client_kwargs: dict[str, Any] | None = None,
            server_kwargs: dict[str, Any] | None = None) -> MpLoop:
    """A connected client/server pair (handshake confirmed) over LINK_A."""
    cc = QuicConfiguration(is_client=True, alpn_protocols=("hq",), verify_peer=False,
                           max_path_id=client_max_path_id, **(client_kwargs or {}))
    sc = server_config(max_path_id=server_max_path_id, **(server_kwargs or {}))
    factory = None
    if fake_tls:
        from engine_fake_tls import fake_tls_factory
        factory = fake_tls_factory
    client = QuicConnection(cc, tls_factory=factory)
    server = QuicConnection(sc, is_client=False, tls_factory=factory)
    loop = MpLoop(client, server, links or {LINK_A: Link(), LINK_B: Link()})
    client.connect(NetworkPath(LINK_A, SERVER_ADDR), 0.0)
    if not loop.run_until(lambda: client.handshake_complete and server.handshake_complete
                          and client.handshake_confirmed, max_time=5):
        raise AssertionError("handshake did not complete")
    return loop


def two_paths(scheduler: str = "minrtt", *, backup: bool = False, rate: float = 1_000_000,
              delays: tuple[float, float] = (0.01, 0.02), settle: float = 0.0,
              **client_kwargs: object) -> MpLoop:
    """A connected pair with path 1 over LINK_B validated on both sides (path 0 over
    LINK_A), then ``settle`` seconds more for the RTT estimates to separate."""
    links = {LINK_A: Link(delay=delays[0], rate=rate), LINK_B: Link(delay=delays[1], rate=rate)}
    loop = mp_pair(links=links, client_kwargs={"scheduler": scheduler, **client_kwargs})
    client = loop.client
    assert loop.run_until(lambda: client.can_open_path, max_time=2)
    assert client.add_path(LINK_B, None, loop.now, backup=backup) == 1
    assert loop.run_until(lambda: client.paths.get(1).validated  # type: ignore[union-attr]
                          and loop.server.paths.get(1) is not None
                          and loop.server.paths.get(1).validated,  # type: ignore[union-attr]
                          max_time=loop.now + 2)
    if settle:
        loop.run_until(lambda: False, max_time=loop.now + settle)
    return loop


def inject(loop: MpLoop, payload: bytes, *, to_server: bool = True, path_id: int = 0) -> None:
    """Send raw frames in a correctly protected 1-RTT packet on ``path_id``."""
    from tquic.wire.packet import encode_short_header

    sender = loop.client if to_server else loop.server
    receiver = loop.server if to_server else loop.client
    path = sender.paths.get(path_id)
    keys = sender._crypto.one_rtt
    if path is None or keys is None or path.peer_cid is None:
        raise AssertionError(f"no sending state for path {path_id}")
    pn = path.space.next_pn
    path.space.next_pn += 1
    header = encode_short_header(path.peer_cid.cid, pn, 4, bool(keys.send_phase))
    packet = keys.send.protect(header, payload, pn, path_id)
    local = path.network_path
    receiver.receive_datagram(packet, NetworkPath(local.remote, local.local), loop.now)


def terminated(events: list[Any]) -> Any:
    from tquic.core.events import ConnectionTerminated

    for event in events:
        if isinstance(event, ConnectionTerminated):
            return event
    return None
