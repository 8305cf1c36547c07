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
from dataclasses import dataclass, field

from tquic.bond.tcp_lane.auth import Authenticator, AuthResult
from tquic.bond.tcp_lane.policy import TargetPolicy
from tquic.bond.tcp_lane.relay import DEFAULT_MAX_UNREAD, relay, reset_tcp
from tquic.bond.tcp_lane.targets import (
    TargetError,
    open_checked,
    parse_authority,
    proxy_status_value,
)
from tquic.bond.tcp_lane.udp_server import CONNECT_UDP, UdpRelayServer
from tquic.h3.api import ServerTunnel
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
        self.udp = UdpRelayServer(self.policy, self.counters) if udp else None

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
            await self.udp.serve(tunnel)
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

    async def _serve_tcp(self, tunnel: ServerTunnel, client: str) -> None:
        counters = self.counters
        try:
            target = parse_authority(tunnel.request.authority)
            reader, writer, address = await open_checked(target, self.policy)
        except TargetError as exc:
            if exc.status == 403:
                counters.refused_policy += 1
            else:
                counters.failed[exc.error] = counters.failed.get(exc.error, 0) + 1
            logger.info("lane: %s CONNECT %s refused: %s (%d)", client,
                        tunnel.request.authority, exc.detail, exc.status)
            tunnel.reject(exc.status, headers=[(b"proxy-status", exc.proxy_status())])
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
