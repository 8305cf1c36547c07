"""A tiny in-memory loop moving datagrams between two engines with explicit time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tquic.core.config import QuicConfiguration
from tquic.core.connection import QuicConnection
from tquic.paths.network_path import NetworkPath

CLIENT_ADDR = ("10.0.0.1", 4433)
SERVER_ADDR = ("10.0.0.2", 443)
CLIENT_PATH = NetworkPath(CLIENT_ADDR, SERVER_ADDR)
SERVER_PATH = NetworkPath(SERVER_ADDR, CLIENT_ADDR)


class Loop:
    """Two engines and a one-way delay; ``drop`` decides per datagram (index, data).

    Each datagram carries the ECN codepoint its sender set (``ecn_codepoint``);
    ``ecn_network`` (index, codepoint) -> codepoint models what the network does to
    it (bleach, CE-mark); by default the marks arrive as sent.
    """

    def __init__(self, client: QuicConnection, server: QuicConnection, *,
                 delay: float = 0.01, drop: Callable[[int, bytes], bool] | None = None,
                 ecn_network: Callable[[int, int], int] | None = None) -> None:
        self.client = client
        self.server = server
        self.delay = delay
        self.drop = drop
        self.ecn_network = ecn_network
        self.now = 0.0
        self.in_flight: list[tuple[Any, ...]] = []  # (time, seq, peer, data, path, ecn)
        self.ecn_sent: list[int] = []  # codepoint of every datagram sent, in order
        self.count = 0
        self.client_events: list[Any] = []
        self.server_events: list[Any] = []
        self.client_addr = CLIENT_ADDR
        self.seq = 0

    def _collect(self) -> None:
        for conn, sink in ((self.client, self.client_events), (self.server, self.server_events)):
            while (event := conn.next_event()) is not None:
                sink.append(event)

    def _send_all(self) -> None:
        for conn, peer in ((self.client, self.server), (self.server, self.client)):
            datagrams = conn.datagrams_to_send(self.now)
            for data, path in datagrams:
                ecn = conn.ecn_codepoint(path)
                self.count += 1
                self.ecn_sent.append(ecn)
                if self.ecn_network is not None:
                    ecn = self.ecn_network(self.count, ecn)
                if self.drop is not None and self.drop(self.count, data):
                    continue
                if conn is self.client:
                    dest_path = NetworkPath(SERVER_ADDR, self.client_addr)
                else:
                    dest_path = NetworkPath(self.client_addr, SERVER_ADDR)
                self.seq += 1
                self.in_flight.append((self.now + self.delay, self.seq, peer, data, dest_path,
                                       ecn))

    def step(self, limit: float = float("inf")) -> bool:
        """Advance to the next event (not past ``limit``); False when nothing is left."""
        self._send_all()
        self._collect()
        times = [t for t, *_ in self.in_flight]
        for conn in (self.client, self.server):
            t = conn.next_timeout()
            if t is not None:
                times.append(t)
        if not times:
            return False
        if min(times) > limit:
            self.now = max(self.now, limit)
            return False
        self.now = max(self.now, min(times))
        due = sorted((x for x in self.in_flight if x[0] <= self.now), key=lambda x: (x[0], x[1]))
        self.in_flight = [x for x in self.in_flight if x[0] > self.now]
        for item in due:
            conn, data, path = item[2:5]
            # A subclass's _send_all may queue (..., path) without the codepoint.
            ecn = item[5] if len(item) > 5 else 0
            conn.receive_datagram(data, path, self.now, ecn=ecn)
        for conn in (self.client, self.server):
            t = conn.next_timeout()
            if t is not None and t <= self.now:
                conn.handle_timeout(self.now)
        self._send_all()
        self._collect()
        return True

    def run_until(self, cond: Callable[[], bool], max_time: float = 30.0,
                  max_steps: int = 200_000) -> bool:
        for _ in range(max_steps):
            if cond():
                return True
            if self.now >= max_time or not self.step(max_time):
                return cond()
        return cond()


def make_pair(client_config: QuicConfiguration | None = None,
              server_config: QuicConfiguration | None = None,
              tls_factory: Any = None, **loop_kwargs: Any) -> Loop:
    from engine_certs import server_config as default_server_config

    cc = client_config or QuicConfiguration(is_client=True, alpn_protocols=("hq",),
                                            verify_peer=False)
    sc = server_config or default_server_config()
    client = QuicConnection(cc, tls_factory=tls_factory)
    server = QuicConnection(sc, is_client=False, tls_factory=tls_factory)
    loop = Loop(client, server, **loop_kwargs)
    client.connect(CLIENT_PATH, 0.0)
    return loop


def handshake_pair(**kwargs: Any) -> Loop:
    """A client and server (fake TLS unless ``tls_factory`` is given) past the handshake."""
    from engine_fake_tls import fake_tls_factory

    kwargs.setdefault("tls_factory", fake_tls_factory)
    loop = make_pair(**kwargs)
    if not loop.run_until(lambda: loop.client.handshake_complete
                          and loop.server.handshake_complete
                          and loop.client.handshake_confirmed, max_time=5):
        raise AssertionError("handshake did not complete")
    return loop


def inject_1rtt(loop: Loop, payload: bytes, *, to_server: bool = True) -> None:
    """Send ``payload`` (raw frames) in a correctly protected 1-RTT packet."""
    from tquic.wire.packet import encode_short_header

    sender = loop.client if to_server else loop.server
    receiver = loop.server if to_server else loop.client
    path = sender._paths.primary
    keys = sender._crypto.one_rtt
    assert keys is not None and path.peer_cid is not None
    pn = path.space.next_pn
    path.space.next_pn += 1
    header = encode_short_header(path.peer_cid.cid, pn, 4, bool(keys.send_phase))
    packet = keys.send.protect(header, payload, pn, 0)
    dest = SERVER_PATH if to_server else CLIENT_PATH
    receiver.receive_datagram(packet, dest, loop.now)


def terminated(events: list[Any]) -> Any:
    from tquic.core.events import ConnectionTerminated

    for event in events:
        if isinstance(event, ConnectionTerminated):
            return event
    return None
