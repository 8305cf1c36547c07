"""The end of a video frame (an RTP marker) closes the FEC block at once: its repairs
leave with the frame's last packet, not after the pause that would otherwise end it."""

from __future__ import annotations

import struct

from fec_helpers import udp4
from hypothesis import given, settings
from hypothesis import strategies as st

from tquic.bond.fec import FecConfig, FecSession, wire
from tquic.bond.fec.classify import rtp_marker

RTP_PORT = 20000  # the built-in "rtp" class (UDP 16384-32767): fec


def _rtp(marker: bool, payload_type: int = 96, version: int = 2, size: int = 1000) -> bytes:
    header = struct.pack("!BBHII", version << 6, (0x80 if marker else 0) | payload_type, 7,
                         90000, 0x1234)
    return header + bytes(size)


def _v6_udp(payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", 40000, RTP_PORT, 8 + len(payload), 0) + payload
    return struct.pack("!IHBB16s16s", 6 << 28, len(udp), 17, 64, bytes(16), bytes(16)) + udp


def test_the_rtp_marker_is_read_from_udp_over_ipv4_and_ipv6() -> None:
    assert rtp_marker(udp4(RTP_PORT, _rtp(True)))
    assert rtp_marker(_v6_udp(_rtp(True)))
    assert not rtp_marker(udp4(RTP_PORT, _rtp(False)))
    # RTCP sharing the port (RFC 5761 §4): a sender report reads as marker + PT 72
    assert not rtp_marker(udp4(RTP_PORT, _rtp(True, payload_type=72)))
    assert not rtp_marker(udp4(RTP_PORT, _rtp(True, version=1)))
    assert not rtp_marker(udp4(RTP_PORT, _rtp(True, payload_type=31)))  # static: not negotiated
    assert not rtp_marker(udp4(RTP_PORT, _rtp(True)[:11]))  # shorter than an RTP header
    assert not rtp_marker(b"")
    assert not rtp_marker(b"\x45" + bytes(30))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80))
def test_any_bytes_are_read_without_error(data: bytes) -> None:
    assert rtp_marker(data) in (True, False)
    assert rtp_marker(udp4(RTP_PORT, data)) == (
        len(data) >= 12 and data[0] in (0x80, 0x90) and data[1] >= 0x80 + 96)


def _repairs(outs: list[object]) -> int:
    return sum(1 for o in outs if getattr(o, "kind", "") == "repair")


def test_a_frame_s_last_packet_brings_its_repairs_without_a_timer() -> None:
    tx, rx = FecSession(FecConfig(mode="rs", block=32, repairs=8)), FecSession(FecConfig())
    frame = [udp4(RTP_PORT, _rtp(i == 9)) for i in range(10)]
    outs = []
    for i, packet in enumerate(frame):
        sent = tx.send(packet, 0.0003 * i)
        outs.extend(sent)
        assert _repairs(sent) == (3 if i == 9 else 0)  # ceil(8 * 10 / 32), with the marker
    # the frame's first packet is lost: rebuilt from what the last send returned
    delivered = []
    for o in outs[1:]:
        delivered.extend(rx.receive(o.payload, 0.01))
    assert frame[0] in delivered
    assert tx.stats().repairs_sent == 3


def test_without_a_marker_the_block_waits_for_the_pause() -> None:
    tx = FecSession(FecConfig(mode="rs", block=32, repairs=8))
    outs = [o for i in range(10) for o in tx.send(udp4(RTP_PORT, _rtp(False)), 0.0003 * i)]
    assert _repairs(outs) == 0
    due = tx.next_timeout()
    assert due is not None and due > 0.0027
    assert _repairs(tx.poll(due)) == 3


def test_a_marker_on_a_block_too_small_for_a_repair_does_not_close_it() -> None:
    # adaptive, 25 % ceiling: one 200-byte call packet cannot carry a 213-byte repair
    tx = FecSession(FecConfig(mode="adaptive"))
    first = tx.send(udp4(RTP_PORT, _rtp(True, size=160)), 0.0)
    assert [wire.parse(o.payload).__class__ for o in first] == [wire.SourceFrame]
    assert tx.next_timeout() is not None  # still open, closed by its deadline


def test_once_a_flow_marks_its_frames_a_stall_mid_frame_does_not_cut_the_block() -> None:
    tx = FecSession(FecConfig(mode="rs", block=32, repairs=8))
    outs = [o for i in range(10) for o in tx.send(udp4(RTP_PORT, _rtp(i == 9)), 0.0003 * i)]
    assert _repairs(outs) == 3
    # the next frame, 33 ms on: its sender stalls 8 ms after 5 packets (a pause, but no
    # marker yet): the block stays open until the frame's marker, then has all 10
    t0 = 0.033
    times = [t0 + 0.0003 * i for i in range(5)] + [t0 + 0.008 + 0.0003 * i for i in range(5)]
    second = []
    for i, t in enumerate(times):
        due = tx.next_timeout()
        assert due is None or due > t  # nothing would have closed the block before t
        second += tx.send(udp4(RTP_PORT, _rtp(i == 9)), t)
    assert _repairs(second) == 3
    repair = next(o for o in second if o.kind == "repair")
    frame = wire.parse(repair.payload)
    assert isinstance(frame, wire.RepairFrame) and frame.k == 10
