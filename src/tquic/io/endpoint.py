"""The asyncio QUIC endpoint: UDP sockets, connection-ID routing, and the stateless
answers a server gives before (or without) a connection.

One :class:`QuicEndpoint` owns one UDP socket per local address and any number
of connections.  Datagrams are read in batches (``recvmsg``, GRO) and routed
by destination connection ID (RFC 9000 §5.2); a client's first Initials, whose
DCID the client chose, are routed by (DCID, client address) until the
handshake completes.  What cannot be routed is answered statelessly:

- a long header of a version we do not speak → Version Negotiation (§6.1),
- an Initial under load or when Retry is on → Retry with an address-bound
  token (§8.1.2), the connection created only when the token comes back,
- a short header for no connection → Stateless Reset (§10.3), smaller than
  the packet that triggered it (§10.3.3) and rate-limited,
- anything else → dropped.

A peer that keeps sending what reaches no connection, or never answers its
Retries, is then dropped by the kernel for a while (tquic.io.peer_filter,
when the process may load eBPF), before its datagrams crowd the socket.

Every path from the network into this module is wrapped: a malformed
datagram is dropped and logged at debug level; no exception reaches the
event loop.  Connections and handshakes in progress are bounded.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from tquic.core.cids import stateless_reset_token
from tquic.core.tokens import KIND_NEW_TOKEN, KIND_RETRY, TokenManager, shared_token_manager
from tquic.io.admission import Admission, EndpointLimits, RetryPolicy
from tquic.io.endpoint_stats import EndpointStats
from tquic.io.peer_filter import kernel_peer_filter
from tquic.io.sender import DatagramSender
from tquic.io.udp import UdpSocket
from tquic.paths.network_path import Address, NetworkPath
from tquic.wire.errors import QuicError
from tquic.wire.packet import encode_retry, encode_version_negotiation, initial_token
from tquic.wire.version import QUIC_V1, QUIC_V2, grease_version

if TYPE_CHECKING:
    from tquic.core.config import QuicConfiguration
    from tquic.io.protocol import QuicConnectionProtocol, StreamHandler
    from tquic.qlog import QlogDirectory, QuicLogger

logger = logging.getLogger("tquic.io")

__all__ = ["EndpointLimits", "EndpointStats", "QuicEndpoint", "RetryPolicy", "engine_class"]

MIN_INITIAL_DATAGRAM = 1200  # RFC 9000 §14.1: a client Initial datagram is at least this big
MIN_ORIGINAL_DCID = 8  # RFC 9000 §7.2: a client's first DCID is at least 8 bytes
MIN_RESET_SIZE = 21  # RFC 9000 §10.3: 5 unpredictable bytes + 16-byte token
RESET_TOKEN_SIZE = 16
_PATH_CACHE_SIZE = 4096  # NetworkPath objects kept for reuse (per endpoint)
# RFC 9000 §17.2 Table 5 / RFC 9369 §3.2: the long-header type bits of an Initial.
_INITIAL_TYPE_BITS = {QUIC_V1: 0x00, QUIC_V2: 0x10}


class QuicEndpoint:
    """UDP sockets and the connections they carry (client or server role)."""

    def __init__(self, config: QuicConfiguration, sockets: Iterable[UdpSocket], *,
                 is_server: bool, limits: EndpointLimits | None = None,
                 qlog: QlogDirectory | None = None,
                 stream_handler: StreamHandler | None = None,
                 connection_handler: Callable[[QuicConnectionProtocol], object] | None = None,
                 loop: asyncio.AbstractEventLoop | None = None, shared: bool = False) -> None:
        self.config = config
        self.is_server = is_server
        # A client endpoint normally lives as long as its one connection; ``shared``
        # keeps it open for many (a load generator's clients on one socket).
        self._shared = shared
        self.limits = limits or EndpointLimits()
        self.loop = loop or asyncio.get_running_loop()
        self.qlog = qlog
        self.stats = EndpointStats()
        self._stream_handler = stream_handler
        self._connection_handler = connection_handler
        self._sockets = list(sockets)
        if not self._sockets:
            raise ValueError("an endpoint needs at least one socket")
        self._path_cache: dict[tuple[UdpSocket, Address, str | None], NetworkPath] = {}
        self._routes: dict[bytes, QuicConnectionProtocol] = {}
        self._initial_routes: dict[tuple[bytes, Address], QuicConnectionProtocol] = {}
        self._initial_keys: dict[QuicConnectionProtocol, tuple[bytes, Address]] = {}
        self._by_remote: dict[Address, QuicConnectionProtocol] = {}
        self._connections: set[QuicConnectionProtocol] = set()
        self._handshaking: set[QuicConnectionProtocol] = set()
        self._sender = DatagramSender(self.loop, self.stats, self.limits.send_queue_datagrams,
                                      self._sockets)
        kernel_filter = (kernel_peer_filter(self.limits.max_tracked_prefixes,
                                            self.limits.kernel_initials_per_second)
                         if is_server and self.limits.kernel_filter else None)
        self._admission = Admission(self.limits, self.loop.time(), kernel_filter)
        self._penalties = self._admission.penalties
        self._handshake_started: dict[QuicConnectionProtocol, float] = {}
        self._sweep: asyncio.TimerHandle | None = None
        self._quiet_sweep: asyncio.TimerHandle | None = None
        self._token_manager = shared_token_manager(config.token_key)
        self._cid_length = config.connection_id_length
        self._closed = False
        for sock in self._sockets:
            self._watch(sock)

    def _watch(self, sock: UdpSocket) -> None:
        self.loop.add_reader(sock.fileno(), self._on_readable, sock)
        if self._penalties.in_kernel:
            try:
                self._penalties.attach(sock.sock)
            except OSError as exc:
                logger.info("kernel peer filter not attached (%s): user-space limits only",
                            exc)
                self._penalties.close()

    # -- properties -------------------------------------------------------------------

    @property
    def sockets(self) -> list[UdpSocket]:
        return list(self._sockets)

    @property
    def local_address(self) -> Address:
        return self._sockets[0].local_address

    @property
    def connections(self) -> set[QuicConnectionProtocol]:
        return set(self._connections)

    @property
    def handshakes_in_progress(self) -> int:
        return len(self._handshaking)

    @property
    def kernel_filter_active(self) -> bool:
        """Whether flooding peers are dropped by the kernel (tquic.io.peer_filter)."""
        return self._penalties.in_kernel

    def stats_snapshot(self) -> EndpointStats:
        """A copy of :attr:`stats` with the counts kept in the kernel read in."""
        return dataclasses.replace(
            self.stats, kernel_initials_over_budget=self._penalties.initials_over_budget())

    @property
    def retry_active(self) -> bool:
        """Whether new clients are answered with a Retry right now."""
        return self._admission.retry_active

    # -- connection lifecycle -----------------------------------------------------------

    def create_connection(self, engine: Any, path: NetworkPath,
                          quic_logger: QuicLogger | None) -> QuicConnectionProtocol:
        from tquic.io.protocol import QuicConnectionProtocol

        proto = QuicConnectionProtocol(self, engine, is_client=not self.is_server,
                                       network_path=path, stream_handler=self._stream_handler,
                                       quic_logger=quic_logger)
        self._connections.add(proto)
        self._handshaking.add(proto)
        self._by_remote[path.remote] = proto
        if self.is_server:
            self._handshake_started[proto] = self.loop.time()
            if self._sweep is None:
                self._sweep = self.loop.call_later(1.0, self._sweep_handshakes)
            if self._quiet_sweep is None and self.limits.quiet_after:
                self._quiet_sweep = self.loop.call_later(self.limits.quiet_after,
                                                         self._sweep_quiet)
        return proto

    def _sweep_quiet(self) -> None:
        """Every ``quiet_after`` seconds: connections that received nothing since the
        last sweep release what they can rebuild (memory per idle connection)."""
        self._quiet_sweep = None
        if self._closed or not self._connections:
            return
        for proto in self._connections:
            proto.quiet_check()
        self._quiet_sweep = self.loop.call_later(self.limits.quiet_after, self._sweep_quiet)

    def _sweep_handshakes(self) -> None:
        """Close connections still handshaking after ``handshake_timeout`` (half-open
        connections are bounded in number by max_handshakes and in time by this)."""
        self._sweep = None
        if self._closed:
            return
        deadline = self.loop.time() - self.limits.handshake_timeout
        for proto, started in list(self._handshake_started.items()):
            if started <= deadline:
                self.stats.handshakes_timed_out += 1
                self.handshake_done(proto)  # frees the slot now; the close drains
                try:
                    proto.close(0, "handshake timeout")
                except Exception:
                    logger.debug("closing a stale handshake failed", exc_info=True)
        if self._handshake_started:
            self._sweep = self.loop.call_later(1.0, self._sweep_handshakes)

    def _forget(self, proto: QuicConnectionProtocol) -> None:
        """Drop a connection that never got going (no packet of it decrypted)."""
        self.handshake_done(proto)
        for remote in [r for r, p in self._by_remote.items() if p is proto]:
            del self._by_remote[remote]
        self._connections.discard(proto)

    def add_socket(self, sock: UdpSocket) -> None:
        """Read from (and send through) one more socket, e.g. a client migrating."""
        if self._closed:
            raise RuntimeError("the endpoint is closed")
        self._sockets.append(sock)
        self._sender.add_socket(sock)
        self._watch(sock)

    def remove_socket(self, sock: UdpSocket) -> None:
        """Stop using ``sock`` and close it (the endpoint keeps at least one)."""
        if sock not in self._sockets or len(self._sockets) == 1:
            return
        self._sockets.remove(sock)
        self._sender.remove_socket(sock, self._sockets[0])
        for key in [k for k in self._path_cache if k[0] is sock]:
            del self._path_cache[key]
        self.loop.remove_reader(sock.fileno())
        sock.close()

    def register_cid(self, cid: bytes, proto: QuicConnectionProtocol) -> None:
        if cid:
            self._routes[cid] = proto

    def unregister_cid(self, cid: bytes, proto: QuicConnectionProtocol) -> None:
        if self._routes.get(cid) is proto:
            del self._routes[cid]

    def handshake_done(self, proto: QuicConnectionProtocol) -> None:
        self._handshaking.discard(proto)
        self._handshake_started.pop(proto, None)
        key = self._initial_keys.pop(proto, None)
        if key is not None and self._initial_routes.get(key) is proto:
            del self._initial_routes[key]

    def path_changed(self, proto: QuicConnectionProtocol, path: NetworkPath) -> None:
        self._by_remote[path.remote] = proto

    def connection_finished(self, proto: QuicConnectionProtocol, cids: Iterable[bytes]) -> None:
        for cid in list(cids):
            self.unregister_cid(cid, proto)
        self.handshake_done(proto)
        remote = proto.network_path.remote
        if self._by_remote.get(remote) is proto:
            del self._by_remote[remote]
        self._connections.discard(proto)
        # Routes are registered by the protocol alone and ``cids`` is every one it
        # registered and did not retire, so they are gone now.  An address the
        # connection left (migration) may still name it: scan for those only when the
        # table holds more addresses than connections (scanning for every finished
        # connection cost O(connections) each, a few percent of a handshake's CPU).
        if len(self._by_remote) > len(self._connections):
            for stale in [r for r, p in self._by_remote.items() if p is proto]:
                del self._by_remote[stale]
        if not self.is_server and not self._connections and not self._shared:
            self.close()  # a client endpoint lives as long as its connection

    def close(self) -> None:
        """Close every connection and the sockets (nothing is sent any more: the
        connections end without a CONNECTION_CLOSE, their peers time out)."""
        if self._closed:
            return
        self._closed = True
        self._sender.close()  # nothing leaves after this (the connections' flush below neither)
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        if self._quiet_sweep is not None:
            self._quiet_sweep.cancel()
            self._quiet_sweep = None
        for proto in list(self._connections):
            try:
                proto.close()
                proto.flush()
            except Exception:
                logger.debug("closing a connection failed", exc_info=True)
        for sock in self._sockets:
            self.loop.remove_reader(sock.fileno())
            sock.close()
        self._penalties.close()

    # -- sending ----------------------------------------------------------------------

    def send_datagrams(self, datagrams: list[tuple[bytes, NetworkPath]],
                       ecn: Callable[[NetworkPath], int] | None = None) -> None:
        """Send the engine's datagrams (``tquic.io.sender``: one GSO batch per run of
        the same path, queued while the socket's buffer is full)."""
        self._sender.send_datagrams(datagrams, ecn)

    def _stateless_allowed(self, remote: Address, now: float) -> bool:
        """Whether a VN or Stateless Reset to ``remote`` fits the per-prefix and global
        budgets: asked before the answer is built, since under a flood of junk nearly
        every one is refused (a reset's token HMAC and random filler were computed for
        each and thrown away)."""
        self._junk(remote, now)  # allowed or not: the peer sent what reaches nothing
        if self._admission.allow_stateless(remote[0], now):
            return True
        self.stats.stateless_rate_limited += 1
        return False

    def _send_stateless(self, sock: UdpSocket, packet: bytes, remote: Address,
                        source: str | None) -> None:
        """Send a VN or Stateless Reset from the address the trigger was sent to
        (``source``, on a wildcard socket: a peer drops what comes from another address
        of a multihomed server)."""
        sock.send_batch([packet], remote, source=source)
        self.stats.datagrams_sent += 1

    # -- receiving --------------------------------------------------------------------

    def _on_readable(self, sock: UdpSocket) -> None:
        try:
            received = sock.recv(64)
        except Exception:
            logger.debug("recv failed", exc_info=True)
            return
        touched: dict[QuicConnectionProtocol, None] = {}
        time_now = self.loop.time
        # One flush per connection per batch: flushing more often (to ACK sooner) measured
        # slower on loopback, the CPU being the bottleneck (benchmarks/bulk.py).
        for datagram in received:
            self.stats.datagrams_received += 1
            try:
                proto = self._route(datagram.data, sock, datagram.addr, time_now(),
                                    datagram.ecn, datagram.local)
            except QuicError as exc:  # malformed: drop, one line at debug level
                self._drop(datagram.addr)
                logger.debug("dropped a datagram from %s: %s", datagram.addr, exc)
                continue
            except Exception:  # a bug, not bad input: keep the traceback for the log
                self._drop(datagram.addr)
                logger.debug("dropped a datagram from %s", datagram.addr, exc_info=True)
                continue
            if proto is not None:
                touched[proto] = None
        for proto in touched:
            proto.flush()  # flush() contains its own failures

    def datagram_received(self, data: bytes, addr: Address, sock: UdpSocket | None = None,
                          ecn: int = 0) -> None:
        """Feed one datagram as if read from ``sock`` (tests, relays)."""
        sock = sock or self._sockets[0]
        try:
            proto = self._route(data, sock, addr, self.loop.time(), ecn)
        except QuicError as exc:
            self._drop(addr)
            logger.debug("dropped a datagram from %s: %s", addr, exc)
            return
        except Exception:
            self._drop(addr)
            logger.debug("dropped a datagram from %s", addr, exc_info=True)
            return
        if proto is not None:
            proto.flush()

    def _route(self, data: bytes, sock: UdpSocket, addr: Address,
               now: float, ecn: int = 0, local: str | None = None) -> QuicConnectionProtocol | None:
        if len(data) < 1:
            self._drop(addr)
            return None
        first = data[0]
        # One NetworkPath object per (socket, peer), reused for every datagram: no
        # allocation per datagram, and the engine's path comparisons become identity
        # comparisons.  Bounded: a flood of source addresses only empties the cache.
        # On a wildcard server socket, the local address is the one the datagram was
        # sent to (IP_PKTINFO), so a multihomed server keeps one path per address.
        key = (sock, addr, local)
        path = self._path_cache.get(key)
        if path is None:
            if len(self._path_cache) >= _PATH_CACHE_SIZE:
                self._path_cache.clear()
            own = sock.local_address
            path = self._path_cache[key] = NetworkPath(
                own if local is None else (local, own[1]), addr)
        if first & 0x80:
            # Long header: version and CIDs sit at fixed places (RFC 8999 §5.1).
            if len(data) < 7:
                self._drop(addr)
                return None
            version = int.from_bytes(data[1:5], "big")
            dcid_len = data[5]
            if 6 + dcid_len >= len(data):
                self._drop(addr)
                return None
            dcid = data[6:6 + dcid_len]
            proto = self._routes.get(dcid) or self._initial_routes.get((dcid, addr))
            if proto is not None:
                proto.datagram_received(data, path, now, ecn)
                return proto
            if not self.is_server or version == 0:
                self._drop(addr)
                return None
            scid_len = data[6 + dcid_len]
            scid = data[7 + dcid_len:7 + dcid_len + scid_len]
            if len(scid) != scid_len:
                self._drop(addr)
                return None
            if version not in self.config.versions:
                self._version_negotiation(sock, data, dcid, scid, addr, now, local)
                return None
            if dcid_len > 20 or scid_len > 20:
                self._drop(addr)  # RFC 9000 §17.2: v1/v2 CIDs are at most 20 bytes
                return None
            if (first & 0x30) != _INITIAL_TYPE_BITS.get(version, -1):
                self._drop(addr)  # 0-RTT/Handshake for no connection: nothing to do
                return None
            return self._accept(data, sock, path, version, dcid, scid, now, ecn)
        # Short header: the DCID has the length we chose for our CIDs (RFC 9000 §5.1).
        dcid = data[1:1 + self._cid_length]
        proto = self._routes.get(dcid)
        if proto is not None:
            proto.datagram_received(data, path, now, ecn)
            return proto
        # Unroutable: perhaps a Stateless Reset for one of our connections with this peer
        # (RFC 9000 §10.3.1: compared against the peer's tokens, which the engine holds).
        proto = self._by_remote.get(addr)
        if proto is not None and len(data) >= MIN_RESET_SIZE:
            proto.datagram_received(data, path, now, ecn)
            return proto
        self._stateless_reset(sock, data, dcid, addr, now, local)
        return None

    def _drop(self, peer: Address) -> None:
        self.stats.datagrams_dropped += 1
        self._junk(peer, self.loop.time())

    def _junk(self, peer: Address, now: float) -> None:
        """``peer`` sent a datagram that reaches no connection: over its rate, the
        kernel drops its datagrams for a while (admission.PeerPenalties)."""
        penalties = self._penalties
        penalties.junk(peer, now)
        self.stats.peers_blocked = penalties.blocks

    def _version_negotiation(self, sock: UdpSocket, data: bytes, dcid: bytes, scid: bytes,
                             addr: Address, now: float, local: str | None) -> None:
        # RFC 9000 §6.1/§5.2.2: answer only datagrams big enough to start a connection,
        # so VN cannot amplify; list a greased version too (§6.3).
        if len(data) < MIN_INITIAL_DATAGRAM:
            self._drop(addr)
            return
        if not self._stateless_allowed(addr, now):
            return
        versions = [*self.config.versions, grease_version()]
        self._send_stateless(sock, encode_version_negotiation(scid, dcid, versions), addr,
                             local)
        self.stats.version_negotiations_sent += 1

    def _stateless_reset(self, sock: UdpSocket, data: bytes, dcid: bytes, addr: Address,
                         now: float, local: str | None) -> None:
        # RFC 9000 §10.3.3: every reset is smaller than the packet that triggered it, so two
        # endpoints cannot loop; below 21+1 bytes nothing can be sent.
        size = min(len(data) - 1, 1200)
        if not self.is_server or size < MIN_RESET_SIZE or len(dcid) < self._cid_length:
            self._drop(addr)
            return
        if not self._stateless_allowed(addr, now):
            return
        token = stateless_reset_token(self.config.stateless_reset_key, dcid)
        filler = os.urandom(size - RESET_TOKEN_SIZE)
        # §10.3: first byte 0b01xxxxxx looks like a short header.
        packet = bytes(((filler[0] & 0x3F) | 0x40,)) + filler[1:] + token
        self._send_stateless(sock, packet, addr, local)
        self.stats.stateless_resets_sent += 1

    def _accept(self, data: bytes, sock: UdpSocket, path: NetworkPath, version: int,
                dcid: bytes, scid: bytes, now: float,
                ecn: int = 0) -> QuicConnectionProtocol | None:
        if len(data) < MIN_INITIAL_DATAGRAM or len(dcid) < MIN_ORIGINAL_DCID:
            self._drop(path.remote)  # RFC 9000 §14.1, §7.2
            return None
        if len(self._connections) >= self.limits.max_connections:
            self.stats.connections_refused += 1
            self._drop(path.remote)
            return None
        admission = self._admission
        if not admission.allow_initial(path.remote[0], now):
            self.stats.initials_rate_limited += 1
            self._drop(path.remote)
            return None
        token = initial_token(data, 7 + len(dcid) + len(scid))
        need_retry = admission.need_retry(len(self._handshaking), now)
        self.stats.retry_activations = admission.retry_activations
        original_dcid: bytes | None = None
        retry_scid: bytes | None = None
        token_kind = TokenManager.token_kind(token) if token else None
        address_validated = False
        if token_kind == KIND_RETRY:
            contents = self._token_manager.validate_retry_token(token, path.remote, now)
            if contents is None:
                # §8.1.2: an invalid Retry token; without state we can only drop.
                self.stats.connections_refused += 1
                self._drop(path.remote)
                return None
            original_dcid = contents.original_destination_connection_id
            retry_scid = contents.retry_source_connection_id
            if retry_scid != dcid:
                self._drop(path.remote)
                return None
            admission.retry_answered(path.remote)
            address_validated = True
        elif token_kind == KIND_NEW_TOKEN and self._token_manager.validate_new_token(
                token, path.remote, now):
            # RFC 9000 §8.1.3: a token from an earlier connection's NEW_TOKEN frame
            # validates the address, so no Retry round trip.  An invalid one is
            # ignored: the client is treated as if it had sent no token.
            address_validated = True
            self.stats.new_tokens_accepted += 1
        elif need_retry:
            if not admission.allow_retry(path.remote, now):
                self.stats.retries_suppressed += 1
                self._drop(path.remote)
                return None
            self._send_retry(sock, version, dcid, scid, path, now)
            return None
        if len(self._handshaking) >= self.limits.max_handshakes:
            self.stats.connections_refused += 1
            self._drop(path.remote)
            return None
        proto = self._new_server_connection(path, original_dcid, retry_scid, dcid,
                                            address_validated)
        self._initial_routes[(dcid, path.remote)] = proto
        self._initial_keys[proto] = (dcid, path.remote)
        proto.datagram_received(data, path, now, ecn)
        if not proto.quic.received_any_packet:
            # A valid-looking Initial whose payload does not decrypt: keep nothing
            # (the QUIC-LEAK class of pre-handshake state an attacker could pile up).
            self.stats.initials_undecryptable += 1
            self._admission.note_undecryptable()
            self._forget(proto)
            return None
        self.stats.connections_accepted += 1
        if self._connection_handler is not None:
            try:
                self._connection_handler(proto)
            except Exception:
                logger.exception("connection handler failed")
        return proto

    def _send_retry(self, sock: UdpSocket, version: int, dcid: bytes, scid: bytes,
                    path: NetworkPath, now: float) -> None:
        # RFC 9000 §8.1.2 / §17.2.5: a new server CID and a token binding the client's
        # address, the original DCID and that CID; the connection is created on return.
        generator = self.config.connection_id_generator
        new_scid = os.urandom(self._cid_length) if generator is None else generator()
        remote = path.remote
        token = self._token_manager.create_retry_token(remote, dcid, new_scid, now)
        packet = encode_retry(version, scid, new_scid, dcid, token)
        # Retry is not an amplifier (smaller than the 1200-byte Initial it answers) and
        # the Initial was admitted by its prefix's budget already.  From the address the
        # Initial went to (path.local differs from the socket's own only with IP_PKTINFO).
        local = path.local
        sock.send_batch([packet], remote,
                        source=None if local == sock.local_address else local[0])
        self.stats.datagrams_sent += 1
        self.stats.retries_sent += 1

    def _new_server_connection(self, path: NetworkPath, original_dcid: bytes | None,
                               retry_scid: bytes | None, dcid: bytes,
                               address_validated: bool = False) -> QuicConnectionProtocol:
        quic_logger = None
        config = self.config
        if self.qlog is not None:
            quic_logger = self.qlog.create(original_dcid or dcid, "server")
            config = dataclasses.replace(config, quic_logger=quic_logger)
        kwargs: dict[str, Any] = {}
        if address_validated:
            kwargs["address_validated"] = True
        if original_dcid is not None:
            kwargs["original_destination_connection_id"] = original_dcid
            kwargs["retry_source_connection_id"] = retry_scid
        engine = engine_class()(config, is_client=False, **kwargs)
        proto = self.create_connection(engine, path, quic_logger)
        if quic_logger is not None:
            quic_logger.log(self.loop.time(), "quic:connection_started", _started(path))
        return proto


def engine_class() -> Any:
    """tquic.core.connection.QuicConnection, imported when first needed."""
    import importlib

    return importlib.import_module("tquic.core.connection").QuicConnection


def _started(path: NetworkPath) -> dict[str, Any]:
    def info(addr: Address) -> dict[str, Any]:
        if ":" in addr[0]:
            return {"ip_v6": addr[0], "port_v6": addr[1]}
        return {"ip_v4": addr[0], "port_v4": addr[1]}
    return {"local": info(path.local), "remote": info(path.remote)}
