"""The client's way to the bond server: one HTTP/3 CONNECT stream per TCP connection
(RFC 9114 §4.4), one CONNECT-UDP session (RFC 9298, :mod:`tquic.h3.connect_udp`) per UDP target.

The SOCKS server and the redirect listener take any :class:`Opener`; the bond
client gives them an :class:`H3Opener` over its (multipath) connection.  A
refused or failed CONNECT comes back as :class:`LaneConnectError` carrying the
SOCKS reply that says the same (RFC 1928 §6), from the status and the
Proxy-Status error type (RFC 9209) the server answered with.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from tquic.bond.tcp_lane.socks_wire import Reply, SocksAddress
from tquic.bond.tcp_lane.targets import proxy_status_error
from tquic.h3.api import ConnectRefused, H3Client, H3RequestError
from tquic.h3.connect_udp import TemplateError, UdpProxyRefused, UdpProxySession, open_udp
from tquic.h3.errors import H3UsageError
from tquic.h3.messages import HeadersLike, normalize_headers
from tquic.h3.tunnel import Tunnel

# RFC 9209 error type → the SOCKS reply meaning the same.
_REPLIES = {
    "destination_ip_prohibited": Reply.NOT_ALLOWED,
    "http_request_denied": Reply.NOT_ALLOWED,
    "connection_refused": Reply.CONNECTION_REFUSED,
    "destination_ip_unroutable": Reply.NETWORK_UNREACHABLE,
    "destination_unavailable": Reply.HOST_UNREACHABLE,
    "dns_error": Reply.HOST_UNREACHABLE,
    "dns_timeout": Reply.HOST_UNREACHABLE,
    "connection_timeout": Reply.HOST_UNREACHABLE,
}


class LaneConnectError(ConnectionError):
    """The bond server did not open the tunnel; ``reply`` is the SOCKS answer."""

    def __init__(self, message: str, reply: Reply, status: int | None = None) -> None:
        super().__init__(message)
        self.reply = reply
        self.status = status


def reply_for(status: int, error: str | None) -> Reply:
    """The SOCKS reply for a CONNECT answered ``status`` with Proxy-Status ``error``."""
    if error in _REPLIES:
        return _REPLIES[error]
    if status in (401, 403, 407):
        return Reply.NOT_ALLOWED
    if status == 504:
        return Reply.HOST_UNREACHABLE
    return Reply.GENERAL_FAILURE


class Opener(Protocol):
    """What the listeners need: a tunnel to a TCP target, a session to a UDP target."""

    async def open_tcp(self, address: SocksAddress) -> Tunnel: ...

    async def open_udp(self, address: SocksAddress) -> UdpProxySession: ...


ClientSource = Callable[[], Awaitable[H3Client]]


class H3Opener:
    """Opens lane streams on an :class:`H3Client`.

    ``client``: the client, or an async callable returning the current one (a
    bond client that reconnects hands out its newest connection).
    ``headers``: sent with every request — the tunnel's authentication
    (``authorization: Bearer …``); ``token`` is the shorthand for that.
    ``server_authority``: the bond server's ``host:port`` for CONNECT-UDP's
    ``:authority`` (plain CONNECT carries the target there instead).
    """

    def __init__(self, client: H3Client | ClientSource, *, token: str | None = None,
                 headers: HeadersLike | None = None, server_authority: str = "bond",
                 timeout: float = 30.0) -> None:
        self._client = client
        extra = list(normalize_headers(headers))
        if token is not None:
            extra.append((b"authorization", f"Bearer {token}".encode()))
        self._headers = tuple(extra)
        self._server_authority = server_authority
        self._timeout = timeout

    async def _current(self) -> H3Client:
        client = self._client
        if isinstance(client, H3Client):
            return client
        return await client()

    async def open_tcp(self, address: SocksAddress) -> Tunnel:
        return await self._open(address.authority, None)

    async def open_udp(self, address: SocksAddress) -> UdpProxySession:
        """A CONNECT-UDP session (RFC 9298, tquic.h3.connect_udp) to ``address``."""
        try:
            client = await self._current()
            return await asyncio.wait_for(
                open_udp(client, f"https://{self._server_authority}", address.host,
                         address.port, self._headers), self._timeout)
        except UdpProxyRefused as exc:
            error = proxy_status_error(exc.proxy_status.encode("latin-1")) \
                if exc.proxy_status else None
            raise LaneConnectError(str(exc), reply_for(exc.status, error), exc.status) from None
        except TemplateError as exc:
            raise LaneConnectError(f"bad UDP target: {exc}", Reply.GENERAL_FAILURE) from None
        except TimeoutError:
            raise LaneConnectError(f"no answer from the bond server in {self._timeout:g} s",
                                   Reply.HOST_UNREACHABLE) from None
        except (H3RequestError, H3UsageError, ConnectionError) as exc:
            raise LaneConnectError(f"bond connection unusable: {exc}",
                                   Reply.GENERAL_FAILURE) from None

    async def _open(self, target: str, protocol: str | None) -> Tunnel:
        try:
            client = await self._current()
            return await asyncio.wait_for(
                client.connect(target, protocol, self._headers), self._timeout)
        except ConnectRefused as exc:
            reply = exc.response
            error = next((proxy_status_error(v) for k, v in reply.headers
                          if k == b"proxy-status"), None)
            raise LaneConnectError(
                f"bond server answered {reply.status}" + (f" ({error})" if error else ""),
                reply_for(reply.status, error), reply.status) from None
        except TimeoutError:
            raise LaneConnectError(f"no answer from the bond server in {self._timeout:g} s",
                                   Reply.HOST_UNREACHABLE) from None
        except (H3RequestError, H3UsageError, ConnectionError) as exc:
            raise LaneConnectError(f"bond connection unusable: {exc}",
                                   Reply.GENERAL_FAILURE) from None
