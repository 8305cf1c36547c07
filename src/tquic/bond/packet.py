"""The few facts the bond reads from an IP packet, and the ICMP errors it writes.

Only the fixed headers are read (version, addresses, protocol, length); the
daemon forwards whole packets and never parses further.  Packet Too Big
(ICMPv4 type 3 code 4 "fragmentation needed", RFC 792 / RFC 1191 §4; ICMPv6
type 2, RFC 4443 §3.2) goes back to a sender whose packet does not fit the
tunnel, so its TCP's path-MTU discovery shrinks the segments instead of the
packet vanishing (RFC 9484 §10.1 "Error Signalling").
"""

from __future__ import annotations

import struct

IPV4_HEADER = 20
IPV6_HEADER = 40
_ICMP_PROTOCOL = 1
_ICMPV6_PROTOCOL = 58


class BadPacket(ValueError):
    """Not an IPv4 or IPv6 packet with a complete fixed header."""


def version(packet: bytes) -> int:
    return packet[0] >> 4 if packet else 0


def addresses(packet: bytes) -> tuple[bytes, bytes]:
    """(source, destination) as packed bytes (4 or 16 long); BadPacket when truncated."""
    v = packet[0] >> 4 if packet else 0
    if v == 4 and len(packet) >= IPV4_HEADER:
        return packet[12:16], packet[16:20]
    if v == 6 and len(packet) >= IPV6_HEADER:
        return packet[8:24], packet[24:40]
    raise BadPacket(f"not an IP packet (version {v}, {len(packet)} bytes)")


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ipv4(src: bytes, dst: bytes, protocol: int, payload: bytes) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, IPV4_HEADER + len(payload), 0, 0x4000, 64,
                         protocol, 0, src, dst)
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + payload


def _ipv6(src: bytes, dst: bytes, next_header: int, payload: bytes) -> bytes:
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), next_header, 64, src, dst) + payload


def packet_too_big(packet: bytes, mtu: int, router: bytes) -> bytes | None:
    """The ICMP(v6) Packet Too Big answering ``packet`` (sent from ``router``, the address
    of the tunnel interface), or None when no error may be sent (RFC 1122 §3.2.2 /
    RFC 4443 §2.4: never about an ICMP error, nor to a bad source)."""
    try:
        src, _ = addresses(packet)
    except BadPacket:
        return None
    if version(packet) == 4:
        if len(router) != 4 or (packet[9] == _ICMP_PROTOCOL and len(packet) > 20 and packet[
                (packet[0] & 0x0F) * 4] in (3, 4, 5, 11, 12)):
            return None
        if src == b"\x00\x00\x00\x00" or src[0] >= 224:
            return None
        # Type 3 code 4 with the next-hop MTU (RFC 1191 §4): the IP header + 8 bytes.
        quoted = packet[:(packet[0] & 0x0F) * 4 + 8]
        body = struct.pack("!BBHHH", 3, 4, 0, 0, min(mtu, 0xFFFF)) + quoted
        body = body[:2] + struct.pack("!H", checksum(body)) + body[4:]
        return _ipv4(router, src, _ICMP_PROTOCOL, body)
    if len(router) != 16:
        return None
    if packet[6] == _ICMPV6_PROTOCOL and len(packet) > 40 and packet[40] < 128:
        return None  # an ICMPv6 error itself
    if src == bytes(16) or src[0] == 0xFF:
        return None
    # RFC 4443 §3.2: as much of the invoking packet as fits in the minimum MTU (1280).
    quoted = packet[:1280 - IPV6_HEADER - 8]
    body = struct.pack("!BBHI", 2, 0, 0, mtu) + quoted
    pseudo = router + src + struct.pack("!I3xB", len(body), _ICMPV6_PROTOCOL)  # §2.3
    body = body[:2] + struct.pack("!H", checksum(pseudo + body)) + body[4:]
    return _ipv6(router, src, _ICMPV6_PROTOCOL, body)
