"""Applications for QUIC flows in the simulator: download, upload, datagrams.

:class:`Download` is the interop runner's client and server in miniature: per
connection the client opens one bidirectional stream per file, sends
``GET <size>`` and the end of the stream; the server answers ``size`` bytes of
pseudo-random content and FIN.  The server records the SHA-256 of what it sent,
the client of what it received; a file counts only when they match.  Several
connections run one after another (resumption and 0-RTT use the ticket of the
previous one).

Workloads talk to :class:`~tquic.sim.quic.QuicClientEndpoint` /
:class:`~tquic.sim.quic.QuicServerEndpoint` and report through the flow.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from tquic.core.config import QuicConfiguration
from tquic.core.connection import QuicConnection
from tquic.core.events import (
    ConnectionTerminated,
    DatagramReceived,
    HandshakeCompleted,
    SessionTicketReceived,
    StreamDataReceived,
    StreamsAvailable,
)
from tquic.core.send_stream import StreamUsageError
from tquic.sim.protocols import Side
from tquic.sim.quic import ConnEvent, QuicClientEndpoint, QuicServerEndpoint

if TYPE_CHECKING:
    from tquic.sim.runner import Flow

Action = Callable[["Download"], None]


def content(seed: int, size: int) -> bytes:
    """The file the server serves: pseudo-random, fixed by (seed, size)."""
    return random.Random(seed).randbytes(size)


@dataclass(slots=True)
class ConnectionResult:
    """What happened on one client connection (filled in as the run goes)."""

    index: int
    connection: QuicConnection
    handshake: HandshakeCompleted | None = None
    handshake_time: float | None = None
    version: int | None = None
    terminated: ConnectionTerminated | None = None
    files_ok: int = 0
    files_bad: int = 0
    bytes_received: int = 0
    ticket: object = None
    streams: dict[int, tuple[int, hashlib._Hash, list[int]]] = field(default_factory=dict)
    pending: list[int] = field(default_factory=list)
    done: bool = False
    closed_by_us: bool = False


class _ServerSide:
    """The file server: answers ``GET <size>`` on each request stream."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._requests: dict[tuple[int, int], bytearray] = {}
        # (client's original DCID, stream) -> sha256 of the body served.  Keyed by the
        # DCID both ends know, not by the server's connection index: a corrupted Initial
        # may create a server connection that never completes, shifting the indices.
        self.served: dict[tuple[bytes, int], bytes] = {}

    def on_event(self, flow: Flow, ce: ConnEvent) -> None:
        ev = ce.event
        if not isinstance(ev, StreamDataReceived):
            return
        key = (ce.index, ev.stream_id)
        buf = self._requests.setdefault(key, bytearray())
        buf += ev.data
        if not ev.end_stream:
            return
        del self._requests[key]
        parts = bytes(buf).split()
        if len(parts) != 2 or parts[0] != b"GET" or not parts[1].isdigit():
            ce.connection.reset_stream(ev.stream_id, 1)
        else:
            body = content(self.seed * 1_000_003 + ce.index * 65_537 + ev.stream_id, int(parts[1]))
            odcid = ce.connection.original_destination_connection_id
            self.served[(odcid, ev.stream_id)] = hashlib.sha256(body).digest()
            ce.connection.send_stream_data(ev.stream_id, body, end_stream=True)
        flow.wake(Side.SERVER)


class Download:
    """Download ``sizes`` (one stream each, concurrently) on each of ``connections``.

    - ``resume``: connections after the first use the previous session ticket;
      ``early_data`` also sends the requests in 0-RTT.
    - ``key_update_after``: the client requests a key update once it has
      received that many bytes on a connection.
    - ``actions``: (time, callable) pairs run at those times (migration, ...).
    """

    direction = "down"

    def __init__(
        self,
        client: QuicClientEndpoint,
        server: QuicServerEndpoint,
        client_config: QuicConfiguration,
        sizes: Sequence[int],
        *,
        connections: int = 1,
        resume: bool = False,
        early_data: bool = False,
        key_update_after: int | None = None,
        actions: Sequence[tuple[float, Action]] = (),
        link_index: int = 0,
        seed: int = 0,
    ) -> None:
        self.client = client
        self.server = server
        self.client_config = client_config
        self.sizes = tuple(sizes)
        self.connections = connections
        self.resume = resume
        self.early_data = early_data
        self.key_update_after = key_update_after
        self.actions = tuple(actions)
        self.link_index = link_index
        self.results: list[ConnectionResult] = []
        # every event except stream data, per side, for the checks of a scenario
        self.events: dict[Side, list[object]] = {Side.CLIENT: [], Side.SERVER: []}
        self._server = _ServerSide(seed)
        self._flow: Flow | None = None
        self._next_deferred = False

    @property
    def flow(self) -> Flow:
        if self._flow is None:
            raise RuntimeError("workload not started")
        return self._flow

    @property
    def current(self) -> ConnectionResult:
        return self.results[-1]

    @property
    def files_ok(self) -> int:
        return sum(r.files_ok for r in self.results)

    def start(self, flow: Flow) -> None:
        self._flow = flow
        for at, action in self.actions:
            flow.loop.call_at(at, self._run_action, action)
        self._start_connection()

    def _run_action(self, action: Action) -> None:
        if not self.flow.finished:
            action(self)
            self.flow.wake(Side.CLIENT)
            self.flow.wake(Side.SERVER)

    def _start_connection(self) -> None:
        flow = self.flow
        config = self.client_config
        previous = self.results[-1] if self.results else None
        if self.resume and previous is not None and previous.ticket is not None:
            config = replace(
                config, session_ticket=previous.ticket, enable_early_data=self.early_data
            )
        conn = self.client.connect(config, flow.client_path(self.link_index), flow.now)
        result = ConnectionResult(len(self.results), conn, pending=list(self.sizes))
        self.results.append(result)
        if self.early_data and config.session_ticket is not None:
            self._request(result)  # RFC 9000 §7.4.1: 0-RTT under the remembered limits
        flow.wake(Side.CLIENT)

    def _request(self, result: ConnectionResult) -> None:
        conn = result.connection
        while result.pending:
            try:
                sid = conn.open_stream()
            except StreamUsageError:
                # The peer's stream limit is reached: the engine reports StreamsAvailable
                # when MAX_STREAMS raises it (RFC 9000 §4.6), and the requests go on then.
                return
            size = result.pending.pop(0)
            result.streams[sid] = (size, hashlib.sha256(), [0])
            conn.send_stream_data(sid, b"GET %d\n" % size, end_stream=True)

    def on_event(self, side: Side, event: object) -> None:
        if not isinstance(event, ConnEvent):
            return
        flow = self.flow
        if not isinstance(event.event, StreamDataReceived):
            self.events[side].append(event.event)
        if side is Side.SERVER:
            self._server.on_event(flow, event)
            return
        if event.index >= len(self.results):
            return
        result = self.results[event.index]
        ev = event.event
        if isinstance(ev, StreamDataReceived):
            self._on_data(result, ev)
        elif isinstance(ev, HandshakeCompleted):
            result.handshake = ev
            result.handshake_time = flow.now
            result.version = result.connection.version
            flow.record_handshake(Side.CLIENT, result.connection.version)
            self._request(result)
        elif isinstance(ev, StreamsAvailable):
            if not result.done and result.terminated is None:
                self._request(result)
        elif isinstance(ev, SessionTicketReceived):
            result.ticket = ev.ticket
            if self._next_deferred and result is self.results[-1]:
                self._next_deferred = False
                self._start_connection()
        elif isinstance(ev, ConnectionTerminated):
            result.terminated = ev
            if not result.closed_by_us and not flow.finished:
                flow.fail(
                    f"connection {result.index} terminated: error 0x{ev.error_code:x} "
                    f"{ev.reason!r} (by_peer={ev.by_peer})"
                )

    def _on_data(self, result: ConnectionResult, ev: StreamDataReceived) -> None:
        flow = self.flow
        entry = result.streams.get(ev.stream_id)
        if entry is None:
            return
        size, hasher, got = entry
        if ev.data:
            hasher.update(ev.data)
            got[0] += len(ev.data)
            result.bytes_received += len(ev.data)
            flow.record_delivery(len(ev.data))
            if (
                self.key_update_after is not None
                and result.bytes_received >= self.key_update_after
                and result.connection.key_phase == 0
            ):
                self.key_update_after = None
                result.connection.request_key_update()
        if not ev.end_stream:
            return
        odcid = result.connection.original_destination_connection_id
        served = self._server.served.get((odcid, ev.stream_id))
        if got[0] == size and served == hasher.digest():
            result.files_ok += 1
        else:
            result.files_bad += 1
            flow.fail(f"connection {result.index} stream {ev.stream_id}: data mismatch")
            return
        del result.streams[ev.stream_id]
        self._request(result)
        if not result.pending and not result.streams:
            self._connection_done(result)
        flow.wake(Side.CLIENT)

    def _connection_done(self, result: ConnectionResult) -> None:
        result.done = True
        if len(self.results) < self.connections:
            if self.resume and result.ticket is None:
                self._next_deferred = True  # the next one waits for the ticket
            else:
                self._start_connection()
            result.closed_by_us = True
            result.connection.close(0, "done")
        else:
            self.flow.finish()


class Upload:
    """The client sends ``size`` bytes on one stream; the server checks the SHA-256."""

    direction = "up"

    def __init__(
        self, client: QuicClientEndpoint, client_config: QuicConfiguration, size: int,
        *, seed: int = 0,
    ) -> None:
        self.client = client
        self.client_config = client_config
        self.size = size
        self.body = content(seed, size)
        self._hasher = hashlib.sha256()
        self.received = 0
        self.ok = False
        self._flow: Flow | None = None

    def start(self, flow: Flow) -> None:
        self._flow = flow
        self.client.connect(self.client_config, flow.client_path(), flow.now)

    def on_event(self, side: Side, event: object) -> None:
        flow = self._flow
        if flow is None or not isinstance(event, ConnEvent):
            return
        ev = event.event
        if side is Side.CLIENT and isinstance(ev, HandshakeCompleted):
            flow.record_handshake(Side.CLIENT, event.connection.version)
            sid = event.connection.open_stream()
            event.connection.send_stream_data(sid, self.body, end_stream=True)
            flow.wake(Side.CLIENT)
        elif side is Side.SERVER and isinstance(ev, StreamDataReceived):
            self._hasher.update(ev.data)
            self.received += len(ev.data)
            if ev.data:
                flow.record_delivery(len(ev.data))
            if ev.end_stream:
                self.ok = self.received == self.size and (
                    self._hasher.digest() == hashlib.sha256(self.body).digest()
                )
                if self.ok:
                    flow.finish()
                else:
                    flow.fail("upload data mismatch")
        elif isinstance(ev, ConnectionTerminated) and not flow.finished:
            flow.fail(f"{side.value} terminated: 0x{ev.error_code:x} {ev.reason!r}")


class Datagrams:
    """After the handshake the client sends ``count`` DATAGRAMs of ``size`` bytes,
    one every ``interval``; done when all arrived or ``grace`` after the last send."""

    direction = "up"

    def __init__(
        self, client: QuicClientEndpoint, client_config: QuicConfiguration, count: int,
        size: int = 1000, interval: float = 0.001, grace: float = 1.0,
    ) -> None:
        self.client = client
        self.client_config = client_config
        self.count = count
        self.size = size
        self.interval = interval
        self.grace = grace
        self.sent = 0
        self.received = 0
        self._conn: QuicConnection | None = None
        self._flow: Flow | None = None

    def start(self, flow: Flow) -> None:
        self._flow = flow
        self._conn = self.client.connect(self.client_config, flow.client_path(), flow.now)

    def _send(self, _: object) -> None:
        flow, conn = self._flow, self._conn
        if flow is None or conn is None or flow.finished:
            return
        conn.send_datagram(self.sent.to_bytes(4, "big") + bytes(self.size - 4))
        self.sent += 1
        flow.wake(Side.CLIENT)
        if self.sent < self.count:
            flow.loop.call_at(flow.now + self.interval, self._send)
        else:
            flow.loop.call_at(flow.now + self.grace, lambda _: flow.finish())

    def on_event(self, side: Side, event: object) -> None:
        flow = self._flow
        if flow is None or not isinstance(event, ConnEvent):
            return
        ev = event.event
        if side is Side.CLIENT and isinstance(ev, HandshakeCompleted):
            flow.record_handshake(Side.CLIENT, event.connection.version)
            self._send(None)
        elif side is Side.SERVER and isinstance(ev, DatagramReceived):
            self.received += 1
            flow.record_delivery(len(ev.data))
            if self.received == self.count:
                flow.finish()
