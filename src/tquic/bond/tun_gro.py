"""Writing a batch of IP packets to a TUN device in as few writes as the kernel allows.

A TUN device opened with ``IFF_VNET_HDR`` takes a ``struct virtio_net_hdr``
(include/uapi/linux/virtio_net.h: flags, gso_type, hdr_len, gso_size,
csum_start, csum_offset; 10 bytes, host byte order) in front of every packet.
With it, one write may carry a TCP "super-packet": consecutive segments of one
flow glued behind one IP and TCP header, with the segment size in ``gso_size``
(``VIRTIO_NET_HDR_GSO_TCPV4``/``TCPV6``) and the TCP checksum left partial
(``VIRTIO_NET_HDR_F_NEEDS_CSUM``: the checksum field holds the pseudo-header sum,
the stack or whoever segments completes it).  The kernel takes it as one packet,
like the receive offload (GRO) of a network card: one pass through IP and TCP
for the batch, and the receiving TCP acknowledges it once (RFC 9293 §3.8.6.3
asks for an ACK per two full segments, which a large segment satisfies).
Forwarded on, the kernel cuts it back into the original segments (GSO).

What :func:`coalesce` glues, like Linux's own GRO (net/ipv4/tcp_offload.c) and
only for packets next to each other in the batch (their order is kept):

- TCP over IPv4 without options or fragmentation, or over IPv6 without
  extension headers, each packet carrying payload;
- the same addresses, ports, TOS / traffic class (ECN included), TTL / hop limit,
  DF, acknowledgment number, window, data offset and TCP options (timestamps
  included: segments of one burst share them);
- flags ACK only, or ACK and PSH on the last segment of the run;
- each segment's sequence number right after the previous one's data, every
  segment as long as the first except the last, which may be shorter;
- at most :data:`MAX_SEGMENTS` segments and 65535 bytes of IP packet.

Everything else is written as it is, one packet per write, behind a header that
asks for nothing (:data:`PLAIN`).
"""

from __future__ import annotations

import struct

VNET_HDR_LEN = 10
_VNET = struct.Struct("=BBHHHH")  # flags, gso_type, hdr_len, gso_size, csum_start, csum_offset
F_NEEDS_CSUM = 1
F_DATA_VALID = 2
GSO_NONE = 0
GSO_TCPV4 = 1
GSO_TCPV6 = 4
PLAIN = bytes(VNET_HDR_LEN)  # no offload asked: a packet as the kernel reads it
MAX_SEGMENTS = 64
MAX_PACKET = 65535
_TCP = 6
_ACK = 0x10
_PSH = 0x08
_U16 = struct.Struct("!H")

Buffers = list[bytes | memoryview]


def _folded_sum(data: bytes) -> int:
    """The 16-bit one's complement sum of ``data`` (even length), folded (RFC 1071):
    2**16 = 1 modulo 0xFFFF, so the sum of the big-endian words is the number mod 0xFFFF
    (0 standing for 0xFFFF unless every word is 0)."""
    rest = int.from_bytes(data, "big") % 0xFFFF
    return rest if rest or not any(data) else 0xFFFF


def _tcp_header_at(packet: bytes) -> int:
    """Where the TCP header of a glue candidate starts (20 or 40), or 0: not one."""
    n = len(packet)
    if n < 40:
        return 0
    first = packet[0]
    if first == 0x45:  # IPv4, no options (RFC 791)
        if (packet[9] != _TCP or packet[6] & 0x3F or packet[7]
                or (packet[2] << 8 | packet[3]) != n):
            return 0  # another protocol, a fragment, or a length that does not add up
        return 20
    if first >> 4 == 6 and n >= 60 and packet[6] == _TCP and (packet[4] << 8 | packet[5]) == n - 40:
        return 40  # IPv6 with TCP as the first next header (RFC 8200)
    return 0


def coalesce(packets: list[bytes]) -> list[Buffers]:
    """The writes for ``packets`` (in order): each the buffers of one ``writev``, the
    virtio-net header first (module docstring)."""
    writes: list[Buffers] = []
    count = len(packets)
    i = 0
    while i < count:
        first = packets[i]
        i += 1
        ip_len = _tcp_header_at(first)
        if not ip_len:
            writes.append([PLAIN, first])
            continue
        head = ip_len + (first[ip_len + 12] >> 4) * 4
        size = len(first) - head
        flags = first[ip_len + 13]
        if size <= 0 or flags != _ACK:
            writes.append([PLAIN, first])  # PSH, FIN, SYN, ... or no payload: as it is
            continue
        seq = int.from_bytes(first[ip_len + 4:ip_len + 8], "big")
        expected = (seq + size) & 0xFFFFFFFF
        total = len(first)
        parts: list[bytes] = [first]
        last_flags = flags
        ip_same: tuple[tuple[int, int, bytes], ...]
        if ip_len == 20:  # what must match: TOS, DF/TTL/protocol, addresses
            ip_same = ((0, 2, first[0:2]), (6, 10, first[6:10]), (12, 20, first[12:20]))
        else:  # version/class/label, next header/hop limit/addresses
            ip_same = ((0, 4, first[0:4]), (6, 40, first[6:40]))
        ports = first[ip_len:ip_len + 4]
        ack_offset = first[ip_len + 8:ip_len + 13]
        window = first[ip_len + 14:ip_len + 16]
        options = first[ip_len + 18:head]  # urgent pointer and options
        while i < count and len(parts) < MAX_SEGMENTS:
            packet = packets[i]
            more = len(packet) - head
            if (more <= 0 or more > size or total + more > MAX_PACKET
                    or _tcp_header_at(packet) != ip_len):
                break
            if not all(packet[a:b] == same for a, b, same in ip_same):
                break
            next_flags = packet[ip_len + 13]
            if (next_flags & ~_PSH) != _ACK or packet[ip_len:ip_len + 4] != ports \
                    or int.from_bytes(packet[ip_len + 4:ip_len + 8], "big") != expected \
                    or packet[ip_len + 8:ip_len + 13] != ack_offset \
                    or packet[ip_len + 14:ip_len + 16] != window \
                    or packet[ip_len + 18:head] != options:
                break
            parts.append(packet)
            total += more
            expected = (expected + more) & 0xFFFFFFFF
            i += 1
            last_flags = next_flags
            if more < size or next_flags & _PSH:
                break  # a short segment or PSH ends the run
        if len(parts) == 1:
            writes.append([PLAIN, first])
            continue
        writes.append(_super_packet(parts, ip_len, head, size, total, last_flags))
    return writes


def _super_packet(parts: list[bytes], ip_len: int, head: int, size: int, total: int,
                  last_flags: int) -> Buffers:
    """One IP packet of ``parts`` (the segments of a run) with its virtio-net header."""
    first = parts[0]
    header = bytearray(first[:head])
    tcp_len = total - ip_len
    if ip_len == 20:
        header[2:4] = _U16.pack(total)
        header[10:12] = b"\x00\x00"
        header[10:12] = _U16.pack(0xFFFF - _folded_sum(bytes(header[:20])))  # RFC 791
        pseudo = first[12:20] + bytes((0, _TCP)) + _U16.pack(tcp_len)
        gso = GSO_TCPV4
    else:
        header[4:6] = _U16.pack(tcp_len)
        pseudo = first[8:40] + tcp_len.to_bytes(4, "big") + bytes((0, 0, 0, _TCP))
        gso = GSO_TCPV6
    header[ip_len + 13] = last_flags
    # NEEDS_CSUM: the checksum field carries the pseudo-header sum (RFC 9293 §3.1), not
    # inverted; the kernel adds the segment's bytes (and cuts per segment when forwarding).
    header[ip_len + 16:ip_len + 18] = _U16.pack(_folded_sum(pseudo))
    vnet = _VNET.pack(F_NEEDS_CSUM, gso, head, size, ip_len, 16)
    buffers: Buffers = [vnet + bytes(header)]
    buffers.extend(memoryview(packet)[head:] for packet in parts)
    return buffers


def complete_checksum(packet: bytearray, start: int, offset: int) -> None:
    """Finish a checksum the kernel left partial (a read with ``F_NEEDS_CSUM``): the
    field at ``start + offset`` holds the pseudo-header sum; add the bytes from
    ``start`` on and store the complement (RFC 1071)."""
    data = bytes(packet[start:])
    if len(data) % 2:
        data += b"\x00"
    value = 0xFFFF - _folded_sum(data)
    packet[start + offset:start + offset + 2] = _U16.pack(value)
