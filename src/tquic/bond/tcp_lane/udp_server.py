"""The server's CONNECT-UDP (RFC 9298) sessions: one UDP socket per session, connected
to the one target the request names (checked by the same policy as TCP).

A session lives as long as its request stream: the client's FIN or reset, or
the connection's end, closes the socket.  UDP payloads travel as HTTP
Datagrams with Context ID 0 (§5); capsules on the stream are read and
ignored (none is defined for CONNECT-UDP itself, RFC 9297 §3.2).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import TYPE_CHECKING

from tquic.bond.tcp_lane.policy import TargetPolicy
from tquic.bond.tcp_lane.targets import TargetError, proxy_status_value, resolve_checked
from tquic.bond.tcp_lane.udp_wire import CONNECT_UDP, decode_payload, encode_payload, parse_udp_path
from tquic.h3.api import ServerTunnel
from tquic.h3.errors import H3UsageError
from tquic.h3.tunnel import TunnelClosed

if TYPE_CHECKING:
    from tquic.bond.tcp_lane.server import LaneCounters

__all__ = ["CONNECT_UDP", "UdpRelayServer"]

logger = logging.getLogger("tquic.bond.lane")

MAX_UDP_PAYLOAD = 65527


class _TargetSocket(asyncio.DatagramProtocol):
    """The session's UDP socket: what the target sends goes back as HTTP Datagrams."""

    def __init__(self, tunnel: ServerTunnel, counters: LaneCounters) -> None:
        self.tunnel = tunnel
        self.counters = counters
        self.dropped = 0
        self.error: Exception | None = None

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        try:
            self.tunnel.send_datagram(encode_payload(data))
            self.counters.bytes_down += len(data)
        except (TunnelClosed, H3UsageError, ValueError):
            self.dropped += 1  # too large for a DATAGRAM frame, or the session is ending

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (port unreachable) on a connected UDP socket: UDP has no
        # way to report them to the client, so they are counted, not fatal.
        self.error = exc


class UdpRelayServer:
    """Serves CONNECT-UDP requests that passed authentication."""

    def __init__(self, policy: TargetPolicy, counters: LaneCounters) -> None:
        self.policy = policy
        self.counters = counters

    async def serve(self, tunnel: ServerTunnel) -> None:
        counters = self.counters
        try:
            target = parse_udp_path(tunnel.request.path)
            addresses = await resolve_checked(target, self.policy, kind=socket.SOCK_DGRAM)
        except TargetError as exc:
            if exc.status == 403:
                counters.refused_policy += 1
            else:
                counters.failed[exc.error] = counters.failed.get(exc.error, 0) + 1
            tunnel.reject(exc.status, headers=[(b"proxy-status", exc.proxy_status())])
            return
        loop = asyncio.get_running_loop()
        address = addresses[0]
        try:
            transport, _protocol = await loop.create_datagram_endpoint(
                lambda: _TargetSocket(tunnel, counters), remote_addr=(str(address), target.port))
        except OSError as exc:
            counters.failed["destination_unavailable"] = (
                counters.failed.get("destination_unavailable", 0) + 1)
            tunnel.reject(502, headers=[(b"proxy-status", proxy_status_value(
                "destination_unavailable", f"UDP to {address}:{target.port}: {exc}"))])
            return
        try:
            tunnel.accept(200, {"capsule-protocol": "?1"})
            counters.accepted += 1
            counters.active += 1
            try:
                await self._relay(tunnel, transport)
            finally:
                counters.active -= 1
        except (TunnelClosed, H3UsageError):
            pass
        finally:
            transport.close()

    async def _relay(self, tunnel: ServerTunnel, transport: asyncio.DatagramTransport) -> None:
        """Client datagrams → target until the request stream ends."""
        async def to_target() -> None:
            while True:
                payload = decode_payload(await tunnel.receive_datagram())
                if payload is not None and len(payload) <= MAX_UDP_PAYLOAD:
                    transport.sendto(payload)
                    self.counters.bytes_up += len(payload)

        sender = asyncio.ensure_future(to_target())
        try:
            while await tunnel.receive_capsule() is not None:
                pass  # no capsule is defined for CONNECT-UDP: skip (RFC 9297 §3.2)
            tunnel.close()
        finally:
            sender.cancel()
            with contextlib.suppress(BaseException):
                await sender
