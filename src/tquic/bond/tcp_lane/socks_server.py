"""A SOCKS5 server (RFC 1928, with RFC 1929 username/password) whose connections
leave through the bond: CONNECT becomes one HTTP/3 CONNECT stream, UDP
ASSOCIATE a UDP relay over CONNECT-UDP sessions.

Every malformed or unsupported message gets the reply RFC 1928 §6 names
(7 for an unknown command, 8 for an unknown address type, 1 otherwise) and a
closed socket; a greeting that is not SOCKS5, and failed authentication, get
their method/status answer and a close (RFC 1928 §3, RFC 1929 §2).  A client
that stalls mid-handshake is dropped after ``handshake_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tquic.bond.tcp_lane.listener import LaneListener
from tquic.bond.tcp_lane.opener import LaneConnectError, Opener
from tquic.bond.tcp_lane.relay import relay
from tquic.bond.tcp_lane.socks_wire import (
    Command,
    Method,
    Reply,
    SocksAddress,
    SocksError,
    encode_method_choice,
    encode_reply,
    encode_userpass_status,
    parse_greeting,
    parse_request,
    parse_userpass,
)
from tquic.bond.tcp_lane.udp_client import UdpAssociation

logger = logging.getLogger("tquic.bond.lane")

T = TypeVar("T")
_MAX_HANDSHAKE = 1024  # longer than any SOCKS5 handshake message (RFC 1929: 513)


@dataclass(frozen=True, slots=True)
class SocksCredentials:
    """The one username/password the SOCKS server accepts (RFC 1929)."""

    username: str
    password: str

    def __post_init__(self) -> None:
        if not 1 <= len(self.username.encode()) <= 255:
            raise ValueError("socks username: 1..255 bytes (RFC 1929)")
        if not 1 <= len(self.password.encode()) <= 255:
            raise ValueError("socks password: 1..255 bytes (RFC 1929)")

    def matches(self, username: bytes, password: bytes) -> bool:
        user_ok = hmac.compare_digest(username, self.username.encode())
        password_ok = hmac.compare_digest(password, self.password.encode())
        return user_ok and password_ok


class _Closed(Exception):
    """The handshake is over: the client went away, stalled, or was answered and closed."""


class SocksSession:
    """One client connection, from greeting to relay."""

    def __init__(self, server: SocksServer, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.buffer = b""

    async def _message(self, parse: Callable[[bytes], tuple[T, int] | None]) -> T:
        """Read until ``parse`` has a whole message (SocksError on a malformed one)."""
        while True:
            parsed = parse(self.buffer)
            if parsed is not None:
                value, used = parsed
                self.buffer = self.buffer[used:]
                return value
            if len(self.buffer) > _MAX_HANDSHAKE:
                raise SocksError("handshake message too long")
            try:
                data = await self.reader.read(4096)
            except OSError:
                raise _Closed from None
            if not data:
                raise _Closed
            self.buffer += data

    async def _send_and_close(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            self.writer.write(data)
            await self.writer.drain()
        self.writer.close()
        raise _Closed

    async def run(self) -> None:
        try:
            await asyncio.wait_for(self._negotiate(), self.server.handshake_timeout)
            request = await asyncio.wait_for(self._message(parse_request),
                                             self.server.handshake_timeout)
        except SocksError as exc:
            self.server.listener.counters.failed += 1
            logger.debug("socks: %s", exc)
            if exc.reply is None:
                self.writer.close()
                return
            with contextlib.suppress(_Closed):
                await self._send_and_close(encode_reply(exc.reply))
            return
        except (_Closed, TimeoutError):
            self.writer.close()
            return
        with contextlib.suppress(_Closed):
            if request.command == Command.CONNECT:
                await self._connect(request.address)
            elif request.command == Command.UDP_ASSOCIATE:
                await self._associate(request.address)
            else:  # BIND: inbound connections through the bond are not offered
                await self._send_and_close(encode_reply(Reply.COMMAND_NOT_SUPPORTED))

    async def _negotiate(self) -> None:
        """Method selection (RFC 1928 §3) and, if chosen, RFC 1929 authentication."""
        greeting = await self._message(parse_greeting)
        credentials = self.server.credentials
        wanted = Method.NO_AUTH if credentials is None else Method.USERPASS
        if wanted not in greeting.methods:
            self.server.listener.counters.failed += 1
            await self._send_and_close(encode_method_choice(Method.NO_ACCEPTABLE))
        self.writer.write(encode_method_choice(wanted))
        if credentials is None:
            return
        offered = await self._message(parse_userpass)
        if not credentials.matches(offered.username, offered.password):
            self.server.listener.counters.failed += 1
            await self._send_and_close(encode_userpass_status(False))
        self.writer.write(encode_userpass_status(True))

    def _bound(self) -> SocksAddress:
        sockname = self.writer.get_extra_info("sockname")
        if not sockname:
            return SocksAddress.from_ip("0.0.0.0", 0)
        return SocksAddress.from_ip(str(sockname[0]), int(sockname[1]))

    async def _connect(self, address: SocksAddress) -> None:
        try:
            tunnel = await self.server.opener.open_tcp(address)
        except LaneConnectError as exc:
            self.server.listener.counters.failed += 1
            logger.info("socks: CONNECT %s: %s", address.authority, exc)
            await self._send_and_close(encode_reply(exc.reply))
            return
        self.writer.write(encode_reply(Reply.SUCCEEDED, self._bound()))
        if self.buffer:  # data the client sent before our reply (optimistic data)
            tunnel.send(self.buffer)
            self.buffer = b""
        result = await relay(tunnel, self.reader, self.writer)
        counters = self.server.listener.counters
        counters.bytes_up += result.sent
        counters.bytes_down += result.received

    async def _associate(self, address: SocksAddress) -> None:
        """UDP ASSOCIATE (RFC 1928 §7): a relay socket for as long as this TCP connection."""
        peer = self.writer.get_extra_info("peername")
        local = self.writer.get_extra_info("sockname")
        association = UdpAssociation(self.server.opener, client_host=str(peer[0]),
                                     expected=address)
        try:
            bound = await association.start(str(local[0]))
        except OSError as exc:
            logger.info("socks: UDP ASSOCIATE: %s", exc)
            await self._send_and_close(encode_reply(Reply.GENERAL_FAILURE))
            return
        try:
            self.writer.write(encode_reply(Reply.SUCCEEDED, bound))
            await self.writer.drain()
            # RFC 1928 §7: the association ends when its TCP connection does.
            while await self.reader.read(4096):
                pass
        except OSError:
            pass
        finally:
            await association.close()
            self.writer.close()


class SocksServer:
    """Serves SOCKS5 on one listener; ``opener`` opens the bond's streams."""

    def __init__(self, opener: Opener, credentials: SocksCredentials | None = None, *,
                 handshake_timeout: float = 10.0, max_connections: int = 1024) -> None:
        self.opener = opener
        self.credentials = credentials
        self.handshake_timeout = handshake_timeout
        self.listener = LaneListener(self._handle, max_connections=max_connections)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await SocksSession(self, reader, writer).run()


async def serve_socks(listen: str | tuple[str, int], opener: Opener,
                      auth: SocksCredentials | None = None, *,
                      handshake_timeout: float = 10.0,
                      max_connections: int = 1024) -> LaneListener:
    """Start a SOCKS5 server on ``listen`` (``ADDR:PORT``); returns the running listener.

    ``auth``: require RFC 1929 username/password (else no authentication, method 0 —
    listen on loopback or a trusted LAN only).
    """
    server = SocksServer(opener, auth, handshake_timeout=handshake_timeout,
                         max_connections=max_connections)
    return await server.listener.start(listen)
