"""tquic.bond.tun_gro: the TUN writes of a batch, consecutive TCP segments of a flow
glued into one packet behind a virtio-net header (GSO), everything else as it is.
Checked against the segments the kernel cuts back out of it (header fields and
checksums recomputed from scratch, RFC 791 / RFC 9293 / RFC 8200)."""

from __future__ import annotations

import struct

from tquic.bond.packet import checksum
from tquic.bond.tun_gro import (
    F_NEEDS_CSUM,
    GSO_TCPV4,
    GSO_TCPV6,
    MAX_SEGMENTS,
    PLAIN,
    VNET_HDR_LEN,
    coalesce,
    complete_checksum,
)

SRC4, DST4 = bytes([10, 88, 0, 2]), bytes([10, 99, 0, 1])
SRC6, DST6 = bytes(range(16)), bytes(range(16, 32))
OPTIONS = b"\x01\x01\x08\x0a" + struct.pack("!II", 1234, 5678)  # NOP NOP timestamps


def _tcp(src: bytes, dst: bytes, seq: int, payload: bytes, flags: int = 0x10,
         ports: tuple[int, int] = (5201, 40000)) -> bytes:
    """An IPv4 or IPv6 TCP segment with correct checksums."""
    header = struct.pack("!HHIIBBHHH", ports[0], ports[1], seq, 777, (5 + 3) << 4, flags,
                         502, 0, 0) + OPTIONS
    segment = header + payload
    if len(src) == 4:
        pseudo = src + dst + struct.pack("!BBH", 0, 6, len(segment))
    else:
        pseudo = src + dst + struct.pack("!IxxxB", len(segment), 6)
    segment = segment[:16] + struct.pack("!H", checksum(pseudo + segment)) + segment[18:]
    if len(src) == 4:
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(segment), 9, 0x4000, 63, 6, 0,
                         src, dst)
        ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    else:
        ip = struct.pack("!IHBB16s16s", 6 << 28, len(segment), 6, 63, src, dst)
    return ip + segment


def _flow(count: int, size: int = 1349, src: bytes = SRC4, dst: bytes = DST4,
          seq: int = 1000) -> list[bytes]:
    out = []
    for k in range(count):
        out.append(_tcp(src, dst, seq, bytes([k % 251]) * size))
        seq += size
    return out


def _joined(buffers: list[bytes | memoryview]) -> bytes:
    return b"".join(bytes(b) for b in buffers)


def _segments_of(write: bytes) -> list[bytes]:
    """What the kernel's GSO makes of a glued write: each segment with the first's
    headers, its own sequence number and lengths, PSH on the last only, and checksums
    computed from scratch."""
    flags, gso, head, size, start, offset = struct.unpack_from("=BBHHHH", write)
    packet = write[VNET_HDR_LEN:]
    assert flags == F_NEEDS_CSUM and start in (20, 40) and offset == 16
    v4 = gso == GSO_TCPV4
    ip_len = 20 if v4 else 40
    header, data = packet[:head], packet[head:]
    seq = struct.unpack_from("!I", header, ip_len + 4)[0]
    out = []
    for k in range(0, len(data), size):
        chunk = data[k:k + size]
        last = k + size >= len(data)
        tcp = bytearray(header[ip_len:])
        tcp[4:8] = struct.pack("!I", seq + k)
        tcp[13] = header[ip_len + 13] if last else header[ip_len + 13] & ~0x08
        tcp[16:18] = b"\x00\x00"
        src, dst = (header[12:16], header[16:20]) if v4 else (header[8:24], header[24:40])
        length = len(tcp) + len(chunk)
        pseudo = (src + dst + struct.pack("!BBH", 0, 6, length) if v4
                  else src + dst + struct.pack("!IxxxB", length, 6))
        tcp[16:18] = struct.pack("!H", checksum(pseudo + bytes(tcp) + chunk))
        ip = bytearray(header[:ip_len])
        if v4:
            ip[2:4] = struct.pack("!H", ip_len + length)
            ip[10:12] = b"\x00\x00"
            ip[10:12] = struct.pack("!H", checksum(bytes(ip)))
        else:
            ip[4:6] = struct.pack("!H", length)
        out.append(bytes(ip) + bytes(tcp) + chunk)
    return out


def test_consecutive_segments_of_a_flow_become_one_write_that_cuts_back_to_them() -> None:
    packets = _flow(5)
    packets.append(_tcp(SRC4, DST4, 1000 + 5 * 1349, b"tail", flags=0x18))  # short, PSH
    writes = coalesce(packets)
    assert len(writes) == 1
    write = _joined(writes[0])
    flags, gso, head, size, start, offset = struct.unpack_from("=BBHHHH", write)
    assert (flags, gso, head, size, start, offset) == (F_NEEDS_CSUM, GSO_TCPV4, 52, 1349, 20, 16)
    glued = write[VNET_HDR_LEN:]
    assert struct.unpack_from("!H", glued, 2)[0] == len(glued)  # IPv4 total length
    assert checksum(glued[:20]) == 0  # a valid IPv4 header checksum
    assert glued[33] == 0x18  # the last segment's PSH
    # The TCP checksum left partial: completing it gives a valid checksum of the whole.
    whole = bytearray(glued)
    complete_checksum(whole, 20, 16)
    pseudo = SRC4 + DST4 + struct.pack("!BBH", 0, 6, len(whole) - 20)
    assert checksum(pseudo + bytes(whole[20:])) == 0
    assert _segments_of(write) == packets


def test_ipv6_segments_are_glued_too() -> None:
    packets = _flow(3, src=SRC6, dst=DST6)
    (write,) = coalesce(packets)
    data = _joined(write)
    assert struct.unpack_from("=BB", data) == (F_NEEDS_CSUM, GSO_TCPV6)
    assert _segments_of(data) == packets


def test_what_cannot_be_glued_is_written_as_it_is_in_order() -> None:
    a = _flow(2)
    gap = _flow(2, seq=1000 + 3 * 1349)  # a segment missing in between
    other = [_tcp(SRC4, DST4, 1, b"x" * 1349, ports=(80, 4444))]  # another flow
    udp = bytearray(a[0])
    udp[9] = 17  # not TCP
    syn = _tcp(SRC4, DST4, 5, b"", flags=0x02)
    packets = [*a, *gap, *other, bytes(udp), syn]
    writes = coalesce(packets)
    out: list[bytes] = []
    for buffers in writes:
        data = _joined(buffers)
        if data[:VNET_HDR_LEN] == PLAIN:
            out.append(data[VNET_HDR_LEN:])
        else:
            out.extend(_segments_of(data))
    assert out == packets  # nothing lost, nothing reordered
    assert len(writes) == 5  # a, gap (each glued), the other flow, UDP, SYN alone


def test_a_longer_segment_or_a_short_one_ends_the_run() -> None:
    first = _flow(2, size=1000)
    longer = _tcp(SRC4, DST4, 1000 + 2000, b"y" * 1200)  # bigger than the run's size
    assert len(coalesce([*first, longer])) == 2
    short = [*_flow(2, size=1000), _tcp(SRC4, DST4, 3000, b"s" * 10),
             _tcp(SRC4, DST4, 3010, b"t" * 1000)]
    writes = coalesce(short)
    assert len(writes) == 2 and len(writes[0]) == 1 + 3  # the short one closed it


def test_runs_are_bounded_in_segments_and_bytes() -> None:
    many = _flow(MAX_SEGMENTS + 6, size=100)
    writes = coalesce(many)
    assert [len(w) - 1 for w in writes] == [MAX_SEGMENTS, 6]
    big = _flow(60, size=1400)
    for buffers in coalesce(big):
        assert sum(len(b) for b in buffers) - VNET_HDR_LEN <= 65535
