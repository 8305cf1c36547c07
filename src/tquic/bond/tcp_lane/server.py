"""The bond server's side of the TCP lane: CONNECT (RFC 9114 §4.4) requests become
TCP connections onward, where the policy allows — never an open proxy.

Plug it into an HTTP/3 server's CONNECT dispatch::

    lane = ConnectRelayHandler(TargetPolicy(), authenticate=BearerTokens.from_tokens(...))
    await serve_h3(host, port, config, handler, connect_handler=lane)

or, next to other CONNECT kinds (CONNECT-IP), call ``lane(tunnel)`` for the
requests where ``lane.handles(tunnel.request)``.  Each request is
authenticated first (401/403), then its target is parsed (400), resolved and
checked against the policy (403), connected (502/504, with a Proxy-Status
naming the RFC 9209 error), answered 200 and relayed until both sides are done.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from dataclasses import dataclass, field

from tquic.bond.tcp_lane.auth import Authenticator, AuthResult
from tquic.bond.tcp_lane.policy import TargetPolicy
from tquic.bond.tcp_lane.relay import DEFAULT_MAX_UNREAD, relay, reset_tcp
from tquic.bond.tcp_lane.targets import (
    Target,
    TargetError,
    open_checked,
    parse_authority,
    proxy_status_value,
    resolve_checked,
)
from tquic.h3.api import ServerTunnel
from tquic.h3.connect_udp import CONNECT_UDP, parse_default_path
from tquic.h3.connect_udp import TargetError as UdpTargetError
from tquic.h3.connect_udp_server import TargetPolicy as UdpTargetPolicy
from tquic.h3.connect_udp_server import UdpProxyServer
from tquic.h3.messages import Request

logger = logging.getLogger("tquic.bond.lane")


@dataclass(slots=True)
class LaneCounters:
    """What the server's lane did since it started (for logs and the control plane)."""

    accepted: int = 0
    active: int = 0
    refused_auth: int = 0
    refused_policy: int = 0
    failed: dict[str, int] = field(default_factory=dict)  # by RFC 9209 error type
    bytes_up: int = 0  # client → target
    bytes_down: int = 0  # target → client

    def snapshot(self) -> dict[str, object]:
        """The figures as plain values (the UDP sessions' are in the handler's ``udp``)."""
        return {"accepted": self.accepted, "active": self.active,
                "refused_auth": self.refused_auth, "refused_policy": self.refused_policy,
                "failed": dict(self.failed), "bytes_up": self.bytes_up,
                "bytes_down": self.bytes_down}


class ConnectRelayHandler:
    """Serves plain CONNECT (TCP) and, with ``udp``, CONNECT-UDP (RFC 9298) requests.

    ``authenticate``: the tunnel's client authentication (required: the lane
    never runs without one; pass ``allow_anyone`` explicitly to go without).
    """

    def __init__(self, policy: TargetPolicy | None = None, *, authenticate: Authenticator,
                 udp: bool = True, max_unread: int = DEFAULT_MAX_UNREAD) -> None:
        self.policy = policy or TargetPolicy()
        self._authenticate = authenticate
        self._max_unread = max_unread
        self.counters = LaneCounters()
        # CONNECT-UDP sessions are relayed by tquic.h3.connect_udp_server, after the
        # lane's own checks (authentication, ports, every resolved address); its
        # policy repeats the lane's networks for the address it connects to.
        self.udp: UdpProxyServer | None = None
        if udp:
            self.udp = UdpProxyServer(UdpTargetPolicy(
                self.policy.allow, self.policy.deny, self.policy.allow_global))

    def snapshot(self) -> dict[str, object]:
        """TCP counters, and the CONNECT-UDP sessions' under ``udp``."""
        out = self.counters.snapshot()
        if self.udp is not None:
            c = self.udp.counters
            out["udp"] = {"accepted": c.accepted, "active": c.active,
                          "datagrams_up": c.datagrams_up, "datagrams_down": c.datagrams_down,
                          "dropped": c.dropped}
        return out

    def handles(self, request: Request) -> bool:
        """Whether this handler serves ``request`` (a CONNECT of a kind it knows)."""
        if request.method != "CONNECT":
            return False
        return request.protocol is None or (request.protocol == CONNECT_UDP and
                                            self.udp is not None)

    async def __call__(self, tunnel: ServerTunnel) -> None:
        request = tunnel.request
        if not self.handles(request):
            tunnel.reject(501)
            return
        auth = await self._authenticate(tunnel)
        if not auth.ok:
            self._refuse_auth(tunnel, auth)
            return
        if request.protocol == CONNECT_UDP and self.udp is not None:
            await self._serve_udp(tunnel, self.udp)
            return
        await self._serve_tcp(tunnel, auth.client or "")

    def _refuse_auth(self, tunnel: ServerTunnel, auth: AuthResult) -> None:
        self.counters.refused_auth += 1
        status = auth.status if auth.status in (401, 403, 429) else 403
        detail = {401: "authentication required", 429: "too many failed attempts"}.get(
            status, "credentials not accepted")
        headers = [(b"proxy-status", proxy_status_value("http_request_denied", detail))]
        if status == 401:
            headers.append((b"www-authenticate", b"Bearer"))  # RFC 6750 §3
        tunnel.reject(status, headers=headers)

    def _refuse_target(self, tunnel: ServerTunnel, exc: TargetError) -> None:
        counters = self.counters
        if exc.status == 403:
            counters.refused_policy += 1
        else:
            counters.failed[exc.error] = counters.failed.get(exc.error, 0) + 1
        logger.info("lane: CONNECT %s%s refused: %s (%d)", tunnel.request.authority,
                    tunnel.request.path, exc.detail, exc.status)
        tunnel.reject(exc.status, headers=[(b"proxy-status", exc.proxy_status())])

    async def _serve_udp(self, tunnel: ServerTunnel, relay: UdpProxyServer) -> None:
        try:
            host, port = parse_default_path(tunnel.request.path)
        except UdpTargetError as exc:
            self._refuse_target(tunnel, TargetError(exc.status, exc.error, exc.detail))
            return
        try:
            await resolve_checked(Target(host.rstrip(".").lower(), port), self.policy,
                                  kind=socket.SOCK_DGRAM)
        except TargetError as exc:
            self._refuse_target(tunnel, exc)
            return
        await relay(tunnel)

    async def _serve_tcp(self, tunnel: ServerTunnel, client: str) -> None:
        counters = self.counters
        try:
            target = parse_authority(tunnel.request.authority)
            reader, writer, address = await open_checked(target, self.policy)
        except TargetError as exc:
            self._refuse_target(tunnel, exc)
            return
        try:
            tunnel.accept(200)
        except Exception:  # TunnelClosed, H3UsageError: the client went away meanwhile
            reset_tcp(writer)
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            return
        counters.accepted += 1
        counters.active += 1
        try:
            result = await relay(tunnel, reader, writer, max_unread=self._max_unread)
        finally:
            counters.active -= 1
        counters.bytes_up += result.received  # stream → target
        counters.bytes_down += result.sent  # target → stream
        logger.debug("lane: %s %s via %s: %d up, %d down, %s", client, tunnel.request.authority,
                     address, result.received, result.sent, result.outcome)
