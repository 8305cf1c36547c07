"""A transparent TCP listener: connections that nftables REDIRECTed to it leave
through the bond to the destination they were meant for.

REDIRECT rewrites the destination to the router's own address and port; the
kernel's connection tracking keeps the original one, which
``getsockopt(SOL_IP, SO_ORIGINAL_DST)`` (``SOL_IPV6, IP6T_SO_ORIGINAL_DST``
for IPv6) returns.  A connection with no original destination (one that came
to the port directly) or one whose original destination is this listener
itself is closed at once: the listener is not a proxy anyone can dial.

With ``interface``, :func:`serve_redirect` installs the nftables rule for that
LAN interface once it listens, and removes it when the listener closes.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct

from tquic.bond.tcp_lane.listener import LaneListener
from tquic.bond.tcp_lane.nft import RedirectRule, install, remove
from tquic.bond.tcp_lane.opener import LaneConnectError, Opener
from tquic.bond.tcp_lane.relay import relay, reset_tcp
from tquic.bond.tcp_lane.socks_wire import SocksAddress

logger = logging.getLogger("tquic.bond.lane")

SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h
IP6T_SO_ORIGINAL_DST = 80  # linux/netfilter_ipv6/ip6_tables.h


def original_destination(sock: socket.socket) -> tuple[str, int] | None:
    """The (address, port) a redirected connection was sent to, or None if it was
    not redirected (ENOENT: conntrack has no NAT for it)."""
    attempts: list[tuple[int, int, int]] = []
    if sock.family == socket.AF_INET6:
        attempts.append((socket.IPPROTO_IPV6, IP6T_SO_ORIGINAL_DST, 28))
    attempts.append((socket.SOL_IP, SO_ORIGINAL_DST, 16))  # IPv4 (also v4-mapped on [::])
    for level, option, size in attempts:
        try:
            raw = sock.getsockopt(level, option, size)
        except OSError:
            continue
        family = struct.unpack_from("=H", raw)[0]
        (port,) = struct.unpack_from("!H", raw, 2)
        if family == socket.AF_INET and len(raw) >= 8:
            return socket.inet_ntop(socket.AF_INET, raw[4:8]), port
        if family == socket.AF_INET6 and len(raw) >= 24:
            return socket.inet_ntop(socket.AF_INET6, raw[8:24]), port
    return None


def _same(a: tuple[str, int], b: tuple[str, int]) -> bool:
    def plain(host: str) -> str:
        return host.removeprefix("::ffff:")

    return a[1] == b[1] and plain(a[0]) == plain(b[0])


class RedirectServer:
    def __init__(self, opener: Opener, *, max_connections: int = 1024) -> None:
        self.opener = opener
        self.listener = LaneListener(self._handle, max_connections=max_connections)
        self.rule: RedirectRule | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        sockname = writer.get_extra_info("sockname")
        counters = self.listener.counters
        destination = original_destination(sock) if sock is not None else None
        if destination is None or (sockname and _same(destination, (sockname[0], sockname[1]))):
            counters.failed += 1
            reset_tcp(writer)
            return
        address = SocksAddress.from_ip(*destination)
        try:
            tunnel = await self.opener.open_tcp(address)
        except LaneConnectError as exc:
            # A transparent proxy can only answer like the target would: RST.
            counters.failed += 1
            logger.info("redirect: %s: %s", address.authority, exc)
            reset_tcp(writer)
            return
        result = await relay(tunnel, reader, writer)
        counters.bytes_up += result.sent
        counters.bytes_down += result.received


async def serve_redirect(listen: str | tuple[str, int], opener: Opener, *,
                         interface: str | None = None, exclude: tuple[str, ...] = (),
                         max_connections: int = 1024) -> LaneListener:
    """Listen on ``listen`` for REDIRECTed TCP; with ``interface``, also install the
    nftables rule for it (removed again when the listener closes).

    Listen on ``[::]:PORT`` (or ``0.0.0.0:PORT`` for IPv4 only): REDIRECT sends
    to the address of the interface the packet came in on.
    """
    server = RedirectServer(opener, max_connections=max_connections)
    listener = await server.listener.start(listen)
    if interface is not None:
        rule = RedirectRule(interface, listener.address[1], exclude)
        try:
            install(rule)
        except BaseException:
            await listener.aclose()
            raise
        server.rule = rule
        listener.on_close(lambda: remove(rule))
    return listener
