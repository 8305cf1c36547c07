"""``tquic bond client``: bond a site's links into one CONNECT-IP tunnel to the server.

The client keeps a TUN interface (``bond0``) for as long as it runs.  It races
a handshake over every usable link (:meth:`LinkManager.race_sockets`), opens
``connect-ip`` (RFC 9484 §3) with its bearer token and our extension offer
(:mod:`tquic.bond.extensions`), asks for an address (ADDRESS_REQUEST,
§4.7.2) and configures the TUN with it, its MTU and the routes the user asked
for (``--route``; ``0.0.0.0/0`` is installed as two /1 halves so the WAN
links' own default routes stay).  Then IP packets flow between the TUN and
the tunnel's datagrams while the link manager keeps a path on every link.

If the connection is lost (every link dead, server restarted) the TUN stays,
and the client races again with backoff.  SIGTERM removes the TUN (with its
addresses and routes); SIGHUP re-reads the config file and applies the links
and policy without dropping the tunnel.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import logging
from collections import deque
from pathlib import Path
from typing import Any

from tquic.bond import extensions as ext
from tquic.bond.caps import CapStore
from tquic.bond.config import ClientConfig
from tquic.bond.links import LinkManager
from tquic.bond.links_config import ROLES, BondConfigError, parse_cap
from tquic.bond.policy import LinkPolicy
from tquic.bond.refusal import Refused, certificate_refusal, proxy_status_details
from tquic.bond.server import tunnel_status
from tquic.bond.session import IPV6_MIN_MTU, TUNNEL_MTU, IpTunnel, tunnel_mtu_for
from tquic.bond.status import BondStatus, SteeringError
from tquic.bond.tcp_lane.daemon import ClientLane, ClientLaneConfig, CurrentClient, NullDevice
from tquic.bond.tcp_lane.nft import NftError
from tquic.bond.tun import PacketDevice, TunDevice, poll_on_flush
from tquic.h3.connect_ip import (
    ConnectIpCapsule,
    ConnectIpError,
    IPNetwork,
    RequestedAddress,
    Scope,
    encode_address_request,
    parse_address_assign,
    parse_route_advertisement,
)
from tquic.h3.tunnel import Tunnel, TunnelClosed

logger = logging.getLogger("tquic.bond")

_TICK = 0.5
_PMTUD_WAIT = 1.5  # seconds the tunnel waits for PMTUD to lift the MTU to IPv6's 1280
_RECONNECT = (1.0, 2.0, 4.0, 8.0, 15.0)
_LOG_LINES = 200


def install_routes(routes: tuple[IPNetwork, ...]) -> list[IPNetwork]:
    """The routes to install: a default route becomes its two halves (RFC 4632 style)."""
    out: list[IPNetwork] = []
    for net in routes:
        if net.prefixlen == 0:
            out.extend(net.subnets(prefixlen_diff=1))
        else:
            out.append(net)
    return out


class BondClient:
    """The client daemon; ``device`` replaces the TUN (tests: a UdpPacketDevice)."""

    def __init__(self, config: ClientConfig, *, device: PacketDevice | None = None,
                 config_loader: Any = None) -> None:
        self.config = config
        self._device = device
        self._own_device = device is None
        self._config_loader = config_loader  # () -> ClientConfig, for SIGHUP
        self._log: deque[str] = deque(maxlen=_LOG_LINES)
        state = None if config.userspace else str(Path(config.state_dir) / "caps.json")
        self.caps = CapStore(state)
        self.links: LinkManager | None = None
        self.policy = LinkPolicy(guard=config.guard)
        self._tunnel: IpTunnel | None = None
        self._assigned: tuple[IPNetwork, ...] = ()
        self._tun_addresses: tuple[IPNetwork, ...] = ()
        self._routes_installed: list[IPNetwork] = []
        self._mtu = TUNNEL_MTU
        self._route_task: asyncio.Task[None] | None = None  # a reload's route change
        self._quic: Any = None  # the current connection (its DATAGRAM drop count)
        self._advertised: tuple[str, ...] = ()
        self._started = 0.0
        self._watcher: Any = None
        self._wake = asyncio.Event()
        self.connected = asyncio.Event()
        self.refused: Refused | None = None
        # The TCP lane (--socks / --redirect) over whichever connection is current.
        self.h3 = CurrentClient()
        self.lane: ClientLane | None = None

    def note(self, line: str) -> None:
        logger.info("%s", line)
        self._log.append(line)

    # -- the main loop ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> int:
        """Until ``stop`` is set: keep the tunnel up.  Returns the exit status."""
        loop = asyncio.get_running_loop()
        self._started = loop.time()
        from tquic.io.udp import resolve

        host, port = self.config.server
        try:
            remote = await loop.run_in_executor(None, resolve, host, port)
        except OSError as exc:
            self.note(f"cannot resolve server {host}: {exc}")
            return 1
        family = ipaddress.ip_address(remote[0]).version
        self.links = LinkManager(self.config.links, caps=self.caps, policy=self.policy,
                                 family=family, note=self.note)
        if self._device is None and self.config.tun == "none":
            self._device = NullDevice()  # the TCP lane alone: no TUN, no root needed
            self.note("no tun (tun = none): only the TCP lane carries traffic")
        if self._device is None:
            self._device = TunDevice(self.config.tun)
            self.note(f"tun {self._device.name} created")
        self._device.start(self._from_device)
        lane_config = ClientLaneConfig(self.config.socks, self.config.socks_user,
                                       self.config.socks_password, self.config.redirect,
                                       self.config.redirect_interface)
        if lane_config.enabled:
            lane = ClientLane(lane_config, self.h3, token=self.config.token,
                              server_authority=_authority(self.config.server))
            try:
                for line in await lane.start():
                    self.note(line)
            except (OSError, NftError, ValueError) as exc:
                self.note(f"lane: cannot start: {exc}")
                await self._teardown()
                return 1
            self.lane = lane
        if not self.config.userspace:
            from tquic.bond.netlink import NetlinkWatcher

            self._watcher = NetlinkWatcher(self._wake.set)
        attempt = 0
        try:
            while not stop.is_set():
                try:
                    await self._session(remote, stop)
                    attempt = 0
                except Refused as exc:
                    self.refused = exc
                    self.note(str(exc))
                    if exc.status in (401, 403):
                        return 3  # retrying with the same credentials cannot help
                except (OSError, ConnectionError, TimeoutError, ConnectIpError) as exc:
                    self.note(f"tunnel down: {exc}")
                if stop.is_set():
                    break
                delay = _RECONNECT[min(attempt, len(_RECONNECT) - 1)]
                attempt += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
        finally:
            if self.lane is not None:
                await self.lane.close()
                self.lane = None
            await self._teardown()
        return 0

    async def _session(self, remote: tuple[str, int], stop: asyncio.Event) -> None:
        from tquic.core.config import QuicConfiguration
        from tquic.h3.aio import H3Bridge
        from tquic.h3.api import ConnectRefused, H3Client, H3RequestError
        from tquic.h3.settings import H3Config
        from tquic.io.api import start_client_connection
        from tquic.io.endpoint import QuicEndpoint

        links = self.links
        if links is None:
            return
        loop = asyncio.get_running_loop()
        config = self.config
        await loop.run_in_executor(None, links.resolve)
        sockets = links.race_sockets(remote)
        if not sockets:
            raise OSError("no link is usable: " + "; ".join(
                f"{lk.config.name}: {lk.reason}" for lk in links.links))
        from tquic.bond.scheduler import register as register_scheduler

        register_scheduler()
        quic = QuicConfiguration(
            is_client=True, alpn_protocols=("h3",), server_name=config.server[0],
            cafile=config.ca, verify_peer=not config.insecure, max_datagram_frame_size=65535,
            certificate=Path(config.cert).read_bytes() if config.cert else None,
            private_key=Path(config.key).read_bytes() if config.key else None,
            datagram_queue_size=1024, max_path_id=8, congestion_control=config.cc,
            scheduler=config.scheduler, idle_timeout=30.0)
        h3_config = H3Config(enable_datagrams=True)
        endpoint = QuicEndpoint(quic, [s for _, s in sockets], is_server=False, loop=loop)
        bridges: dict[asyncio.Future[Any], tuple[Any, Any]] = {}
        failures: list[BaseException] = []
        for link, sock in sockets:  # the race: every link's handshake at once
            try:
                proto = await start_client_connection(endpoint, sock, remote, quic, qlog=None,
                                                      wait_connected=False, timeout=None)
            except OSError as exc:
                self.note(f"link {link.config.name}: handshake not started ({exc})")
                continue
            bridge = H3Bridge(proto, lambda q, t: H3Client(q, t, h3_config))
            bridges[bridge.ready] = (link, proto)
        winner: tuple[Any, Any, H3Client] | None = None
        pending = set(bridges)
        deadline = loop.time() + 10.0
        while pending and winner is None:
            done, pending = await asyncio.wait(pending, timeout=max(0.0, deadline - loop.time()),
                                               return_when=asyncio.FIRST_COMPLETED)
            if not done:
                break
            for future in done:
                if future.cancelled():
                    continue
                if future.exception() is not None:
                    failures.append(future.exception())  # type: ignore[arg-type]
                elif winner is None:
                    link, proto = bridges[future]
                    winner = (link, proto, future.result())
        for _link, proto in bridges.values():
            if winner is None or proto is not winner[1]:
                with contextlib.suppress(Exception):
                    proto.close(0, "another link won the race")
        if winner is None:
            endpoint.close()
            for failure in failures:
                refused = certificate_refusal(failure)
                if refused is not None:
                    raise refused
            raise TimeoutError("no link completed a handshake within 10 s"
                               + (f" ({failures[0]})" if failures else ""))
        link, proto, client = winner
        self.note(f"connected to {remote[0]}:{remote[1]} over link {link.config.name} "
                  f"(first of {len(bridges)} to answer)")
        links.attach(proto, endpoint, link, sockets)
        self.h3.set(client)
        await _await_pmtud(proto.quic)
        try:
            headers: list[tuple[str, str]] = [
                (ext.HEADER.decode(), ext.encode_offer(ext.KNOWN_EXTENSIONS).decode())]
            if config.token:
                headers.append(("authorization", f"Bearer {config.token}"))
            url = f"https://{_authority(config.server)}{Scope().path()}"
            try:
                tunnel = await asyncio.wait_for(client.connect(url, "connect-ip", headers), 10)
            except ConnectRefused as exc:
                detail = (exc.response.body.decode("utf-8", "replace").strip()
                          or proxy_status_details(exc.response.headers))
                raise Refused(exc.response.status, detail) from None
            except H3RequestError as exc:
                # TLS 1.3: our handshake completes before the server has checked our
                # certificate (RFC 8446 §4.4.2), so its refusal ends the request.
                refused = certificate_refusal(proto.close_error)
                if refused is not None:
                    raise refused from None
                raise ConnectionError(f"connect-ip request failed: {exc}") from None
            await self._run_tunnel(tunnel, proto, stop)
        finally:
            self.h3.set(None)
            links.detach()
            self._tunnel = None
            self.connected.clear()
            with contextlib.suppress(Exception):
                proto.close(0, "client stopping")
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proto.wait_closed(), 2.0)
            endpoint.close()

    async def _run_tunnel(self, tunnel: Tunnel, proto: Any, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        accepted = ext.parse_offer(ext.header_value(tunnel.peer_headers))
        accepted = ext.accept(accepted, ext.KNOWN_EXTENSIONS)
        iptunnel = IpTunnel(tunnel, self._to_device, extensions=accepted,
                            reorder=self.config.reorder, router_address=self._router_address,
                            mtu=max(576, tunnel_mtu_for(proto.quic.max_datagram_payload())),
                            fec=self.config.fec)
        self._mtu = iptunnel.mtu
        self._quic = proto.quic
        poll = poll_on_flush(self._device, proto)
        tunnel.send_capsule(ConnectIpCapsule.ADDRESS_REQUEST, encode_address_request(
            [RequestedAddress(1, ipaddress.ip_network("0.0.0.0/32"))]))
        assigned: asyncio.Future[None] = loop.create_future()
        capsules = asyncio.ensure_future(self._capsule_loop(tunnel, assigned))
        datagrams = asyncio.ensure_future(iptunnel.run_datagrams())
        stopper = asyncio.ensure_future(stop.wait())
        closed = asyncio.ensure_future(proto.wait_closed())
        try:
            done, _ = await asyncio.wait({assigned, capsules, stopper, closed}, timeout=10.0,
                                         return_when=asyncio.FIRST_COMPLETED)
            if assigned not in done:
                if stopper in done:
                    return
                raise TimeoutError("the server assigned no address within 10 s")
            await self._configure_tun()
            self._tunnel = iptunnel
            self.connected.set()
            self.note(f"tunnel up: {', '.join(str(a) for a in self._assigned)}, mtu "
                      f"{iptunnel.mtu}, extensions {','.join(accepted) or 'none'}")
            links = self.links
            saved = loop.time()
            while not (stopper.done() or closed.done() or capsules.done()):
                self._wake.clear()
                waker = asyncio.ensure_future(self._wake.wait())
                await asyncio.wait({stopper, closed, capsules, waker}, timeout=_TICK,
                                   return_when=asyncio.FIRST_COMPLETED)
                waker.cancel()
                if links is not None:
                    if self._wake.is_set() and not self.config.userspace:
                        await loop.run_in_executor(None, links.resolve)
                    links.tick()
                with contextlib.suppress(Exception):
                    iptunnel.adapt(proto.quic.path_stats(loop.time()))
                if iptunnel.follow_limit(proto.quic.max_datagram_payload(), loop.time()):
                    await self._mtu_changed(iptunnel.mtu)
                if loop.time() - saved > 10.0:
                    self.caps.save()
                    saved = loop.time()
            if closed.done() or capsules.done():
                raise ConnectionError("the connection closed")
        finally:
            self._tunnel = None
            if poll is not None:
                proto.remove_flush_listener(poll)
            iptunnel.close()
            for task in (capsules, datagrams, stopper, closed):
                task.cancel()
            for task in (capsules, datagrams):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self.caps.save()

    async def _capsule_loop(self, tunnel: Tunnel, assigned: asyncio.Future[None]) -> None:
        while True:
            try:
                capsule = await tunnel.receive_capsule()
            except (TunnelClosed, ConnectionError):
                return
            except Exception:  # malformed capsule stream
                tunnel.abort()
                return
            if capsule is None:
                return
            if capsule.type == ConnectIpCapsule.ADDRESS_ASSIGN:
                entries = parse_address_assign(capsule.value)
                usable = tuple(e.prefix for e in entries if not e.rejected)
                if usable != self._assigned:
                    self._assigned = usable
                    if self.connected.is_set():
                        await self._configure_tun()
                if usable and not assigned.done():
                    assigned.set_result(None)
            elif capsule.type == ConnectIpCapsule.ROUTE_ADVERTISEMENT:
                ranges = parse_route_advertisement(capsule.value)
                self._advertised = tuple(f"{r.start}-{r.end}" for r in ranges)

    async def _configure_tun(self) -> None:
        if self.config.userspace or self.config.tun == "none" or not self._assigned:
            return
        from tquic.bond import netlink

        loop = asyncio.get_running_loop()
        device = self._device
        if device is None:
            return
        versions = self._ip_versions()
        if 6 not in versions and any(a.version == 6 for a in self._assigned):
            self.note(f"tunnel mtu {self._mtu} is below IPv6's {IPV6_MIN_MTU}: IPv6 off "
                      "until the paths carry more")
        interfaces = [ipaddress.ip_interface(f"{a.network_address}/{a.prefixlen}")
                      for a in self._assigned if a.version in versions]
        routes = self._wanted_routes()
        await loop.run_in_executor(None, netlink.configure_interface, device.name, self._mtu,
                                   interfaces, routes)
        # A reconnect may bring another address (a server with --workers hands out its
        # worker's): the old one goes, else the kernel keeps choosing it as the source.
        stale = [ipaddress.ip_interface(f"{a.network_address}/{a.prefixlen}")
                 for a in self._tun_addresses if a not in self._assigned]
        if stale:
            await loop.run_in_executor(None, netlink.remove_addresses, device.name, stale)
            self.note(f"tunnel address {', '.join(str(a) for a in stale)} replaced by "
                      f"{', '.join(str(a) for a in self._assigned)}")
        self._tun_addresses = self._assigned
        self._routes_installed = routes

    def _ip_versions(self) -> set[int]:
        """IPv6 only while the tunnel carries 1280-byte packets (RFC 9484 §10.2; the
        kernel itself drops a link's IPv6 addresses below that MTU)."""
        return {4, 6} if self._mtu >= IPV6_MIN_MTU else {4}

    def _wanted_routes(self) -> list[IPNetwork]:
        """The configured routes the TUN carries at the current tunnel MTU."""
        versions = self._ip_versions()
        return [r for r in install_routes(self.config.routes) if r.version in versions]

    async def _mtu_changed(self, mtu: int) -> None:
        """The tunnel MTU followed the paths: the TUN's MTU, and its IPv6 addresses and
        routes added once it reaches 1280 (the same rule as bring-up and reload)."""
        self._mtu = mtu
        self.note(f"tunnel mtu {mtu}")
        try:
            await self._configure_tun()
        except OSError as exc:  # NetlinkError: keep the tunnel, say why
            self.note(f"tun: setting mtu {mtu} failed: {exc}")

    # -- data path ---------------------------------------------------------------------------

    def _from_device(self, packets: list[bytes]) -> None:
        tunnel = self._tunnel
        if tunnel is None:
            return
        for packet in packets:
            tunnel.send_packet(packet)

    def _to_device(self, packet: bytes) -> None:
        device = self._device
        if device is not None:
            device.write(packet)

    def _router_address(self, version: int) -> bytes | None:
        for net in self._assigned:
            if net.version == version:
                return net.network_address.packed
        return None

    async def _teardown(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
        self.caps.save()
        if self._device is not None and self._own_device:
            name = self._device.name
            self._device.close()  # the kernel removes its addresses and routes with it
            self.note(f"tun {name} removed")
        self._device = None

    # -- status and steering (tquic.bond.status.BondControl) ------------------------------------

    def status(self) -> BondStatus:
        now = asyncio.get_running_loop().time()
        tunnel = self._tunnel
        return BondStatus(
            "client", round(now - self._started, 3), tunnel is not None,
            links=self.links.rows() if self.links is not None else (),
            tunnel=(tunnel_status(tunnel, self._assigned, routes=self._advertised,
                                  quic=self._quic)
                    if tunnel is not None else None), log=tuple(self._log),
            lane=self.lane.status() if self.lane is not None else None)

    def _link(self, name: str) -> Any:
        if self.links is None:
            raise SteeringError("the client is not running yet")
        try:
            return self.links.find(name)
        except KeyError:
            names = ", ".join(lk.config.name for lk in self.links.links)
            raise SteeringError(f"no link named {name!r}; links: {names}") from None

    def set_role(self, link: str, role: str) -> None:
        if role not in ROLES:
            raise SteeringError(f"role {role!r}: use primary, backup or never")
        target = self._link(link)
        target.config = dataclasses.replace(target.config, role=role)
        self.note(f"link {link}: role set to {role}")

    def set_weight(self, link: str, weight: float) -> None:
        if not 0 < weight <= 1000:
            raise SteeringError(f"weight {weight}: use a number in (0, 1000]")
        target = self._link(link)
        target.config = dataclasses.replace(target.config, weight=float(weight))
        self.note(f"link {link}: weight set to {weight:g}")

    def set_cap(self, link: str, cap: str | None) -> None:
        try:
            parsed = parse_cap(cap) if cap else None
        except BondConfigError as exc:
            raise SteeringError(str(exc)) from None
        target = self._link(link)
        target.config = dataclasses.replace(target.config, cap=parsed)
        self.note(f"link {link}: cap set to {cap or 'none'}")

    def link_down(self, link: str) -> None:
        self._link(link).admin_down = True
        self.note(f"link {link}: switched off by the operator")

    def link_up(self, link: str) -> None:
        self._link(link).admin_down = False
        self.note(f"link {link}: switched on by the operator")

    def reopen(self, link: str | None = None) -> list[str]:
        """Re-open now every link that is down (or ``link``), skipping its backoff wait;
        returns the links re-opened (their paths are opening)."""
        if link is not None:
            self._link(link)
        if self.links is None:
            raise SteeringError("the client is not running yet")
        try:
            reopened = self.links.reopen(link)
        except (LookupError, ValueError) as exc:
            raise SteeringError(str(exc)) from None
        self.note(f"re-opened by the operator: {', '.join(reopened)}" if reopened else
                  "re-open asked by the operator: no link was down and usable")
        return reopened

    def reload(self) -> None:
        """Re-read the config (SIGHUP): links and policy change in place; the tunnel stays.

        The new file is validated whole first; a bad one changes nothing."""
        if self._config_loader is None or self.links is None:
            self.note("reload: no config file to re-read")
            return
        try:
            new: ClientConfig = self._config_loader()
        except BondConfigError as exc:
            self.note(f"reload refused, nothing changed: {exc}")
            return
        kept = ("server", "tun", "ca", "insecure", "token", "userspace")
        for name in kept:
            if getattr(new, name) != getattr(self.config, name):
                self.note(f"reload: {name} changed; restart the client to apply it")
        self.config = dataclasses.replace(new, **{k: getattr(self.config, k) for k in kept})
        self.policy.guard = new.guard
        current = {lk.config.name: lk for lk in self.links.links}
        from tquic.bond.links import Link

        fresh = []
        for link_config in new.links:
            link = current.pop(link_config.name, None)
            if link is None:
                link = Link(link_config)
                self.note(f"reload: link {link_config.name} added")
            elif link.config != link_config:
                link.config = link_config
                self.note(f"reload: link {link_config.name} updated")
            fresh.append(link)
        for gone in current.values():
            gone.config = dataclasses.replace(gone.config, role="never")
            fresh.append(gone)  # abandoned at the next tick, then forgotten at restart
            self.note(f"reload: link {gone.config.name} removed")
        self.links.links = fresh
        self._wake.set()
        self._reload_routes()

    def _reload_routes(self) -> None:
        """Apply the re-read routes by bring-up's rule: IPv6 routes only while the tunnel
        MTU is at least 1280; held ones are added when it rises (``_mtu_changed``)."""
        if (self.config.userspace or self.config.tun == "none" or self._device is None
                or not self._tun_addresses):
            return  # the TUN is not configured yet: bring-up installs the new routes
        wanted = self._wanted_routes()
        held = [r for r in install_routes(self.config.routes) if r not in wanted]
        if held:
            self.note(f"reload: {', '.join(str(r) for r in held)} wait for tunnel mtu "
                      f"{IPV6_MIN_MTU} (now {self._mtu})")
        if wanted == self._routes_installed:
            return
        old, self._routes_installed = self._routes_installed, wanted
        self._route_task = asyncio.ensure_future(self._replace_routes(self._device.name, old,
                                                                      wanted))

    async def _replace_routes(self, device: str, old: list[IPNetwork],
                              new: list[IPNetwork]) -> None:
        from tquic.bond import netlink

        try:
            await asyncio.get_running_loop().run_in_executor(
                None, netlink.replace_routes, device, old, new)
        except OSError as exc:  # NetlinkError: the tunnel stays, the log says why
            self.note(f"reload: routes not updated: {exc}")
            return
        self.note("reload: routes updated")


async def _await_pmtud(quic: Any) -> None:
    """Give the first path's DPLPMTUD (RFC 8899) a moment before the tunnel starts, so
    the TUN comes up with an MTU that carries IPv6 (1280) where the path allows it."""
    deadline = asyncio.get_running_loop().time() + _PMTUD_WAIT
    while (tunnel_mtu_for(quic.max_datagram_payload()) < IPV6_MIN_MTU
           and asyncio.get_running_loop().time() < deadline):
        await asyncio.sleep(0.02)


def _authority(server: tuple[str, int]) -> str:
    host, port = server
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

