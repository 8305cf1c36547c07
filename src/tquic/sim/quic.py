"""QUIC endpoints for the simulator: the engine's connections behind one address each.

The engine (``tquic.core.connection.QuicConnection``) is one connection; the
simulator drives *endpoints*.  These two small sans-I/O endpoints do what the
asyncio endpoint (``tquic.io.endpoint``) does, minus sockets:

- :class:`QuicClientEndpoint` holds the client's connections (a scenario may
  run several one after another: resumption, 0-RTT, 50 handshakes) and hands
  each datagram to the connection that owns its destination CID.
- :class:`QuicServerEndpoint` creates a server connection per new Initial,
  routes by destination CID, and can demand address validation with Retry
  (RFC 9000 §8.1.2) using the engine's own token format.

Both re-emit the connections' events as :class:`ConnEvent` (which connection,
which event) and count what they send and receive.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from tquic.core.config import QuicConfiguration
from tquic.core.connection import QuicConnection
from tquic.core.events import ConnectionIdIssued, ConnectionIdRetired
from tquic.core.tokens import KIND_RETRY, TokenManager
from tquic.paths.network_path import NetworkPath
from tquic.qlog import QlogDirectory, QuicLogger, Vantage
from tquic.wire.errors import QuicError
from tquic.wire.packet import PacketType, encode_retry, parse_header

MIN_INITIAL_DATAGRAM = 1200  # RFC 9000 §14.1: a server drops smaller Initial datagrams


@dataclass(frozen=True, slots=True)
class ConnEvent:
    """An engine event and the connection (index on its endpoint) it came from."""

    index: int
    connection: QuicConnection
    event: object


def _dcid(data: bytes, cid_length: int) -> bytes:
    if data[0] & 0x80:  # long header: the DCID length is on the wire (RFC 8999 §5.1)
        return data[6:6 + data[5]] if len(data) > 6 else b""
    return data[1:1 + cid_length]


class _MultiConnection:
    """What both endpoints share: a list of connections, merged timers and events.

    With a ``qlog`` directory every connection gets a trace file: the endpoint
    logs connection start and each UDP datagram in virtual time, and hands the
    logger to the engine as ``QuicConfiguration.quic_logger`` so whatever the
    engine logs lands in the same file.
    """

    vantage = "client"

    def __init__(self, qlog: QlogDirectory | None = None) -> None:
        self.connections: list[QuicConnection] = []
        self.qlog = qlog
        self.qlog_files: list[str] = []
        self._loggers: dict[int, QuicLogger] = {}
        self._events: deque[ConnEvent] = deque()
        self.datagrams_sent = 0
        self.bytes_sent = 0
        self.datagrams_received = 0
        self.bytes_received = 0

    def _new_logger(
        self, group_id: bytes, network_path: NetworkPath, now: float
    ) -> QuicLogger | None:
        if self.qlog is None:
            return None
        vantage: Vantage = "client" if self.vantage == "client" else "server"
        logger = self.qlog.create(group_id, vantage)
        # the name QlogDirectory.create gives the file
        suffix = ".sqlog" if self.qlog.fmt == "seq" else ".qlog"
        self.qlog_files.append(
            os.path.join(self.qlog.directory, f"{group_id.hex()}_{vantage}{suffix}")
        )
        logger.log(now, "quic:connection_started", {
            "local": {"ip_v4": network_path.local[0], "port_v4": network_path.local[1]},
            "remote": {"ip_v4": network_path.remote[0], "port_v4": network_path.remote[1]},
        })
        return logger

    def _log_datagram(self, conn: QuicConnection, name: str, size: int, now: float) -> None:
        logger = self._loggers.get(id(conn))
        if logger is not None:
            logger.log(now, name, {"count": 1, "raw": [{"length": size}]})

    def close_qlog(self) -> None:
        for logger in self._loggers.values():
            logger.close()

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, NetworkPath]]:
        conns = self.connections
        if len(conns) == 1 and not self._loggers:
            out = conns[0].datagrams_to_send(now)
        else:
            out = []
            for conn in conns:
                if not conn.is_closed:
                    mine = conn.datagrams_to_send(now)
                    for d, _ in mine:
                        self._log_datagram(conn, "quic:udp_datagrams_sent", len(d), now)
                    out.extend(mine)
        self.datagrams_sent += len(out)
        self.bytes_sent += sum(len(d) for d, _ in out)
        return out

    def ecn_codepoint(self, network_path: NetworkPath) -> int:
        """The ECN mark of the connection that sends on ``network_path`` (RFC 9000 §13.4.2)."""
        for conn in self.connections:
            ecn = conn.ecn_codepoint(network_path)
            if ecn:
                return ecn
        return 0

    def next_timeout(self) -> float | None:
        best: float | None = None
        for conn in self.connections:
            t = conn.next_timeout()
            if t is not None and (best is None or t < best):
                best = t
        return best

    def handle_timeout(self, now: float) -> None:
        for conn in self.connections:
            t = conn.next_timeout()
            if t is not None and t <= now:
                conn.handle_timeout(now)

    def next_event(self) -> object | None:
        if not self._events:
            for index, conn in enumerate(self.connections):
                event = conn.next_event()
                while event is not None:
                    self._on_engine_event(conn, event)
                    self._events.append(ConnEvent(index, conn, event))
                    event = conn.next_event()
        return self._events.popleft() if self._events else None

    def _on_engine_event(self, conn: QuicConnection, event: object) -> None:
        return None


class QuicClientEndpoint(_MultiConnection):
    """A client host: ``connect`` starts a connection; datagrams go to the owner of their DCID."""

    def __init__(self, tls_factory: Any = None, qlog: QlogDirectory | None = None) -> None:
        super().__init__(qlog)
        self.tls_factory = tls_factory

    def connect(
        self, configuration: QuicConfiguration, network_path: NetworkPath, now: float
    ) -> QuicConnection:
        logger = None
        if self.qlog is not None:
            logger = self._new_logger(
                b"client-%d" % len(self.connections), network_path, now
            )
            configuration = replace(configuration, quic_logger=logger)
        conn = QuicConnection(configuration, is_client=True, tls_factory=self.tls_factory)
        if logger is not None:
            self._loggers[id(conn)] = logger
        conn.connect(network_path, now)
        self.connections.append(conn)
        return conn

    def receive_datagram(self, data: bytes, network_path: NetworkPath, now: float,
                         ecn: int = 0) -> None:
        self.datagrams_received += 1
        self.bytes_received += len(data)
        conns = self.connections
        if not conns or not data:
            return
        target = conns[-1]
        if len(conns) > 1:
            long = bool(data[0] & 0x80)
            dcid = _dcid(data, 0) if long else b""
            for conn in conns:
                cids = conn.host_cids
                if (dcid in cids) if long else any(data.startswith(c, 1) for c in cids):
                    target = conn
                    break
        if self._loggers:
            self._log_datagram(target, "quic:udp_datagrams_received", len(data), now)
        target.receive_datagram(data, network_path, now, ecn)


class QuicServerEndpoint(_MultiConnection):
    """A server host: a connection per accepted Initial, optional Retry, routing by DCID."""

    vantage = "server"

    def __init__(
        self,
        configuration: QuicConfiguration,
        *,
        retry: bool = False,
        tls_factory: Any = None,
        on_new_connection: Callable[[QuicConnection], None] | None = None,
        qlog: QlogDirectory | None = None,
    ) -> None:
        super().__init__(qlog)
        self.configuration = replace(configuration, is_client=False)
        self.retry = retry
        self.tls_factory = tls_factory
        self.on_new_connection = on_new_connection
        self._cid_length = configuration.connection_id_length
        self._routes: dict[bytes, QuicConnection] = {}
        self._tokens = TokenManager(configuration.token_key)
        self._stateless: list[tuple[bytes, NetworkPath]] = []
        self.retries_sent = 0
        self.dropped = 0

    def receive_datagram(self, data: bytes, network_path: NetworkPath, now: float,
                         ecn: int = 0) -> None:
        self.datagrams_received += 1
        self.bytes_received += len(data)
        if not data:
            self.dropped += 1
            return
        dcid = _dcid(data, self._cid_length)
        conn = self._routes.get(dcid)
        if conn is None and data[0] & 0x80:
            conn = self._accept(data, dcid, network_path, now)
        if conn is None:
            self.dropped += 1
            return
        if self._loggers:
            self._log_datagram(conn, "quic:udp_datagrams_received", len(data), now)
        conn.receive_datagram(data, network_path, now, ecn)

    def _accept(
        self, data: bytes, dcid: bytes, network_path: NetworkPath, now: float
    ) -> QuicConnection | None:
        try:
            header = parse_header(data, 0, self._cid_length)
        except QuicError:
            return None
        if header.packet_type != PacketType.INITIAL or len(data) < MIN_INITIAL_DATAGRAM:
            return None
        kwargs: dict[str, Any] = {}
        if self.retry:
            token = header.token
            if token and token[0] == KIND_RETRY:
                contents = self._tokens.validate_retry_token(token, network_path.remote, now)
                if contents is None or contents.retry_source_connection_id != dcid:
                    return None  # RFC 9000 §8.1.2: an invalid Retry token is dropped
                kwargs["original_destination_connection_id"] = (
                    contents.original_destination_connection_id
                )
                kwargs["retry_source_connection_id"] = contents.retry_source_connection_id
            else:
                # RFC 9000 §17.2.5: a Retry with a new SCID and a token bound to the address.
                new_scid = os.urandom(self._cid_length)
                token = self._tokens.create_retry_token(network_path.remote, dcid, new_scid, now)
                if header.version is None:
                    return None
                packet = encode_retry(header.version, header.scid, new_scid, dcid, token)
                self._stateless.append((packet, network_path))
                self.retries_sent += 1
                return None
        config = self.configuration
        logger = self._new_logger(dcid, network_path, now) if self.qlog is not None else None
        if logger is not None:
            config = replace(config, quic_logger=logger)
        conn = QuicConnection(config, is_client=False, tls_factory=self.tls_factory, **kwargs)
        if logger is not None:
            self._loggers[id(conn)] = logger
        self.connections.append(conn)
        self._routes[dcid] = conn
        if self.on_new_connection is not None:
            self.on_new_connection(conn)
        return conn

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, NetworkPath]]:
        out = super().datagrams_to_send(now)
        if self._stateless:
            extra, self._stateless = self._stateless, []
            self.datagrams_sent += len(extra)
            self.bytes_sent += sum(len(d) for d, _ in extra)
            out = out + extra
        return out

    def _on_engine_event(self, conn: QuicConnection, event: object) -> None:
        if isinstance(event, ConnectionIdIssued):
            self._routes[event.connection_id] = conn
        elif isinstance(event, ConnectionIdRetired):
            self._routes.pop(event.connection_id, None)

    def refresh_routes(self) -> None:
        """Route every CID the connections hold now (events may not have been drained yet)."""
        for conn in self.connections:
            for cid in conn.host_cids:
                self._routes[cid] = conn
