"""ACK filtering on a TUN read batch (tquic.bond.ack_filter, RFC 3449 §5.2.1)."""

from __future__ import annotations

import struct

from tquic.bond.ack_filter import filter_acks, pure_ack

SRC4, DST4 = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
SRC6, DST6 = bytes(15) + b"\x01", bytes(15) + b"\x02"
ACK, PSH, FIN, ECE = 0x10, 0x08, 0x01, 0x40
TIMESTAMP = b"\x01\x01\x08\x0a" + bytes(8)


def tcp(ack: int, flags: int = ACK, options: bytes = b"", payload: bytes = b"",
        sport: int = 5201, dport: int = 40000) -> bytes:
    offset = (20 + len(options)) // 4
    return struct.pack("!HHIIBBHHH", sport, dport, 1000, ack, offset << 4, flags, 512, 0,
                       0) + options + payload


def v4(segment: bytes, src: bytes = SRC4) -> bytes:
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(segment), 1, 0x4000, 64, 6, 0,
                       src, DST4) + segment


def v6(segment: bytes) -> bytes:
    return struct.pack("!IHBB16s16s", 6 << 28, len(segment), 6, 64, SRC6, DST6) + segment


def test_only_the_newest_of_a_flows_pure_acks_goes() -> None:
    batch = [v4(tcp(100, options=TIMESTAMP)), v4(tcp(200, options=TIMESTAMP)),
             v4(tcp(300, options=TIMESTAMP))]
    assert filter_acks(batch) == ([batch[2]], 2)


def test_duplicate_acks_all_go_fast_retransmit_needs_them() -> None:
    batch = [v4(tcp(100)), v4(tcp(100)), v4(tcp(100))]
    assert filter_acks(batch) == (batch, 0)


def test_acks_with_sack_ece_fin_psh_or_data_are_never_dropped_nor_drop_others() -> None:
    sack = b"\x01\x01\x05\x0a" + bytes(8)
    batch = [v4(tcp(100, options=sack)), v4(tcp(200, flags=ACK | ECE)),
             v4(tcp(300, flags=ACK | FIN)), v4(tcp(400, flags=ACK | PSH)),
             v4(tcp(500, payload=b"data"))]
    assert filter_acks(batch) == (batch, 0)


def test_flows_are_filtered_separately_and_order_is_kept() -> None:
    a1, b1, a2, b2 = (v4(tcp(100, sport=1)), v4(tcp(100, sport=2)), v4(tcp(200, sport=1)),
                      v4(tcp(200, sport=2)))
    other_host = v4(tcp(300, sport=1), src=bytes([10, 0, 0, 9]))
    assert filter_acks([a1, b1, a2, other_host, b2]) == ([a2, other_host, b2], 2)


def test_ipv6_pure_acks_are_filtered() -> None:
    batch = [v6(tcp(100, options=TIMESTAMP)), v6(tcp(200, options=TIMESTAMP))]
    assert filter_acks(batch) == ([batch[1]], 1)


def test_acknowledgment_numbers_compare_modulo_2_32() -> None:
    wrapped = [v4(tcp(0xFFFFFFF0)), v4(tcp(0x10))]
    assert filter_acks(wrapped) == ([wrapped[1]], 1)
    older_after_newer = [v4(tcp(0x10)), v4(tcp(0xFFFFFFF0))]  # reordered: keep both
    assert filter_acks(older_after_newer) == (older_after_newer, 0)


def test_anything_that_is_not_a_whole_pure_tcp_ack_passes_untouched() -> None:
    ack = v4(tcp(100))
    truncated = ack[:-4]
    fragment = ack[:6] + b"\x20\x00" + ack[8:]  # MF set
    udp = ack[:9] + b"\x11" + ack[10:]
    not_ip = b"\x00" * 40
    batch = [truncated, fragment, udp, not_ip, b"", ack]
    assert filter_acks(batch) == (batch, 0)
    assert pure_ack(ack) is not None
    assert all(pure_ack(p) is None for p in batch[:-1])


def test_a_single_packet_is_returned_as_is() -> None:
    one = [v4(tcp(1))]
    assert filter_acks(one)[0] is one
