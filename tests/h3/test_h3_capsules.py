"""Capsule Protocol codec and streaming parser (RFC 9297 §3)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tquic.h3.capsules import (
    Capsule,
    CapsuleParser,
    CapsuleType,
    encode_capsule,
    encode_datagram_capsule,
)
from tquic.h3.errors import H3Error, H3ErrorCode, H3StreamError


def test_datagram_capsule_layout() -> None:
    # RFC 9297 §3.5: Type 0x00, Length, HTTP Datagram Payload.
    assert encode_datagram_capsule(b"hi") == b"\x00\x02hi"
    assert encode_capsule(0x1234, b"") == b"\x52\x34\x00"


def test_capsules_survive_every_split_point() -> None:
    wire = encode_datagram_capsule(b"one") + encode_capsule(0x41, b"x" * 80) + encode_datagram_capsule(b"")
    expected = [Capsule(0, b"one"), Capsule(0x41, b"x" * 80), Capsule(0, b"")]
    for cut in range(len(wire) + 1):
        parser = CapsuleParser()
        got = parser.feed(wire[:cut]) + parser.feed(wire[cut:])
        parser.finish()
        assert got == expected


def test_unhandled_capsule_types_are_skipped_unbuffered() -> None:
    parser = CapsuleParser(handled_types=frozenset({CapsuleType.DATAGRAM}), max_capsule_size=16)
    # A huge unknown capsule is skipped (§3.2) even though it exceeds the size limit.
    wire = encode_capsule(0x2A, b"u" * 100) + encode_datagram_capsule(b"d")
    assert parser.feed(wire) == [Capsule(0, b"d")]


def test_oversized_capsule_is_excessive_load() -> None:
    parser = CapsuleParser(max_capsule_size=16)
    with pytest.raises(H3StreamError) as info:
        parser.feed(encode_datagram_capsule(b"x" * 17))
    assert info.value.code == H3ErrorCode.H3_EXCESSIVE_LOAD


def test_truncated_capsule_at_stream_end_is_malformed() -> None:
    parser = CapsuleParser()
    parser.feed(b"\x00\x05ab")
    with pytest.raises(H3StreamError) as info:
        parser.finish()
    assert info.value.code == H3ErrorCode.H3_MESSAGE_ERROR


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1 << 20), st.binary(max_size=100)), max_size=6), st.integers(0))
def test_capsule_sequences_round_trip(caps: list[tuple[int, bytes]], cut: int) -> None:
    wire = b"".join(encode_capsule(t, v) for t, v in caps)
    cut %= len(wire) + 1
    parser = CapsuleParser()
    got = parser.feed(wire[:cut]) + parser.feed(wire[cut:])
    parser.finish()
    assert got == [Capsule(t, v) for t, v in caps]


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200), st.integers(0))
def test_arbitrary_bytes_give_capsules_or_h3error(data: bytes, cut: int) -> None:
    cut %= len(data) + 1
    parser = CapsuleParser(max_capsule_size=64)
    try:
        parser.feed(data[:cut])
        parser.feed(data[cut:])
        parser.finish()
    except H3Error:
        pass
