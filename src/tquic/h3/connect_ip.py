"""CONNECT-IP (RFC 9484): capsules, the datagram payload, the request path and its scope.

What the two ends of an IP tunnel over HTTP/3 exchange, as values and bytes:

- ADDRESS_ASSIGN / ADDRESS_REQUEST / ROUTE_ADVERTISEMENT capsules (§4.7) on the
  request stream (the generic capsule framing is :mod:`tquic.h3.capsules`);
- the HTTP Datagram payload (§6): a Context ID varint, then an IP packet for
  context 0 or whatever an extension registered for a non-zero one;
- the default URI template's path ``/.well-known/masque/ip/{target}/{ipproto}/``
  (§3) and the scope it names (§4.6).

Every parser raises :class:`ConnectIpError`, an ``H3StreamError`` with
H3_MESSAGE_ERROR: a malformed capsule makes the message malformed (RFC 9297
§3.3) and the IP proxying request stream is aborted (RFC 9484 §4.7.3).  The
session logic (who asks, who assigns) lives in ``tquic.bond``; this module only
knows the wire.
"""

from __future__ import annotations

import ipaddress
import itertools
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from tquic.h3.errors import H3ErrorCode, H3StreamError
from tquic.h3.frames import pull_varint
from tquic.wire.buffer import VARINT_MAX, encode_varint

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

CONNECT_IP_PROTOCOL = "connect-ip"  # the HTTP upgrade token (§12.1)
DEFAULT_PATH_TEMPLATE = "/.well-known/masque/ip/{target}/{ipproto}/"  # §2
IP_CONTEXT_ID = 0  # §6: context 0 carries a full IP packet


class ConnectIpCapsule(IntEnum):
    """Capsule types of RFC 9484 §4.7 (registered in §12.4)."""

    ADDRESS_ASSIGN = 0x01
    ADDRESS_REQUEST = 0x02
    ROUTE_ADVERTISEMENT = 0x03


class ConnectIpError(H3StreamError):
    """A malformed CONNECT-IP capsule, datagram or request: abort the request stream."""

    def __init__(self, message: str) -> None:
        super().__init__(H3ErrorCode.H3_MESSAGE_ERROR, message)


@dataclass(frozen=True, slots=True)
class AssignedAddress:
    """One Assigned Address (§4.7.1): ``request_id`` 0 when unsolicited."""

    request_id: int
    prefix: IPNetwork

    @property
    def rejected(self) -> bool:
        """§4.7.2: an all-zero address with a full-length prefix means "not assigned"."""
        return int(self.prefix.network_address) == 0 and (
            self.prefix.prefixlen == self.prefix.max_prefixlen)


@dataclass(frozen=True, slots=True)
class RequestedAddress:
    """One Requested Address (§4.7.2): request IDs are non-zero and never reused."""

    request_id: int
    prefix: IPNetwork  # all-zero address: any address of that family


@dataclass(frozen=True, slots=True)
class IPAddressRange:
    """One IP Address Range of a ROUTE_ADVERTISEMENT (§4.7.3); protocol 0 = all."""

    start: IPAddress
    end: IPAddress
    ip_protocol: int = 0

    @property
    def version(self) -> int:
        return self.start.version

    @classmethod
    def of(cls, network: IPNetwork, ip_protocol: int = 0) -> IPAddressRange:
        return cls(network.network_address, network.broadcast_address, ip_protocol)

    def contains(self, address: IPAddress) -> bool:
        return address.version == self.start.version and self.start <= address <= self.end  # type: ignore[operator]


# -- prefixes (Assigned and Requested Address share one layout) ---------------------------


def _encode_prefix(request_id: int, prefix: IPNetwork) -> bytes:
    if not 0 <= request_id <= VARINT_MAX:
        raise ValueError(f"request_id: {request_id} is not a varint")
    return (encode_varint(request_id) + bytes((prefix.version,)) + prefix.network_address.packed
            + bytes((prefix.prefixlen,)))


def _pull_address(data: bytes, pos: int, what: str) -> tuple[IPAddress, int]:
    if pos >= len(data):
        raise ConnectIpError(f"{what}: truncated before the IP version")
    version = data[pos]
    size = {4: 4, 6: 16}.get(version)
    if size is None:
        raise ConnectIpError(f"{what}: IP version {version} is neither 4 nor 6")
    end = pos + 1 + size
    if end > len(data):
        raise ConnectIpError(f"{what}: truncated IPv{version} address")
    raw = data[pos + 1:end]
    address: IPAddress = (ipaddress.IPv4Address(raw) if version == 4
                          else ipaddress.IPv6Address(raw))
    return address, end


def _pull_prefix(data: bytes, pos: int, what: str) -> tuple[int, IPNetwork, int]:
    request_id, pos = pull_varint(data, pos)
    if request_id < 0:
        raise ConnectIpError(f"{what}: truncated request ID")
    address, pos = _pull_address(data, pos, what)
    if pos >= len(data):
        raise ConnectIpError(f"{what}: truncated before the prefix length")
    length = data[pos]
    if length > address.max_prefixlen:
        raise ConnectIpError(f"{what}: prefix length {length} > {address.max_prefixlen}")
    try:
        # strict: §4.7.1/§4.7.2 -- bits beyond the prefix length MUST be zero.
        network = ipaddress.ip_network(f"{address}/{length}", strict=True)
    except ValueError:
        raise ConnectIpError(f"{what}: {address}/{length} has host bits set") from None
    return request_id, network, pos + 1


def encode_address_assign(addresses: Sequence[AssignedAddress]) -> bytes:
    """The ADDRESS_ASSIGN capsule's value (§4.7.1): the full list (empty = all removed)."""
    return b"".join(_encode_prefix(a.request_id, a.prefix) for a in addresses)


def parse_address_assign(value: bytes) -> tuple[AssignedAddress, ...]:
    out: list[AssignedAddress] = []
    pos = 0
    while pos < len(value):
        request_id, prefix, pos = _pull_prefix(value, pos, "ADDRESS_ASSIGN")
        out.append(AssignedAddress(request_id, prefix))
    return tuple(out)


def encode_address_request(requests: Sequence[RequestedAddress]) -> bytes:
    """The ADDRESS_REQUEST capsule's value (§4.7.2): one or more requests, IDs non-zero."""
    if not requests:
        raise ValueError("ADDRESS_REQUEST needs at least one Requested Address")
    for r in requests:
        if r.request_id == 0:
            raise ValueError("request_id: must not be zero (§4.7.2)")
    return b"".join(_encode_prefix(r.request_id, r.prefix) for r in requests)


def parse_address_request(value: bytes) -> tuple[RequestedAddress, ...]:
    out: list[RequestedAddress] = []
    pos = 0
    while pos < len(value):
        request_id, prefix, pos = _pull_prefix(value, pos, "ADDRESS_REQUEST")
        if request_id == 0:
            raise ConnectIpError("ADDRESS_REQUEST: request ID 0 is not allowed")
        out.append(RequestedAddress(request_id, prefix))
    if not out:
        # §4.7.2: zero Requested Addresses -> abort the request stream.
        raise ConnectIpError("ADDRESS_REQUEST with no Requested Address")
    return tuple(out)


def _range_key(r: IPAddressRange) -> tuple[int, int]:
    return (r.version, r.ip_protocol)


def check_route_order(ranges: Sequence[IPAddressRange]) -> None:
    """§4.7.3: ranges ordered by version, then protocol, then address, never overlapping
    (also not a protocol-0 range over a specific-protocol one; optional to check, done)."""
    for a, b in itertools.pairwise(ranges):
        if _range_key(a) > _range_key(b):
            raise ConnectIpError("ROUTE_ADVERTISEMENT: ranges out of version/protocol order")
        if _range_key(a) == _range_key(b) and not a.end < b.start:  # type: ignore[operator]
            raise ConnectIpError(f"ROUTE_ADVERTISEMENT: {a.start}-{a.end} overlaps or "
                                 f"follows {b.start}-{b.end}")
    alls = [r for r in ranges if r.ip_protocol == 0]
    for r in ranges:
        if r.ip_protocol == 0:
            continue
        for w in alls:
            if w.version == r.version and not (r.end < w.start or w.end < r.start):  # type: ignore[operator]
                raise ConnectIpError("ROUTE_ADVERTISEMENT: a protocol-0 range overlaps a "
                                     f"protocol-{r.ip_protocol} range")


def encode_route_advertisement(ranges: Sequence[IPAddressRange]) -> bytes:
    """The ROUTE_ADVERTISEMENT capsule's value (§4.7.3); ``ranges`` must be in order."""
    for r in ranges:
        if r.start.version != r.end.version or r.start > r.end:  # type: ignore[operator]
            raise ValueError(f"range {r.start}-{r.end}: start must be <= end, same version")
        if not 0 <= r.ip_protocol <= 255:
            raise ValueError(f"ip_protocol: {r.ip_protocol} is not 0..255")
    try:
        check_route_order(ranges)
    except ConnectIpError as exc:
        raise ValueError(str(exc)) from None
    return b"".join(bytes((r.version,)) + r.start.packed + r.end.packed + bytes((r.ip_protocol,))
                    for r in ranges)


def parse_route_advertisement(value: bytes) -> tuple[IPAddressRange, ...]:
    out: list[IPAddressRange] = []
    pos = 0
    while pos < len(value):
        start, pos = _pull_address(value, pos, "ROUTE_ADVERTISEMENT")
        if pos + start.max_prefixlen // 8 + 1 > len(value):
            raise ConnectIpError("ROUTE_ADVERTISEMENT: truncated range")
        size = start.max_prefixlen // 8
        raw = value[pos:pos + size]
        end: IPAddress = (ipaddress.IPv4Address(raw) if start.version == 4
                          else ipaddress.IPv6Address(raw))
        protocol = value[pos + size]
        pos += size + 1
        if start > end:  # type: ignore[operator]
            raise ConnectIpError(f"ROUTE_ADVERTISEMENT: start {start} > end {end}")
        out.append(IPAddressRange(start, end, protocol))
    check_route_order(out)
    return tuple(out)


# -- HTTP Datagram payload (§6) ------------------------------------------------------------


def encode_ip_datagram(payload: bytes, context_id: int = IP_CONTEXT_ID) -> bytes:
    """Context ID, then the payload (an IP packet for context 0)."""
    if context_id == 0:
        return b"\x00" + payload
    return encode_varint(context_id) + payload


def parse_ip_datagram(data: bytes) -> tuple[int, bytes]:
    """(context ID, payload); an empty or truncated Context ID is malformed."""
    if data and data[0] == 0:  # the common case: one zero byte, an IP packet
        return 0, data[1:]
    context_id, pos = pull_varint(data, 0)
    if context_id < 0:
        raise ConnectIpError("datagram without a complete Context ID")
    return context_id, data[pos:]


# -- the request path and its scope (§3, §4.6) ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Scope:
    """What a request asked for: a target prefix (None = any) and a protocol (None = any)."""

    target: IPNetwork | None = None
    ipproto: int | None = None

    def path(self, template: str = DEFAULT_PATH_TEMPLATE) -> str:
        """Expand the default-style template (§3): "*" for a wildcard, IPv6 colons and the
        prefix slash percent-encoded (§4.6)."""
        if self.target is None:
            target = "*"
        else:
            text = str(self.target.network_address)
            if self.target.prefixlen != self.target.max_prefixlen:
                text += f"/{self.target.prefixlen}"
            target = urllib.parse.quote(text, safe="")
        ipproto = "*" if self.ipproto is None else str(self.ipproto)
        return template.replace("{target}", target).replace("{ipproto}", ipproto)


def parse_scope(path: str, template: str = DEFAULT_PATH_TEMPLATE) -> Scope:
    """The scope of a request whose :path follows ``template`` (variables as path segments).

    Raises ConnectIpError when the path does not match or a variable is malformed (§4.6:
    the request is then malformed).  A DNS-name target is refused here: this proxy
    resolves nothing.
    """
    prefix, _, rest = template.partition("{target}")
    middle, _, suffix = rest.partition("{ipproto}")
    if not path.startswith(prefix) or not path.endswith(suffix):
        raise ConnectIpError(f"path {path!r} does not follow {template!r}")
    inner = path[len(prefix):len(path) - len(suffix)] if suffix else path[len(prefix):]
    target_text, sep, ipproto_text = inner.partition(middle)
    if not sep or not target_text or not ipproto_text:
        raise ConnectIpError(f"path {path!r}: empty target or ipproto (§4.6 forbids empty)")
    if ipproto_text == "*":
        ipproto = None
    elif ipproto_text.isdigit() and len(ipproto_text) <= 3 and int(ipproto_text) <= 255:
        ipproto = int(ipproto_text)
    else:
        raise ConnectIpError(f"ipproto {ipproto_text!r}: a number 0..255 or '*'")
    if target_text == "*":
        return Scope(None, ipproto)
    decoded = urllib.parse.unquote(target_text)
    try:
        target = ipaddress.ip_network(decoded, strict=True)
    except ValueError:
        raise ConnectIpError(f"target {decoded!r}: an IP address or prefix with zero host "
                             "bits, or '*' (DNS names are not resolved here)") from None
    return Scope(target, ipproto)
