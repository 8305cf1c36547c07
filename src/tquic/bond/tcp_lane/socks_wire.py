"""SOCKS5 on the wire, sans I/O: RFC 1928 (greeting, request, reply, UDP header) and
RFC 1929 (username/password sub-negotiation).

Every parser takes the bytes received so far and returns ``None`` while it needs
more, or ``(value, consumed)``; a malformed message raises :class:`SocksError`
carrying the reply code the server must answer with (RFC 1928 §6) — or
``None`` where the protocol has no reply for it (a greeting of another SOCKS
version, a bad authentication message: the server just closes).  Nothing else
is ever raised, whatever the bytes (fuzzed with hypothesis).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from enum import IntEnum

SOCKS_VERSION = 5
USERPASS_VERSION = 1  # RFC 1929 §2: the sub-negotiation's own version


class Method(IntEnum):
    """Authentication methods (RFC 1928 §3)."""

    NO_AUTH = 0x00
    GSSAPI = 0x01
    USERPASS = 0x02
    NO_ACCEPTABLE = 0xFF


class Command(IntEnum):
    """Request commands (RFC 1928 §4)."""

    CONNECT = 0x01
    BIND = 0x02
    UDP_ASSOCIATE = 0x03


class AddressType(IntEnum):
    """ATYP (RFC 1928 §4/§5)."""

    IPV4 = 0x01
    DOMAIN = 0x03
    IPV6 = 0x04


class Reply(IntEnum):
    """REP field of a reply (RFC 1928 §6)."""

    SUCCEEDED = 0x00
    GENERAL_FAILURE = 0x01
    NOT_ALLOWED = 0x02  # connection not allowed by ruleset
    NETWORK_UNREACHABLE = 0x03
    HOST_UNREACHABLE = 0x04
    CONNECTION_REFUSED = 0x05
    TTL_EXPIRED = 0x06
    COMMAND_NOT_SUPPORTED = 0x07
    ADDRESS_TYPE_NOT_SUPPORTED = 0x08


class SocksError(Exception):
    """A malformed or unsupported SOCKS message.

    ``reply``: the REP code to answer before closing, or None when the
    protocol step has no reply that fits (the connection is just closed).
    """

    def __init__(self, message: str, reply: Reply | None = Reply.GENERAL_FAILURE) -> None:
        super().__init__(message)
        self.reply = reply


@dataclass(frozen=True, slots=True)
class SocksAddress:
    """A destination: an IP literal (IPv4/IPv6) or a domain name, and a port."""

    host: str
    port: int
    kind: AddressType

    @property
    def authority(self) -> str:
        """``host:port`` as an HTTP authority (RFC 3986 §3.2.2: IPv6 in brackets)."""
        if self.kind is AddressType.IPV6:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"

    @classmethod
    def from_ip(cls, host: str, port: int) -> SocksAddress:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
        kind = AddressType.IPV4 if ip.version == 4 else AddressType.IPV6
        return cls(str(ip), port, kind)


@dataclass(frozen=True, slots=True)
class Greeting:
    """The client's method offer (RFC 1928 §3)."""

    methods: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class UserPass:
    """RFC 1929 §2 credentials (raw bytes: the RFC does not name a charset)."""

    username: bytes
    password: bytes


@dataclass(frozen=True, slots=True)
class SocksRequest:
    """A request (RFC 1928 §4)."""

    command: int
    address: SocksAddress


@dataclass(frozen=True, slots=True)
class UdpPacket:
    """One datagram between a SOCKS client and the UDP relay (RFC 1928 §7)."""

    address: SocksAddress
    data: bytes
    fragment: int = 0


def parse_greeting(data: bytes) -> tuple[Greeting, int] | None:
    """VER | NMETHODS | METHODS (RFC 1928 §3)."""
    if len(data) < 2:
        return None
    if data[0] != SOCKS_VERSION:
        # Another SOCKS version (4, or not SOCKS at all): no SOCKS5 reply fits.
        raise SocksError(f"not SOCKS5 (version byte {data[0]})", None)
    count = data[1]
    if count == 0:
        raise SocksError("greeting offers no authentication method", None)
    if len(data) < 2 + count:
        return None
    return Greeting(tuple(data[2:2 + count])), 2 + count


def encode_method_choice(method: int) -> bytes:
    return bytes((SOCKS_VERSION, method))


def parse_userpass(data: bytes) -> tuple[UserPass, int] | None:
    """VER | ULEN | UNAME | PLEN | PASSWD (RFC 1929 §2)."""
    if len(data) < 2:
        return None
    if data[0] != USERPASS_VERSION:
        raise SocksError(f"username/password version {data[0]}, expected 1", None)
    ulen = data[1]
    if ulen == 0:
        raise SocksError("empty username", None)
    if len(data) < 3 + ulen:
        return None
    plen = data[2 + ulen]
    end = 3 + ulen + plen
    if len(data) < end:
        return None
    return UserPass(bytes(data[2:2 + ulen]), bytes(data[3 + ulen:end])), end


def encode_userpass(credentials: UserPass) -> bytes:
    """The client's RFC 1929 message (tests and clients)."""
    user, password = credentials.username, credentials.password
    if not 1 <= len(user) <= 255 or len(password) > 255:
        raise ValueError("RFC 1929: username 1..255 bytes, password 0..255 bytes")
    return bytes((USERPASS_VERSION, len(user))) + user + bytes((len(password),)) + password


def encode_userpass_status(ok: bool) -> bytes:
    """RFC 1929 §2: STATUS 0 is success; anything else is failure (and a close)."""
    return bytes((USERPASS_VERSION, 0 if ok else 1))


def _parse_address(data: bytes, offset: int) -> tuple[SocksAddress, int] | None:
    """ATYP | ADDR | PORT starting at ``offset``; returns the end offset."""
    if len(data) <= offset:
        return None
    kind = data[offset]
    start = offset + 1
    if kind == AddressType.IPV4:
        end = start + 4
        host = str(ipaddress.IPv4Address(bytes(data[start:end]))) if len(data) >= end else ""
    elif kind == AddressType.IPV6:
        end = start + 16
        host = str(ipaddress.IPv6Address(bytes(data[start:end]))) if len(data) >= end else ""
    elif kind == AddressType.DOMAIN:
        if len(data) <= start:
            return None
        size = data[start]
        end = start + 1 + size
        if len(data) < end + 2:
            return None
        if size == 0:
            raise SocksError("empty domain name")
        raw = bytes(data[start + 1:end])
        host = _domain(raw)
    else:
        raise SocksError(f"address type {kind:#x}", Reply.ADDRESS_TYPE_NOT_SUPPORTED)
    if len(data) < end + 2:
        return None
    (port,) = struct.unpack_from("!H", data, end)
    return SocksAddress(host, port, AddressType(kind)), end + 2


def _domain(raw: bytes) -> str:
    """A domain name as sent (RFC 1928 §5: no terminating NUL); only printable ASCII
    without spaces, so the name cannot smuggle anything into an HTTP authority."""
    if any(b <= 0x20 or b >= 0x7F or b in b"/?#@[]\\%" for b in raw):
        raise SocksError("domain name with characters outside a host name",
                         Reply.HOST_UNREACHABLE)
    name = raw.decode("ascii").rstrip(".")
    if not name:
        raise SocksError("empty domain name")
    return name


def parse_request(data: bytes) -> tuple[SocksRequest, int] | None:
    """VER | CMD | RSV | ATYP | DST.ADDR | DST.PORT (RFC 1928 §4)."""
    if len(data) < 4:
        return None
    if data[0] != SOCKS_VERSION:
        raise SocksError(f"request version {data[0]}, expected 5")
    if data[2] != 0:
        raise SocksError("reserved byte of the request is not zero")
    parsed = _parse_address(data, 3)
    if parsed is None:
        return None
    address, end = parsed
    command = data[1]
    if command not in (Command.CONNECT, Command.UDP_ASSOCIATE, Command.BIND):
        raise SocksError(f"command {command:#x}", Reply.COMMAND_NOT_SUPPORTED)
    return SocksRequest(command, address), end


def _encode_address(address: SocksAddress) -> bytes:
    kind = address.kind
    if kind is AddressType.DOMAIN:
        raw = address.host.encode("ascii")
        if not 1 <= len(raw) <= 255:
            raise ValueError("a SOCKS domain name is 1..255 bytes")
        body = bytes((len(raw),)) + raw
    else:
        body = ipaddress.ip_address(address.host).packed
    return bytes((kind,)) + body + struct.pack("!H", address.port)


_UNSPECIFIED = SocksAddress("0.0.0.0", 0, AddressType.IPV4)


def encode_request(request: SocksRequest) -> bytes:
    """The client's request (tests and clients)."""
    return bytes((SOCKS_VERSION, request.command, 0)) + _encode_address(request.address)


def encode_reply(reply: Reply, bound: SocksAddress | None = None) -> bytes:
    """VER | REP | RSV | ATYP | BND.ADDR | BND.PORT (RFC 1928 §6)."""
    return bytes((SOCKS_VERSION, reply, 0)) + _encode_address(bound or _UNSPECIFIED)


def parse_reply(data: bytes) -> tuple[tuple[int, SocksAddress], int] | None:
    """The server's reply (tests and clients): (REP, bound address)."""
    if len(data) < 4:
        return None
    if data[0] != SOCKS_VERSION:
        raise SocksError(f"reply version {data[0]}")
    parsed = _parse_address(data, 3)
    if parsed is None:
        return None
    address, end = parsed
    return (data[1], address), end


def parse_udp(data: bytes) -> UdpPacket:
    """RSV(2) | FRAG | ATYP | DST.ADDR | DST.PORT | DATA (RFC 1928 §7), one datagram."""
    if len(data) < 4:
        raise SocksError("UDP datagram shorter than its header")
    if data[0] or data[1]:
        raise SocksError("reserved bytes of the UDP header are not zero")
    parsed = _parse_address(data, 3)
    if parsed is None:
        raise SocksError("UDP datagram shorter than its header")
    address, end = parsed
    return UdpPacket(address, bytes(data[end:]), data[2])


def encode_udp(packet: UdpPacket) -> bytes:
    return b"\x00\x00" + bytes((packet.fragment,)) + _encode_address(packet.address) + packet.data
