"""FEC framing end to end: any erasure pattern is rebuilt when <= m symbols of a block are
lost, delivered bytes are always packets that were sent, and corrupt, truncated or
inconsistent repairs are dropped with a counter — never an exception."""

from __future__ import annotations

import random

from fec_helpers import fec_payloads, pair, udp4
from hypothesis import given, settings
from hypothesis import strategies as st

from tquic.bond.fec import FecConfig, FecSession, wire
from tquic.bond.fec.codes import Code


def _block(rx: FecSession, cfg: FecConfig, k: int, lost: set[int], seed: int
           ) -> tuple[list[bytes], list[bytes]]:
    """Send one full block of k STUN packets through a fresh sender; deliver all but ``lost``.
    (A STUN message starts with two zero bits, RFC 5389 §6: never an RTP marker that
    would end the block early.)"""
    rng = random.Random(seed)
    tx = FecSession(cfg)
    packets = [udp4(3478, b"\x00" + rng.randbytes(rng.randrange(0, 1300)) + bytes([i]))
               for i in range(k)]
    outs = []
    for p in packets:
        outs += fec_payloads(tx.send(p, 0.0))
    outs += fec_payloads(tx.poll(1.0))  # the repairs, spaced after the block
    delivered: list[bytes] = []
    for i, o in enumerate(outs):
        if i not in lost:
            delivered += rx.receive(o.payload, 0.001)
    return packets, delivered


@settings(max_examples=120, deadline=None)
@given(mode=st.sampled_from(["xor", "rs"]), k=st.integers(1, 16), m=st.integers(1, 4),
       data=st.data())
def test_random_erasures_are_rebuilt_iff_at_most_m_lost(mode: str, k: int, m: int,
                                                       data: st.DataObject) -> None:
    m = 1 if mode == "xor" else m
    cfg = FecConfig(mode=mode, block=k, repairs=m, max_delay=1.0, hold=2.0)
    lost = data.draw(st.sets(st.integers(0, k + m - 1), max_size=k + m))
    rx = FecSession(cfg)
    packets, delivered = _block(rx, cfg, k, lost, seed=k * 10 + m)
    assert set(delivered) <= set(packets)  # never wrong bytes
    assert len(delivered) == len(set(delivered))  # never twice
    if len(lost) <= m:
        assert sorted(delivered) == sorted(packets)
        assert rx.stats().recovered == sum(1 for i in lost if i < k)
    else:
        assert len(delivered) == k - sum(1 for i in lost if i < k)


def test_late_original_after_rebuild_is_not_delivered_twice() -> None:
    cfg = FecConfig(mode="rs", block=4, repairs=2)
    tx, rx = pair(cfg)
    outs = []
    for i in range(4):
        outs += fec_payloads(tx.send(udp4(3478, bytes([i]) * 50), 0.0))
    outs += fec_payloads(tx.poll(1.0))
    got = []
    for o in outs[1:]:
        got += rx.receive(o.payload, 0.0)
    assert len(got) == 4 and rx.stats().recovered == 1
    assert rx.receive(outs[0].payload, 0.01) == []
    assert rx.stats().duplicates == 1


def _repair_payload() -> tuple[list[bytes], bytes]:
    cfg = FecConfig(mode="rs", block=3, repairs=1)
    tx = FecSession(cfg)
    outs = []
    for i in range(3):
        outs += fec_payloads(tx.send(udp4(3478, bytes([i]) * 100), 0.0))
    outs += fec_payloads(tx.poll(1.0))
    return [o.payload for o in outs if o.kind == "source"], outs[-1].payload


def test_corrupt_repair_is_dropped_and_counted() -> None:
    sources, repair = _repair_payload()
    for pos in (1, 5, 8, len(repair) - 1):  # header field, k/m, crc, symbol
        rx = FecSession(FecConfig(mode="rs", block=3, repairs=1))
        bad = bytearray(repair)
        bad[pos] ^= 0x10
        assert rx.receive(sources[0], 0.0) != []
        assert rx.receive(bytes(bad), 0.0) == []
        assert rx.receive(sources[2], 0.0) != []  # source 1 lost: cannot be rebuilt
        assert rx.stats().repairs_dropped == 1 and rx.stats().recovered == 0


def test_truncated_repair_is_dropped_and_counted() -> None:
    sources, repair = _repair_payload()
    for cut in (1, 5, wire.REPAIR_HEADER, len(repair) - 1):
        rx = FecSession()
        assert rx.receive(repair[:cut], 0.0) == []
        assert rx.receive(sources[0], 0.0) != []
        assert rx.stats().repairs_dropped == 1


def test_repair_disagreeing_with_its_block_is_dropped() -> None:
    sym = bytes(50)
    first = wire.encode_repair(0, 7, 4, 4, 2, Code.RS, sym)
    other_len = wire.encode_repair(0, 7, 5, 4, 2, Code.RS, sym + b"\x00")
    rx = FecSession()
    rx.receive(first, 0.0)
    assert rx.receive(other_len, 0.0) == []
    assert rx.stats().repairs_dropped == 1


def test_source_too_long_for_its_block_stops_recovery() -> None:
    # A hostile peer: a source longer than the repair's symbol cannot belong to the
    # block; nothing is rebuilt from it (it would be wrong bytes).
    sym = bytes(12)
    rx = FecSession()
    assert rx.receive(wire.encode_repair(0, 1, 2, 2, 1, Code.XOR, sym), 0.0) == []
    assert rx.receive(wire.encode_source(0, 1, 0, bytes(40)), 0.0) == [bytes(40)]
    assert rx.stats().recovered == 0


def test_feedback_roundtrip_and_bad_lengths() -> None:
    bits = (True, False, True, True, False, False, False, True, True)
    frame = wire.parse(wire.encode_feedback(3, 65535, bits))
    assert frame == wire.FeedbackFrame(3, 65535, bits)
    rx = FecSession()
    assert rx.receive(wire.encode_feedback(0, 1, bits)[:-1], 0.0) == []
    assert rx.stats().malformed == 1


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=80))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    rx = FecSession()
    out = rx.receive(data, 0.0)
    rx.poll(10.0)
    if data and data[0] >> 6 != wire.SOURCE:
        assert out == []  # only a source frame can hand a packet up


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 255)), max_size=6))
def test_bit_flipped_repairs_never_yield_wrong_bytes(flips: list[tuple[int, int]]) -> None:
    sources, repair = _repair_payload()
    bad = bytearray(repair)
    for pos, mask in flips:
        # keep the kind bits: a frame flipped into a *source* is just a packet the
        # peer sent (the tunnel's AEAD is what stops forged packets)
        bad[pos % len(bad)] ^= mask & 0x3F if pos % len(bad) == 0 else mask
    rx = FecSession(FecConfig(mode="rs", block=3, repairs=1))
    got = rx.receive(sources[0], 0.0) + rx.receive(bytes(bad), 0.0) + rx.receive(sources[2], 0.0)
    originals = {wire.parse(s).packet for s in sources}  # type: ignore[union-attr]
    assert set(got) <= originals
