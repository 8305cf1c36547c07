"""The TCP lane inside the bond daemons: what ``tquic bond client`` starts for
``--socks`` / ``--redirect``, and the server's authentication adapter.

The client's listeners live as long as the daemon; each new connection asks
``source()`` for the current HTTP/3 client, so the lane keeps working across
reconnects (a request made while the bond is down waits a little, then fails
with SOCKS reply 1 / a reset).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tquic.bond.tcp_lane.auth import Authenticator, AuthResult
from tquic.bond.tcp_lane.listener import LaneListener
from tquic.bond.tcp_lane.opener import H3Opener
from tquic.bond.tcp_lane.redirect import serve_redirect
from tquic.bond.tcp_lane.socks_server import SocksCredentials, serve_socks
from tquic.h3.api import H3Client, ServerTunnel

logger = logging.getLogger("tquic.bond.lane")

# (remote address, authorization header, now, the connection's verified TLS client
# certificate or None) -> (client name or None, HTTP status)
CheckCredentials = Callable[[str, bytes | None, float, Any], tuple[str | None, int]]


@dataclass(frozen=True, slots=True)
class ClientLaneConfig:
    """The client's lane settings (from ``--socks``, ``--redirect`` and friends)."""

    socks: tuple[str, int] | None = None
    socks_user: str | None = None
    socks_password: str | None = None
    redirect: tuple[str, int] | None = None
    redirect_interface: str | None = None

    @property
    def enabled(self) -> bool:
        return self.socks is not None or self.redirect is not None

    def credentials(self) -> SocksCredentials | None:
        if self.socks_user is None and self.socks_password is None:
            return None
        if not self.socks_user or not self.socks_password:
            raise ValueError("socks_user and socks_password go together")
        return SocksCredentials(self.socks_user, self.socks_password)


class ClientLane:
    """The running listeners of one client daemon."""

    def __init__(self, config: ClientLaneConfig, source: Callable[[], Awaitable[H3Client]], *,
                 token: str | None, server_authority: str) -> None:
        self.config = config
        self.opener = H3Opener(source, token=token, server_authority=server_authority)
        self.socks: LaneListener | None = None
        self.redirect: LaneListener | None = None

    async def start(self) -> list[str]:
        """Start the configured listeners; returns one log line per listener.  On an
        error (address in use, nft refused) nothing stays started."""
        lines: list[str] = []
        config = self.config
        try:
            if config.socks is not None:
                self.socks = await serve_socks(config.socks, self.opener, config.credentials())
                host, port = self.socks.address
                auth = "user/password" if config.socks_user else "no authentication"
                lines.append(f"lane: SOCKS5 on {_hostport(host, port)} ({auth})")
            if config.redirect is not None:
                self.redirect = await serve_redirect(config.redirect, self.opener,
                                                     interface=config.redirect_interface)
                host, port = self.redirect.address
                rule = (f", nftables redirect from {config.redirect_interface}"
                        if config.redirect_interface else " (no rule installed: add your own "
                        "nftables REDIRECT)")
                lines.append(f"lane: transparent TCP on {_hostport(host, port)}{rule}")
        except BaseException:
            await self.close()
            raise
        return lines

    async def close(self) -> None:
        for listener in (self.socks, self.redirect):
            if listener is not None:
                await listener.aclose()
        self.socks = self.redirect = None

    def status(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for name, listener in (("socks", self.socks), ("redirect", self.redirect)):
            if listener is not None:
                c = listener.counters
                out[name] = {"accepted": c.accepted, "active": c.active, "failed": c.failed,
                             "refused": c.refused, "bytes_up": c.bytes_up,
                             "bytes_down": c.bytes_down}
        return out


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class CurrentClient:
    """The HTTP/3 client of the daemon's current connection, for ``ClientLane``."""

    def __init__(self, wait: float = 10.0) -> None:
        self._client: H3Client | None = None
        self._up = asyncio.Event()
        self._wait = wait

    def set(self, client: H3Client | None) -> None:
        self._client = client
        if client is None:
            self._up.clear()
        else:
            self._up.set()

    async def __call__(self) -> H3Client:
        if self._client is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._up.wait(), self._wait)
        if self._client is None:
            raise ConnectionError("the bond is not connected")
        return self._client


def authenticator_from(check: CheckCredentials) -> Authenticator:
    """Adapt the bond server's credential check (the tunnel's) to the lane's hook: the
    same credentials as CONNECT-IP, a bearer token or the certificate the TLS layer
    verified for this connection (RFC 8446 §4.4.2), so a certificate-only client has
    its lane too."""
    async def authenticate(tunnel: ServerTunnel) -> AuthResult:
        protocol = tunnel.connection
        remote = str(protocol.remote_address[0]) if protocol is not None else "?"
        certificate = getattr(getattr(protocol, "quic", None), "peer_certificate", None)
        authorization = next((v for k, v in tunnel.request.headers if k == b"authorization"),
                             None)
        name, status = check(remote, authorization, asyncio.get_running_loop().time(),
                             certificate)
        return AuthResult(name, 200) if name is not None else AuthResult(None, status)

    return authenticate


class NullDevice:
    """No TUN: a client that only runs the lane (hosts without root); the tunnel's
    packets have nowhere to go and are dropped."""

    name = "none"

    def start(self, on_packets: Callable[[list[bytes]], None]) -> None:
        pass

    def write(self, packet: bytes) -> None:
        pass

    def poll(self) -> None:
        pass

    def close(self) -> None:
        pass
