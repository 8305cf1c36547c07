"""The CONNECT-UDP proxy (RFC 9298 §3): who may use it, where to, and the relay.

Each accepted request gets one *connected* UDP socket to the one target it names
(§3: the kernel then drops packets from anyone else), opened after DNS
resolution and after every candidate address is checked against the
:class:`TargetPolicy`.  Refusals name their reason in a Proxy-Status field
(RFC 9209) and send nothing to the target:

- 401: no valid bearer token (``proxy-authorization`` or ``authorization``);
- 400: a malformed target; 403: a target the policy forbids
  (``destination_ip_prohibited``); 502: DNS failure (``dns_error``) or a socket
  that cannot be opened (``destination_unavailable``); 503: too many sessions.

The socket lives as long as the request stream (§3): the client's FIN or reset,
an ICMP error on the socket, or ``idle_timeout`` without traffic ends both.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tquic.h3.api import ServerTunnel
from tquic.h3.connect_udp import (
    CONNECT_UDP,
    MAX_UDP_PAYLOAD,
    TargetError,
    decode_udp_payload,
    encode_udp_payload,
    parse_default_path,
)
from tquic.h3.errors import H3ErrorCode, H3UsageError
from tquic.h3.tunnel import TunnelClosed

logger = logging.getLogger("tquic.proxy")

# Linux <linux/in.h>, <linux/in6.h>: the socket module does not name these.
_IP_MTU_DISCOVER, _IPV6_MTU_DISCOVER, _PMTUDISC_DO = 10, 23, 2

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    """Which target addresses the proxy relays to.

    An address is allowed when it is in ``allow``, or when ``allow_global`` is on
    and it is a global unicast address — so loopback, link-local, private
    (RFC 1918, fc00::/7), CGNAT, multicast and reserved targets are refused by
    default.  ``deny`` wins over both.  IPv4-mapped IPv6 addresses are judged as
    the IPv4 address they carry.
    """

    allow: tuple[IPNetwork, ...] = ()
    deny: tuple[IPNetwork, ...] = ()
    allow_global: bool = True

    @classmethod
    def from_strings(cls, allow: Iterable[str] = (), deny: Iterable[str] = (),
                     allow_global: bool = True) -> TargetPolicy:
        """Build from CIDR strings; ValueError names the bad one."""
        def nets(values: Iterable[str], what: str) -> tuple[IPNetwork, ...]:
            out: list[IPNetwork] = []
            for value in values:
                try:
                    out.append(ipaddress.ip_network(value, strict=False))
                except ValueError:
                    raise ValueError(f"{what} {value!r}: not an address or CIDR "
                                     "(e.g. 127.0.0.0/8, 2001:db8::/32)") from None
            return tuple(out)

        return cls(nets(allow, "--allow"), nets(deny, "--deny"), allow_global)

    def permits(self, address: IPAddress) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in net for net in self.deny if net.version == address.version):
            return False
        if any(address in net for net in self.allow if net.version == address.version):
            return True
        return self.allow_global and address.is_global and not address.is_multicast


class BearerTokens:
    """Accepted tokens, kept as SHA-256 digests and compared in constant time."""

    def __init__(self, tokens: Iterable[str]) -> None:
        self._digests = [hashlib.sha256(t.encode()).digest() for t in tokens if t]

    @property
    def required(self) -> bool:
        return bool(self._digests)

    def check(self, headers: Iterable[tuple[bytes, bytes]]) -> bool:
        """A ``proxy-authorization`` or ``authorization: Bearer <token>`` we know."""
        for name, value in headers:
            if name not in (b"proxy-authorization", b"authorization"):
                continue
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                continue
            digest = hashlib.sha256(token.strip().encode()).digest()
            if any(hmac.compare_digest(digest, known) for known in self._digests):
                return True
        return False


@dataclass(slots=True)
class ProxyCounters:
    accepted: int = 0
    active: int = 0
    refused: dict[int, int] = field(default_factory=dict)  # status -> count
    datagrams_up: int = 0  # client -> target
    datagrams_down: int = 0  # target -> client
    dropped: int = 0


class _TargetSocket(asyncio.DatagramProtocol):
    """The session's connected socket: the target's packets go back as HTTP Datagrams."""

    def __init__(self, tunnel: ServerTunnel, counters: ProxyCounters) -> None:
        self.tunnel = tunnel
        self.counters = counters
        self.last_activity = asyncio.get_running_loop().time()
        self.failed: asyncio.Future[Exception] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.last_activity = asyncio.get_running_loop().time()
        try:
            self.tunnel.send_datagram(encode_udp_payload(data))
            self.counters.datagrams_down += 1
        except (TunnelClosed, H3UsageError, ValueError):
            self.counters.dropped += 1  # larger than a DATAGRAM frame: dropped (§5)

    def error_received(self, exc: Exception) -> None:
        # §3: a socket the OS reports unusable (ICMP unreachable) ends the request stream.
        if not self.failed.done():
            self.failed.set_result(exc)


class UdpProxyServer:
    """The ``connect_handler`` of an HTTP/3 server that proxies UDP."""

    def __init__(self, policy: TargetPolicy | None = None, tokens: Iterable[str] = (),
                 *, max_sessions: int = 1024, idle_timeout: float = 120.0) -> None:
        self.policy = policy or TargetPolicy()
        self.tokens = BearerTokens(tokens)
        self.max_sessions = max_sessions
        self.idle_timeout = idle_timeout  # §3: SHOULD NOT be below two minutes
        self.counters = ProxyCounters()

    async def __call__(self, tunnel: ServerTunnel) -> None:
        request = tunnel.request
        try:
            if request.protocol != CONNECT_UDP:
                raise TargetError(501, "http_protocol_error",
                                  f"only CONNECT-UDP here, not {request.protocol or 'CONNECT'}")
            if self.tokens.required and not self.tokens.check(request.headers):
                raise TargetError(401, "http_request_denied",
                                  "a valid 'proxy-authorization: Bearer TOKEN' is required")
            if self.counters.active >= self.max_sessions:
                raise TargetError(503, "connection_limit_reached", "too many UDP sessions")
            host, port = parse_default_path(request.path)
            address = await self._resolve(host, port)
        except TargetError as exc:
            self._refuse(tunnel, exc)
            return
        await self._relay(tunnel, address, port)

    def _refuse(self, tunnel: ServerTunnel, exc: TargetError) -> None:
        self.counters.refused[exc.status] = self.counters.refused.get(exc.status, 0) + 1
        logger.info("refused %s: %d %s", tunnel.request.path, exc.status, exc.detail)
        headers = [(b"proxy-status", exc.proxy_status())]
        if exc.status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        headers.append((b"content-type", b"text/plain; charset=utf-8"))
        with contextlib.suppress(H3UsageError, TunnelClosed):
            tunnel.reject(exc.status, (exc.detail + "\n").encode(), headers)

    async def _resolve(self, host: str, port: int) -> IPAddress:
        """§3: resolve before answering; the first permitted address, or 403 / 502."""
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            candidates = [literal]
        else:
            loop = asyncio.get_running_loop()
            try:
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
            except (socket.gaierror, UnicodeError) as exc:
                raise TargetError(502, "dns_error", f"{host}: {exc}") from None
            candidates = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
        for address in candidates:
            if self.policy.permits(address):
                return address
        raise TargetError(403, "destination_ip_prohibited",
                          f"{host} ({', '.join(map(str, candidates))}) is not an allowed target")

    async def _relay(self, tunnel: ServerTunnel, address: IPAddress, port: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            transport, proto = await loop.create_datagram_endpoint(
                lambda: _TargetSocket(tunnel, self.counters), remote_addr=(str(address), port))
        except OSError as exc:
            self._refuse(tunnel, TargetError(502, "destination_unavailable",
                                             f"UDP to {address}:{port}: {exc.strerror or exc}"))
            return
        _forbid_fragmentation(transport)
        counters = self.counters
        counters.accepted += 1
        counters.active += 1
        uplink = asyncio.ensure_future(self._uplink(tunnel, transport, proto))
        ended = asyncio.ensure_future(self._until_stream_ends(tunnel))
        try:
            tunnel.accept(200, {"capsule-protocol": "?1"})
            # The idle timer is checked a few times per timeout, not re-armed per packet.
            check = max(self.idle_timeout / 4, 0.05)
            waiters: set[asyncio.Future[Any]] = {uplink, ended, proto.failed}
            while True:
                done, _ = await asyncio.wait(waiters, timeout=check,
                                             return_when=asyncio.FIRST_COMPLETED)
                if done or loop.time() - proto.last_activity >= self.idle_timeout:
                    break
        except (TunnelClosed, H3UsageError):
            pass
        finally:
            counters.active -= 1
            for task in (uplink, ended):
                task.cancel()
            transport.close()
            if ended.cancelled() or not ended.done():
                with contextlib.suppress(TunnelClosed, H3UsageError):
                    tunnel.close()  # idle or socket error: close the request stream (§3)

    async def _uplink(self, tunnel: ServerTunnel, transport: asyncio.DatagramTransport,
                      proto: _TargetSocket) -> None:
        """Client datagrams → the target."""
        while True:
            payload = decode_udp_payload(await tunnel.receive_datagram())
            if payload is None:
                self.counters.dropped += 1
                continue
            if len(payload) > MAX_UDP_PAYLOAD:
                # §5: a UDP Proxying Payload above 65527 bytes aborts the request.
                tunnel.abort(H3ErrorCode.H3_DATAGRAM_ERROR)
                return
            proto.last_activity = asyncio.get_running_loop().time()
            transport.sendto(payload)
            self.counters.datagrams_up += 1

    @staticmethod
    async def _until_stream_ends(tunnel: ServerTunnel) -> None:
        with contextlib.suppress(Exception):
            while await tunnel.receive_capsule() is not None:
                pass  # no capsule is defined for CONNECT-UDP (RFC 9297 §3.2)
        with contextlib.suppress(TunnelClosed, H3UsageError):
            tunnel.close()


def _forbid_fragmentation(transport: asyncio.DatagramTransport) -> None:
    """§3: no IP fragmentation towards the target (DF set; too-large packets fail)."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    with contextlib.suppress(OSError):
        if sock.family == socket.AF_INET:
            sock.setsockopt(socket.IPPROTO_IP, _IP_MTU_DISCOVER, _PMTUDISC_DO)
        else:
            sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_MTU_DISCOVER, _PMTUDISC_DO)
