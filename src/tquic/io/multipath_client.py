"""A multipath client on the asyncio endpoint: one UDP socket per local address.

``tquic.io.api.connect`` binds one socket; a multipath client needs one per
local address (or interface) it sends from, all on the same endpoint so that
every socket's datagrams reach the one connection.  This module binds them
(:func:`bind_path_sockets`), connects from the first (:func:`connect_multipath`)
and, once the handshake is confirmed, opens one extra path from each of the
others (:func:`open_extra_paths`), as draft-ietf-quic-multipath §"Path
Initiation and Validation" describes: the client opens paths, the server
validates them with PATH_CHALLENGE/PATH_RESPONSE.  ``tquic demo`` does the same
over its netem relay.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
from collections.abc import Sequence
from typing import Any

from tquic.core.config import QuicConfiguration
from tquic.core.multipath import PathError
from tquic.io.api import start_client_connection
from tquic.io.endpoint import QuicEndpoint
from tquic.io.protocol import QuicConnectionProtocol
from tquic.io.udp import UdpSocket, resolve_async
from tquic.paths.network_path import Address, NetworkPath
from tquic.qlog import QlogDirectory

__all__ = ["LocalPath", "PathBindError", "bind_path_sockets", "connect_multipath",
           "open_extra_paths", "parse_local_path"]

_RETRY_INTERVAL = 0.01  # seconds between can_open_path checks while waiting for path CIDs


class PathBindError(OSError):
    """A local address (or interface) cannot be bound; the message says which and why."""


@dataclasses.dataclass(frozen=True, slots=True)
class LocalPath:
    """One ``--path`` value: a local address, optionally pinned to an interface."""

    host: str
    device: str | None = None

    def __str__(self) -> str:
        return self.host if self.device is None else f"{self.host}%{self.device}"


def parse_local_path(value: str) -> LocalPath:
    """``ADDR`` or ``ADDR%IFACE`` (IPv4 or IPv6 literal) → LocalPath; ValueError if bad."""
    host, sep, device = value.partition("%")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"bad path {value!r}: expected LOCAL_ADDR or LOCAL_ADDR%IFACE "
                         "(an IP address, e.g. 192.0.2.10%eth1)") from None
    if sep and not device:
        raise ValueError(f"bad path {value!r}: empty interface name after '%'")
    return LocalPath(host, device or None)


def _bind_one(path: LocalPath) -> UdpSocket:
    try:
        return UdpSocket.bind(path.host, 0, device=path.device)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        hint = ""
        if path.device is not None and exc.errno in (1, 13):  # EPERM, EACCES
            hint = " (binding to an interface needs root or CAP_NET_RAW)"
        elif exc.errno == 99:  # EADDRNOTAVAIL
            hint = " (the address is not configured on this host)"
        elif path.device is not None and exc.errno == 19:  # ENODEV
            hint = f" (no interface named {path.device!r})"
        raise PathBindError(exc.errno, f"cannot bind path {path}: {reason}{hint}") from None


def bind_path_sockets(paths: Sequence[LocalPath]) -> list[UdpSocket]:
    """One UDP socket per path (ephemeral port); all closed again if one fails."""
    sockets: list[UdpSocket] = []
    try:
        for path in paths:
            sockets.append(_bind_one(path))
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _family(host: str) -> int:
    return ipaddress.ip_address(host.split("%", 1)[0]).version


async def connect_multipath(host: str, port: int, config: QuicConfiguration,
                            sockets: Sequence[UdpSocket], *,
                            wait_connected: bool = True, timeout: float | None = 30.0,
                            qlog: QlogDirectory | None = None) -> QuicConnectionProtocol:
    """Connect from ``sockets[0]`` on an endpoint that also listens on the others.

    The endpoint (and so every socket) is closed when the connection ends.
    """
    if not sockets:
        raise ValueError("connect_multipath needs at least one socket")
    if not config.is_client:
        raise ValueError("config: connect_multipath() needs a client configuration")
    loop = asyncio.get_running_loop()
    if config.server_name is None:
        config = dataclasses.replace(config, server_name=host)
    try:
        remote: Address = await resolve_async(host, port)
        for sock in sockets:
            if _family(sock.local_address[0]) != _family(remote[0]):
                raise PathBindError(
                    97, f"path {sock.local_address[0]} and server {remote[0]} are not the same "
                        "IP version")  # EAFNOSUPPORT
        endpoint = QuicEndpoint(config, sockets, is_server=False, loop=loop)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return await start_client_connection(endpoint, sockets[0], remote, config, qlog=qlog,
                                         wait_connected=wait_connected, timeout=timeout)


async def open_extra_paths(proto: QuicConnectionProtocol, sockets: Sequence[UdpSocket], *,
                           timeout: float = 10.0) -> tuple[list[int], str | None]:
    """Open one path from each socket to path 0's peer; returns (path IDs, note).

    ``add_path`` needs the handshake confirmed and connection IDs for the new
    path ID from both sides (§"Path Initiation and Validation"), which arrive
    shortly after the handshake: wait for ``can_open_path`` up to ``timeout``.
    The note says why fewer paths were opened (None when all were).
    """
    engine: Any = proto.quic
    loop = asyncio.get_running_loop()
    path_ids: list[int] = []
    if not getattr(engine, "multipath_enabled", False):
        # Known once the handshake completed (the peer's transport parameters).
        return path_ids, "the server did not negotiate multipath (initial_max_path_id)"
    deadline = loop.time() + timeout
    for sock in sockets:
        while not engine.can_open_path:
            if loop.time() > deadline:
                return path_ids, (f"no path could be opened from {sock.local_address[0]} "
                                  f"within {timeout:g} s")
            await asyncio.sleep(_RETRY_INTERVAL)
        remote = proto.network_path.remote
        try:
            path_ids.append(engine.add_path(NetworkPath(sock.local_address, remote), None,
                                            loop.time()))
        except PathError as exc:  # e.g. the connection is closing
            return path_ids, f"no path opened from {sock.local_address[0]}: {exc}"
        finally:
            proto.flush()  # the PATH_CHALLENGE, or the PATHS_BLOCKED frame on refusal
    return path_ids, None

