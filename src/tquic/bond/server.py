"""``tquic bond server``: the aggregation end of the bond, for many client sites at once.

Listens for HTTP/3; each client opens one ``connect-ip`` extended CONNECT
(RFC 9484 §3) over its multipath connection.  The server authenticates it
(:mod:`tquic.bond.auth`), gives it addresses from the pool (ADDRESS_ASSIGN,
§4.7.1) and a default route (ROUTE_ADVERTISEMENT, §4.7.3), and forwards:

- tunnel → network: a packet whose inner source is not one of the client's
  addresses (or networks it routes) is dropped and counted ``spoofed`` (§8
  "Routing Operation": source address validation); one to another client goes
  straight to that client's tunnel if ``reach`` allows it (else dropped,
  counted ``isolated``); anything else is written to the server's TUN, where
  the kernel routes it on (and ``--nat`` masquerades it);
- network → tunnel: packets the kernel routes into the TUN go to the client
  that owns the destination.

Per-connection state is bounded: one tunnel per connection, the h3 tunnel's
datagram queue, the reorder buffer's ``max_held``; clients are bounded by
``max_clients``.

One worker of ``--workers N`` (:mod:`tquic.bond.server_workers`) is this class with a
:class:`WorkerRole`: its own TUN and slice of the pool, the group's UDP socket, QUIC-LB
CIDs carrying its index, and :class:`Peers` (the other workers' clients, so that
``reach`` holds across workers too).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import logging
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from tquic.bond import extensions as ext
from tquic.bond import nat
from tquic.bond.auth import Authenticator
from tquic.bond.config import ClientEntry, ServerConfig
from tquic.bond.credentials import check_key_pair
from tquic.bond.packet import BadPacket, addresses
from tquic.bond.pool import AddressPool, PoolExhausted, PoolSlice
from tquic.bond.session import TUNNEL_MTU, IpTunnel, max_tunnel_mtu, tunnel_mtu_for
from tquic.bond.status import (
    BondStatus,
    ClientSessionStatus,
    EndpointStatus,
    LinkStatus,
    SteeringError,
    TunnelStatus,
)
from tquic.bond.tcp_lane.daemon import authenticator_from
from tquic.bond.tcp_lane.server import ConnectRelayHandler
from tquic.bond.tun import PacketDevice, TunDevice, poll_on_flush
from tquic.h3.api import ServerTunnel
from tquic.h3.connect_ip import (
    CONNECT_IP_PROTOCOL,
    AssignedAddress,
    ConnectIpCapsule,
    ConnectIpError,
    IPAddressRange,
    IPNetwork,
    encode_address_assign,
    encode_route_advertisement,
    parse_address_request,
    parse_scope,
)
from tquic.h3.messages import Request, Response
from tquic.h3.tunnel import TunnelClosed

logger = logging.getLogger("tquic.bond")

_ADAPT_INTERVAL = 0.25  # seconds between reorder-bound updates
_LOG_LINES = 200


def _tunnel_mtu(protocol: Any) -> int:
    """A new tunnel's MTU: what its connection's paths carry now (docs/bond.md)."""
    if protocol is None:
        return TUNNEL_MTU
    return max(576, tunnel_mtu_for(protocol.quic.max_datagram_payload()))


class Peers(Protocol):
    """What a worker knows of the other workers' clients (kept by the parent)."""

    def session_up(self, name: str, addresses: tuple[IPNetwork, ...],
                   routes: tuple[IPNetwork, ...]) -> None: ...

    def session_down(self, name: str) -> None: ...

    def owner(self, address: bytes) -> str | None:
        """The client of another worker that owns ``address``; "" for a pool address
        nobody holds (dropped: it would only come back); None for the rest."""


@dataclasses.dataclass(frozen=True, slots=True)
class WorkerRole:
    """One worker of ``tquic bond server --workers N``."""

    index: int
    tun: str
    share: PoolSlice
    sock: Any  # the UdpSocket of the SO_REUSEPORT group the parent bound
    quic: Mapping[str, Any]  # QuicConfiguration fields: QUIC-LB CIDs, shared keys
    peers: Peers


@dataclasses.dataclass(eq=False)
class _Session:
    entry: ClientEntry
    addresses: tuple[IPNetwork, ...]
    tunnel: IpTunnel
    protocol: Any
    started: float
    remote: str
    spoofed: int = 0
    isolated: int = 0
    task: asyncio.Task[None] | None = None


class BondServer:
    """The server daemon; ``device`` replaces the TUN (tests: a UdpPacketDevice)."""

    def __init__(self, config: ServerConfig, *, device: PacketDevice | None = None,
                 worker: WorkerRole | None = None) -> None:
        self.config = config
        self.worker = worker
        self.pool = AddressPool(config.pool, share=worker.share if worker is not None else None)
        self.auth = Authenticator(config.clients, config.token, config.auth_failures_per_minute)
        # The TCP lane (plain CONNECT and CONNECT-UDP), behind the tunnel's own credentials.
        self.lane: ConnectRelayHandler | None = None
        if config.lane is not None:
            self.lane = ConnectRelayHandler(config.lane,
                                            authenticate=authenticator_from(self._lane_check))
        self._device = device
        self._server: Any = None
        self._sessions: dict[str, _Session] = {}
        self._by_address: dict[bytes, _Session] = {}
        self._networks: list[tuple[IPNetwork, _Session]] = []
        self._forwarding: dict[int, str] = {}
        self._nat = False
        self._started = 0.0
        self._log: deque[str] = deque(maxlen=_LOG_LINES)
        self._adapter: asyncio.Task[None] | None = None
        self.no_route = 0
        self.notes = 0  # lines noted so far (a worker's parent takes the new ones)
        self.ready = asyncio.Event()

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._server.local_address[1]) if self._server is not None else 0

    def note(self, line: str) -> None:
        """One log line per change (kept for `bond status` too)."""
        logger.info("%s", line)
        self._log.append(line)
        self.notes += 1

    async def start(self) -> None:
        from tquic.bond.scheduler import register as register_scheduler
        from tquic.core.config import QuicConfiguration
        from tquic.h3.aio import serve_h3
        from tquic.h3.settings import H3Config

        register_scheduler()
        loop = asyncio.get_running_loop()
        self._started = loop.time()
        config = self.config
        # A swapped, mismatched or expired pair: BondConfigError now, before the TUN and
        # nft state exist, instead of every client's handshake failing.
        check_key_pair(config.cert, config.key)
        quic = QuicConfiguration(
            is_client=False, alpn_protocols=("h3",),
            certificate=Path(config.cert).read_bytes(), private_key=Path(config.key).read_bytes(),
            max_datagram_frame_size=65535, datagram_queue_size=1024, max_path_id=8,
            congestion_control=config.cc, scheduler=config.scheduler, idle_timeout=30.0,
            # TLS client certificates (tquic.bond.credentials): asked for and verified
            # against client_ca in the handshake (RFC 8446 §4.3.2, §4.4.2).
            cafile=config.client_ca, require_client_cert=config.client_ca is not None)
        worker = self.worker
        serve_kwargs: dict[str, Any] = {"limits": config.limits}
        if worker is not None:
            quic = dataclasses.replace(quic, **worker.quic)
            serve_kwargs["sock"] = worker.sock
        if self._device is None:
            from tquic.bond import netlink

            device = TunDevice(worker.tun if worker is not None else config.tun)
            self._device = device
            try:
                # The shared TUN takes the largest tunnel MTU; each tunnel answers a
                # packet over its own (its connection's paths) with a Packet Too Big.
                # A worker's TUN has its slice's gateway and routes for its blocks.
                await loop.run_in_executor(None, netlink.configure_interface, device.name,
                                           max_tunnel_mtu(quic.max_udp_payload_size),
                                           self.pool.gateway_interfaces(),
                                           list(worker.share.blocks) if worker else [])
            except BaseException:
                device.close()
                raise
            if worker is None:  # the parent of the workers forwards and NATs once
                self._forwarding = nat.enable_forwarding([n.version for n in config.pool])
            if config.nat and worker is None:
                try:
                    nat.install(device.name, config.pool)
                except BaseException:
                    self._teardown()
                    raise
                self._nat = True
        self._device.start(self._from_device)
        try:
            self._server = await serve_h3(
                config.listen[0], config.listen[1], quic, self._http,
                h3_config=H3Config(enable_connect_protocol=True, enable_datagrams=True),
                connect_handler=self._on_connect, **serve_kwargs)
        except BaseException:
            self._teardown()
            raise
        self._adapter = asyncio.ensure_future(self._adapt_loop())
        who = "server" if worker is None else f"worker {worker.index}"
        self.note(f"{who} listening on {config.listen[0]}:{self.port}, pool "
                  f"{', '.join(str(n) for n in (worker.share.blocks if worker else config.pool))}"
                  f"{', nat' if self._nat else ''} (tun {self._device.name})"
                  f"{'' if self._server.endpoint.kernel_filter_active else ', kernel peer filter off'}")
        self.ready.set()

    async def close(self) -> None:
        """Stop: close every tunnel and the listener, remove TUN, nft table, forwarding."""
        if self._adapter is not None:
            self._adapter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._adapter
        for session in list(self._sessions.values()):
            with contextlib.suppress(Exception):
                session.protocol.close(0, "server shutting down")
        if self._server is not None:
            self._server.close()
            self._server = None
        self._teardown()

    def _teardown(self) -> None:
        if self._device is not None:
            self._device.close()
        if self._nat and self._device is not None:
            nat.remove(self._device.name)
            self._nat = False
        nat.restore_forwarding(self._forwarding)
        self._forwarding = {}

    # -- requests --------------------------------------------------------------------------

    async def _http(self, request: Request) -> Response:
        return Response(404, ((b"content-type", b"text/plain"),),
                        b"tquic bond server: open a connect-ip tunnel (RFC 9484)\n")

    def _lane_check(self, remote: str, authorization: bytes | None, now: float,
                    certificate: Any) -> tuple[str | None, int]:
        verdict = self.auth.check(remote, authorization, now, certificate)
        if verdict.client is None:
            self.note(f"lane: refused {remote}: {verdict.status} {verdict.reason}")
            return None, verdict.status
        return verdict.client.name, 200

    async def _on_connect(self, tunnel: ServerTunnel) -> None:
        request = tunnel.request
        protocol = getattr(tunnel._server, "protocol", None)
        remote = protocol.remote_address[0] if protocol is not None else "?"
        loop = asyncio.get_running_loop()
        if request.protocol != CONNECT_IP_PROTOCOL:
            if self.lane is not None and self.lane.handles(request):
                await self.lane(tunnel)
                return
            tunnel.reject(501, b"only connect-ip is served here\n")
            return
        try:
            parse_scope(request.path)
        except ConnectIpError:
            tunnel.reject(400, b"bad connect-ip path (RFC 9484 section 4.6)\n")
            return
        headers = dict(request.headers)
        certificate = getattr(getattr(protocol, "quic", None), "peer_certificate", None)
        verdict = self.auth.check(remote, headers.get(b"authorization"), loop.time(),
                                  certificate)
        if verdict.client is None:
            self.note(f"refused {remote}: {verdict.status} {verdict.reason}")
            # The reason also in Proxy-Status (RFC 9209 §2.1.2 details): a CONNECT's
            # refusal is read at its header section, before any body.
            details = verdict.reason.replace("\\", "").replace('"', "'")
            tunnel.reject(verdict.status, (verdict.reason + "\n").encode(),
                          [(b"proxy-status", f'tquic-bond; details="{details}"'.encode())])
            if verdict.status == 429 and protocol is not None:
                # Let the 429 arrive, then drop the connection (H3_NO_ERROR).
                loop.call_later(1.0, protocol.close, 0x100, "too many failed attempts")
            return
        entry = verdict.client
        old = self._sessions.get(entry.name)
        if old is not None:
            self.note(f"client {entry.name} reconnected from {remote}; closing its old tunnel")
            self._end_session(old)
            with contextlib.suppress(Exception):
                old.tunnel.tunnel.abort()
        if len(self._sessions) >= self.config.max_clients:
            tunnel.reject(503, b"server full\n")
            return
        try:
            assigned = self.pool.allocate(entry.name, entry.address)
        except PoolExhausted as exc:
            self.note(f"refused {entry.name}: {exc}")
            tunnel.reject(503, b"no free address\n")
            return
        accepted = ext.accept(ext.parse_offer(headers.get(ext.HEADER)), ext.KNOWN_EXTENSIONS)
        reply: list[tuple[bytes, bytes]] = [(b"capsule-protocol", b"?1")]
        if accepted:
            reply.append((ext.HEADER, ext.encode_offer(accepted)))
        tunnel.accept(200, reply)

        session = _Session(entry, assigned, None, protocol, loop.time(), remote)  # type: ignore[arg-type]
        session.tunnel = IpTunnel(tunnel, lambda p: self._from_client(session, p),
                                  extensions=accepted, reorder=self.config.reorder,
                                  router_address=self._router_address, fec=self.config.fec,
                                  mtu=_tunnel_mtu(protocol))
        self._sessions[entry.name] = session
        for net in assigned:
            self._by_address[net.network_address.packed] = session
        for net in entry.routes:
            self._networks.append((net, session))
        if self.worker is not None:
            self.worker.peers.session_up(entry.name, assigned, entry.routes)
            self._route(session, add=True)
        self._send_assignment(session, 0)
        routes = [IPAddressRange.of(ipaddress.ip_network("0.0.0.0/0"))] if any(
            n.version == 4 for n in self.config.pool) else []
        if any(n.version == 6 for n in self.config.pool):
            routes.append(IPAddressRange.of(ipaddress.ip_network("::/0")))
        with contextlib.suppress(TunnelClosed):
            tunnel.send_capsule(ConnectIpCapsule.ROUTE_ADVERTISEMENT,
                                encode_route_advertisement(routes))
        self.note(f"client {entry.name} connected from {remote}: "
                  f"{', '.join(str(a) for a in assigned)}"
                  f"{' +' + ','.join(accepted) if accepted else ' (plain RFC 9484)'}")
        datagrams = asyncio.ensure_future(session.tunnel.run_datagrams())
        poll = poll_on_flush(self._device, protocol)
        try:
            await self._capsule_loop(session)
        finally:
            if poll is not None and protocol is not None:
                protocol.remove_flush_listener(poll)
            datagrams.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await datagrams
            if self._sessions.get(entry.name) is session:
                self._end_session(session)
                self.note(f"client {entry.name} disconnected")

    async def _capsule_loop(self, session: _Session) -> None:
        tunnel = session.tunnel.tunnel
        while True:
            try:
                capsule = await tunnel.receive_capsule()
            except (TunnelClosed, ConnectionError):
                return
            except Exception:  # a malformed capsule stream (H3StreamError)
                tunnel.abort()
                return
            if capsule is None:
                return
            if capsule.type == ConnectIpCapsule.ADDRESS_REQUEST:
                try:
                    requests = parse_address_request(capsule.value)
                except ConnectIpError:
                    tunnel.abort()  # §4.7.2: malformed -> abort the request stream
                    return
                for request in requests:
                    self._send_assignment(session, request.request_id)
            # ADDRESS_ASSIGN / ROUTE_ADVERTISEMENT from a client: it routes nothing to us
            # that it was not assigned; unknown capsules are skipped (RFC 9297 §3.2).

    def _send_assignment(self, session: _Session, request_id: int) -> None:
        assigned = [AssignedAddress(request_id, net) for net in session.addresses]
        with contextlib.suppress(TunnelClosed):
            session.tunnel.tunnel.send_capsule(ConnectIpCapsule.ADDRESS_ASSIGN,
                                               encode_address_assign(assigned))

    def evict(self, name: str, why: str) -> None:
        """End ``name``'s tunnel here (it reconnected to another worker)."""
        session = self._sessions.get(name)
        if session is None:
            return
        self.note(f"client {name} {why}; closing its old tunnel")
        self._end_session(session)
        with contextlib.suppress(Exception):
            session.tunnel.tunnel.abort()

    def _route(self, session: _Session, *, add: bool) -> None:
        """A worker routes through its TUN what its slice's blocks do not cover: the
        client's fixed address from another slice and the networks behind it."""
        worker = self.worker
        if worker is None or not isinstance(self._device, TunDevice):
            return
        nets = [a for a in session.addresses if a not in worker.share]
        nets += list(session.entry.routes)
        if not nets:
            return
        from tquic.bond import netlink

        name = self._device.name
        old, new = ([], nets) if add else (nets, [])

        def apply() -> None:
            try:
                netlink.replace_routes(name, old, new)
            except OSError as exc:
                self.note(f"client {session.entry.name}: {exc}")

        asyncio.get_running_loop().run_in_executor(None, apply)

    def _end_session(self, session: _Session) -> None:
        if self.worker is not None and self._sessions.get(session.entry.name) is session:
            self.worker.peers.session_down(session.entry.name)
            self._route(session, add=False)
        self._sessions.pop(session.entry.name, None)
        for net in session.addresses:
            if self._by_address.get(net.network_address.packed) is session:
                del self._by_address[net.network_address.packed]
        self._networks = [(n, s) for n, s in self._networks if s is not session]
        self.pool.release(session.entry.name, session.addresses)
        session.tunnel.close()

    # -- forwarding ------------------------------------------------------------------------

    def _router_address(self, version: int) -> bytes | None:
        gateway = self.pool.gateway(version)
        return None if gateway is None else gateway.network_address.packed

    def _owner(self, address: bytes) -> _Session | None:
        session = self._by_address.get(address)
        if session is not None or not self._networks:
            return session
        ip = ipaddress.ip_address(address)
        for net, owner in self._networks:
            if ip in net:
                return owner
        return None

    def _from_device(self, packets: list[bytes]) -> None:
        by_address = self._by_address
        for packet in packets:
            try:
                _, dst = addresses(packet)
            except BadPacket:
                continue
            session = by_address.get(dst) or (self._owner(dst) if self._networks else None)
            if session is None:
                self.no_route += 1
                continue
            session.tunnel.send_packet(packet)

    def _from_client(self, session: _Session, packet: bytes) -> None:
        try:
            src, dst = addresses(packet)
        except BadPacket:
            session.spoofed += 1
            return
        if self._owner(src) is not session:
            session.spoofed += 1  # §8: source address validation
            return
        other = self._by_address.get(dst) or (self._owner(dst) if self._networks else None)
        if other is not None:
            if other is session:
                return  # to itself: nothing to forward
            if self._may_reach(session.entry, other.entry.name):
                other.tunnel.send_packet(packet)
            else:
                session.isolated += 1
            return
        if self.worker is not None:
            # Another worker's client: through the TUNs (the kernel routes it to that
            # worker's), if reach allows it; a pool address nobody holds: dropped.
            name = self.worker.peers.owner(dst)
            if name == "":
                self.no_route += 1
                return
            if name is not None and not self._may_reach(session.entry, name):
                session.isolated += 1
                return
        if self._device is not None:
            self._device.write(packet)

    def _may_reach(self, a: ClientEntry, b: str) -> bool:
        if not self.config.isolate:
            return True
        return "*" in a.reach or b in a.reach

    async def _adapt_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(_ADAPT_INTERVAL)
            now = loop.time()
            for session in list(self._sessions.values()):
                with contextlib.suppress(Exception):
                    quic = session.protocol.quic
                    session.tunnel.adapt(quic.path_stats(now))
                    session.tunnel.follow_limit(quic.max_datagram_payload(), now)

    # -- status and steering (tquic.bond.status.BondControl) --------------------------------

    def status(self) -> BondStatus:
        loop = asyncio.get_running_loop()
        now = loop.time()
        clients = []
        for session in self._sessions.values():
            paths: list[LinkStatus] = []
            with contextlib.suppress(Exception):
                for st in session.protocol.quic.path_stats(now):
                    paths.append(path_status(st))
            clients.append(ClientSessionStatus(
                session.entry.name, session.remote, round(now - session.started, 3),
                tuple(paths), tunnel_status(session.tunnel, session.addresses,
                                            session.spoofed, session.isolated,
                                            quic=getattr(session.protocol, "quic", None))))
        endpoints = (() if self._server is None
                     else (EndpointStatus.of(self._server.endpoint),))
        return BondStatus("server", round(now - self._started, 3), self._server is not None,
                          clients=tuple(clients), auth_failures=self.auth.refused,
                          log=tuple(self._log),
                          lane=self.lane.snapshot() if self.lane is not None else None,
                          endpoints=endpoints)

    def set_role(self, link: str, role: str) -> None:
        raise SteeringError("a server has no links to steer; steer the client")

    def set_weight(self, link: str, weight: float) -> None:
        raise SteeringError("a server has no links to steer; steer the client")

    def set_cap(self, link: str, cap: str | None) -> None:
        raise SteeringError("a server has no links to steer; steer the client")

    def link_down(self, link: str) -> None:
        raise SteeringError("a server has no links to steer; steer the client")

    def link_up(self, link: str) -> None:
        raise SteeringError("a server has no links to steer; steer the client")

    def reopen(self, link: str | None = None) -> list[str]:
        raise SteeringError("a server opens no paths: its clients re-open their links")

    def reload(self) -> None:
        """Nothing to reload without a config file path (the CLI re-reads clients)."""


def path_status(st: Any) -> LinkStatus:
    """A server-side path (PathStats) as a LinkStatus row."""
    lost = st.packets_lost / st.packets_sent if st.packets_sent else 0.0
    return LinkStatus(
        name=f"path{st.path_id}", spec=f"{st.network_path.remote[0]}:{st.network_path.remote[1]}",
        state="up" if st.state == "validated" else st.state, role="primary",
        effective_role="backup" if st.peer_status == "backup" else "primary", reason="",
        weight=1.0, path_id=st.path_id,
        local=f"{st.network_path.local[0]}:{st.network_path.local[1]}",
        srtt_ms=round(st.srtt * 1000, 3), min_rtt_ms=round(st.min_rtt * 1000, 3), cwnd=st.cwnd,
        bytes_sent=st.bytes_sent, bytes_received=st.bytes_received,
        packets_lost=st.packets_lost, loss=round(lost, 5), goodput_bps=st.goodput * 8,
        cap_bytes=None, cap_used=0, cap_period=None, packets_sent=st.packets_sent,
        packets_retransmitted=st.packets_retransmitted, ecn=st.ecn)


def tunnel_status(tunnel: IpTunnel, assigned: tuple[IPNetwork, ...], spoofed: int = 0,
                  isolated: int = 0, routes: tuple[str, ...] = (),
                  quic: Any = None) -> TunnelStatus:
    """``quic``: the tunnel's connection, whose own DATAGRAM queue drops count too."""
    c = tunnel.pipeline.counters
    return TunnelStatus(
        addresses=tuple(str(a) for a in assigned), routes=routes,
        extensions=tuple(sorted(tunnel.extensions)), mtu=tunnel.mtu,
        packets_out=c.packets_out, bytes_out=c.bytes_out, packets_in=c.packets_in,
        bytes_in=c.bytes_in, datagrams_dropped=tunnel.send_errors
        + tunnel.tunnel.datagrams_dropped + int(getattr(quic, "datagrams_dropped", 0)),
        too_big=c.too_big, spoofed=spoofed,
        isolated=isolated, reorder=tunnel.pipeline.reorder.stats(),
        fec=tunnel.fec.stats() if tunnel.fec is not None else None)
