"""Any bytes fed to the wire parsers decode or raise QuicDecodeError with the RFC's code.

Never another exception, never a hang (DESIGN.md "Bad input never crashes anything").
Random bytes rarely get past the first field, so each parser is also fed
mutations and truncations of valid encodings.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from wire_strategies import any_frame

from tquic.wire.errors import QuicDecodeError, TransportErrorCode
from tquic.wire.frames import Frame, encode_frames, parse_frames
from tquic.wire.packet import (
    PacketType,
    encode_long_header,
    encode_retry,
    encode_short_header,
    encode_version_negotiation,
    parse_header,
    split_datagram,
)
from tquic.wire.version import QUIC_V1, QUIC_V2

FRAME_CODES = {TransportErrorCode.FRAME_ENCODING_ERROR, TransportErrorCode.PROTOCOL_VIOLATION}


def _parse_frames_or_typed_error(payload: bytes) -> None:
    try:
        frames = parse_frames(payload)
    except QuicDecodeError as exc:
        assert exc.error_code in FRAME_CODES
        return
    assert frames  # a successful parse never returns nothing


@st.composite
def mutated(draw: st.DrawFn, base: bytes) -> bytes:
    """``base`` truncated, with bytes flipped, or with bytes inserted."""
    data = bytearray(base)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        action = draw(st.sampled_from(("flip", "truncate", "insert")))
        if action == "truncate" or not data:
            data = data[: draw(st.integers(min_value=0, max_value=len(data)))]
        elif action == "flip":
            index = draw(st.integers(min_value=0, max_value=len(data) - 1))
            data[index] = draw(st.integers(min_value=0, max_value=255))
        else:
            index = draw(st.integers(min_value=0, max_value=len(data)))
            data[index:index] = draw(st.binary(min_size=1, max_size=4))
    return bytes(data)


valid_payloads = st.lists(any_frame, min_size=1, max_size=5).map(encode_frames)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_parse_frames_on_random_bytes_decodes_or_raises_a_typed_error(payload: bytes) -> None:
    _parse_frames_or_typed_error(payload)


@settings(max_examples=500, deadline=None)
@given(valid_payloads.flatmap(mutated))
def test_parse_frames_on_mutated_frames_decodes_or_raises_a_typed_error(payload: bytes) -> None:
    _parse_frames_or_typed_error(payload)


@settings(max_examples=100, deadline=None)
@given(st.lists(any_frame, min_size=1, max_size=4))
def test_truncated_frames_never_escape_as_other_exceptions(frames: list[Frame]) -> None:
    payload = encode_frames(frames)
    for cut in range(len(payload)):
        _parse_frames_or_typed_error(payload[:cut])


# --- headers ------------------------------------------------------------------------


def _parse_header_or_typed_error(datagram: bytes, cid_length: int) -> None:
    try:
        headers = split_datagram(datagram, cid_length)
    except QuicDecodeError as exc:
        assert exc.error_code == TransportErrorCode.PROTOCOL_VIOLATION
        return
    assert headers
    for header in headers:
        assert 0 < header.packet_end <= len(datagram)
        assert header.pn_offset <= header.packet_end
    try:
        parse_header(datagram, len(datagram) // 2, cid_length)
    except QuicDecodeError as exc:
        assert exc.error_code == TransportErrorCode.PROTOCOL_VIOLATION


@st.composite
def valid_datagrams(draw: st.DrawFn) -> bytes:
    version = draw(st.sampled_from((QUIC_V1, QUIC_V2)))
    dcid = draw(st.binary(min_size=0, max_size=20))
    kind = draw(st.sampled_from(("long", "short", "vn", "retry")))
    if kind == "vn":
        return encode_version_negotiation(dcid, b"s", (QUIC_V1, QUIC_V2))
    if kind == "retry":
        return encode_retry(version, dcid, b"scid", b"odcid", draw(st.binary(max_size=20)))
    if kind == "short":
        return encode_short_header(dcid, 5, 2, key_phase=True) + draw(st.binary(max_size=40))
    ptype = draw(st.sampled_from((PacketType.INITIAL, PacketType.ZERO_RTT,
                                  PacketType.HANDSHAKE)))
    payload = draw(st.binary(min_size=1, max_size=40))
    return encode_long_header(version, ptype, dcid, b"scid", b"tk", len(payload), 1, 1) + payload


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=120), st.integers(min_value=0, max_value=20))
def test_split_datagram_on_random_bytes_decodes_or_raises_protocol_violation(
    datagram: bytes, cid_length: int
) -> None:
    _parse_header_or_typed_error(datagram, cid_length)


@settings(max_examples=400, deadline=None)
@given(st.lists(valid_datagrams(), min_size=1, max_size=3).map(b"".join).flatmap(mutated),
       st.integers(min_value=0, max_value=20))
def test_split_datagram_on_mutated_packets_decodes_or_raises_protocol_violation(
    datagram: bytes, cid_length: int
) -> None:
    _parse_header_or_typed_error(datagram, cid_length)
