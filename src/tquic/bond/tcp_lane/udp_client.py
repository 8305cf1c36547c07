"""SOCKS5 UDP ASSOCIATE (RFC 1928 §7) over CONNECT-UDP (RFC 9298) sessions
(:class:`tquic.h3.connect_udp.UdpProxySession`).

The association binds one UDP relay socket for the SOCKS client.  Each
datagram the client sends there names its destination in a SOCKS UDP header;
the association opens one CONNECT-UDP session per destination (at most
``max_sessions``, the least recently used closed beyond that) and sends the
payload as an HTTP Datagram (Context ID 0).  What a destination sends back
returns to the client with that destination in the header.

Datagrams from any address but the SOCKS client's (the TCP connection's
host, and the port it announced, if it announced one) are dropped, as are
fragments (FRAG ≠ 0: fragmentation is optional and not supported, §7).
While a session opens, a few datagrams wait for it; a destination the server
refused is not asked again for ``retry_after`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from tquic.bond.tcp_lane.opener import LaneConnectError, Opener
from tquic.bond.tcp_lane.socks_wire import (
    SocksAddress,
    SocksError,
    UdpPacket,
    encode_udp,
    parse_udp,
)
from tquic.h3.connect_udp import UdpProxySession

logger = logging.getLogger("tquic.bond.lane")

Addr = tuple[str, int]
_MAX_REFUSED = 1024  # destinations remembered as refused, at most


@dataclass(slots=True)
class UdpCounters:
    sent: int = 0  # datagrams client → bond
    received: int = 0  # datagrams bond → client
    dropped: int = 0  # foreign source, fragments, malformed, refused, queue full


@dataclass(slots=True)
class _Session:
    address: SocksAddress
    proxy: UdpProxySession | None = None
    waiting: deque[bytes] = field(default_factory=lambda: deque(maxlen=16))
    task: asyncio.Task[None] | None = None


def _normal(host: str) -> str:
    """An address as compared: no zone, IPv4-mapped IPv6 as plain IPv4."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


class _RelaySocket(asyncio.DatagramProtocol):
    def __init__(self, association: UdpAssociation) -> None:
        self.association = association

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.association.from_client(data, (str(addr[0]), int(addr[1])))


class UdpAssociation:
    """One UDP ASSOCIATE: the relay socket and its CONNECT-UDP sessions."""

    def __init__(self, opener: Opener, *, client_host: str, expected: SocksAddress,
                 max_sessions: int = 64, retry_after: float = 5.0) -> None:
        self._opener = opener
        self._client_host = _normal(client_host)
        # RFC 1928 §7: DST.ADDR/DST.PORT of the request is where the client will
        # send from; zeros mean "not known yet".
        self._expected_port = expected.port
        self._client: Addr | None = None
        self._sessions: OrderedDict[tuple[str, int], _Session] = OrderedDict()
        self._refused: dict[tuple[str, int], float] = {}
        self._max_sessions = max_sessions
        self._retry_after = retry_after
        self._transport: asyncio.DatagramTransport | None = None
        self.counters = UdpCounters()

    async def start(self, local_host: str) -> SocksAddress:
        """Bind the relay socket next to the TCP connection's local address."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _RelaySocket(self), local_addr=(local_host.split("%", 1)[0], 0))
        self._transport = transport
        sockname = transport.get_extra_info("sockname")
        return SocksAddress.from_ip(str(sockname[0]), int(sockname[1]))

    # -- client → bond --------------------------------------------------------------

    def from_client(self, data: bytes, addr: Addr) -> None:
        if _normal(addr[0]) != self._client_host or (
                self._expected_port and addr[1] != self._expected_port):
            self.counters.dropped += 1
            return
        try:
            packet = parse_udp(data)
        except SocksError:
            self.counters.dropped += 1
            return
        if packet.fragment != 0:
            self.counters.dropped += 1
            return
        self._client = addr
        key = (packet.address.host, packet.address.port)
        loop = asyncio.get_running_loop()
        if self._refused.get(key, 0.0) > loop.time():
            self.counters.dropped += 1
            return
        session = self._sessions.get(key)
        if session is None:
            session = self._open(key, packet.address)
        else:
            self._sessions.move_to_end(key)
        if session.proxy is None:
            if len(session.waiting) == session.waiting.maxlen:
                self.counters.dropped += 1
            session.waiting.append(packet.data)
            return
        self._send(session.proxy, packet.data)

    def _send(self, proxy: UdpProxySession, data: bytes) -> None:
        try:
            sent = proxy.send(data)  # False: too large for a DATAGRAM frame (dropped)
        except ConnectionError:  # the session is ending
            sent = False
        if sent:
            self.counters.sent += 1
        else:
            self.counters.dropped += 1

    def _open(self, key: tuple[str, int], address: SocksAddress) -> _Session:
        while len(self._sessions) >= self._max_sessions:
            _, oldest = self._sessions.popitem(last=False)
            self._end(oldest)
        session = self._sessions[key] = _Session(address)
        session.task = asyncio.ensure_future(self._run(key, session))
        return session

    async def _run(self, key: tuple[str, int], session: _Session) -> None:
        try:
            proxy = await self._opener.open_udp(session.address)
        except LaneConnectError as exc:
            logger.info("socks udp: %s: %s", session.address.authority, exc)
            now = asyncio.get_running_loop().time()
            if len(self._refused) >= _MAX_REFUSED:  # bounded: forget the expired ones
                self._refused = {k: t for k, t in self._refused.items() if t > now}
                while len(self._refused) >= _MAX_REFUSED:
                    del self._refused[next(iter(self._refused))]
            self._refused[key] = now + self._retry_after
            self.counters.dropped += len(session.waiting)
            self._sessions.pop(key, None)
            return
        session.proxy = proxy
        while session.waiting:
            self._send(proxy, session.waiting.popleft())
        reader = asyncio.ensure_future(self._back_to_client(session, proxy))
        try:
            await proxy.wait_closed()  # the server ended the session (FIN or reset)
        finally:
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
            if self._sessions.get(key) is session:
                del self._sessions[key]
            with contextlib.suppress(Exception):
                proxy.close()

    # -- bond → client --------------------------------------------------------------

    async def _back_to_client(self, session: _Session, proxy: UdpProxySession) -> None:
        transport = self._transport
        while True:
            try:
                payload = await proxy.receive()
            except ConnectionError:
                return
            client = self._client
            if client is None or transport is None:
                self.counters.dropped += 1
                continue
            transport.sendto(encode_udp(UdpPacket(session.address, payload)), client)
            self.counters.received += 1

    # -- ending ---------------------------------------------------------------------

    def _end(self, session: _Session) -> None:
        if session.task is not None:
            session.task.cancel()

    async def close(self) -> None:
        sessions = list(self._sessions.values())
        self._sessions.clear()
        for session in sessions:
            self._end(session)
        for session in sessions:
            if session.task is not None:
                with contextlib.suppress(BaseException):
                    await session.task
        if self._transport is not None:
            self._transport.close()
