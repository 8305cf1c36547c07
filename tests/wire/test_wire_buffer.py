"""Buffer and varints: RFC 9000 §16 and the Appendix A.1 examples, byte for byte."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tquic.wire.buffer import VARINT_MAX, Buffer, encode_varint, varint_size
from tquic.wire.errors import BufferReadError, QuicDecodeError, TransportErrorCode

# RFC 9000 Appendix A.1: encodings and the values they decode to.
APPENDIX_A1 = [
    ("c2197c5eff14e88c", 151_288_809_941_952_652),
    ("9d7f3e7d", 494_878_333),
    ("7bbd", 15_293),
    ("25", 37),
]


@pytest.mark.parametrize(("hex_bytes", "value"), APPENDIX_A1)
def test_rfc9000_a1_varint_decodes_to_the_example_value(hex_bytes: str, value: int) -> None:
    buf = Buffer(bytes.fromhex(hex_bytes))
    assert buf.pull_varint() == value
    assert buf.eof()


@pytest.mark.parametrize(("hex_bytes", "value"), APPENDIX_A1)
def test_rfc9000_a1_varint_encodes_to_the_example_bytes(hex_bytes: str, value: int) -> None:
    assert encode_varint(value).hex() == hex_bytes
    assert varint_size(value) == len(hex_bytes) // 2


def test_rfc9000_a1_two_byte_encoding_of_37_also_decodes_to_37() -> None:
    # "0x25 decodes to 37 (as does the two-byte sequence 0x4025)".
    assert Buffer(bytes.fromhex("4025")).pull_varint() == 37


@pytest.mark.parametrize(
    ("value", "size"),
    [(0, 1), (63, 1), (64, 2), (16383, 2), (16384, 4), (2**30 - 1, 4), (2**30, 8),
     (VARINT_MAX, 8)],
)
def test_varint_size_boundaries_follow_rfc9000_table4(value: int, size: int) -> None:
    assert varint_size(value) == size
    assert len(encode_varint(value)) == size


@pytest.mark.parametrize("value", [-1, VARINT_MAX + 1])
def test_values_outside_the_varint_range_are_refused(value: int) -> None:
    with pytest.raises(ValueError):
        encode_varint(value)
    with pytest.raises(ValueError):
        varint_size(value)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=VARINT_MAX))
def test_varint_round_trips_in_shortest_form(value: int) -> None:
    buf = Buffer()
    buf.push_varint(value)
    assert len(buf) == varint_size(value)
    assert Buffer(buf.data).pull_varint() == value


@pytest.mark.parametrize("hex_bytes", ["", "40", "80ff", "c0000000000000"])
def test_truncated_varint_raises_frame_encoding_error(hex_bytes: str) -> None:
    with pytest.raises(BufferReadError) as info:
        Buffer(bytes.fromhex(hex_bytes)).pull_varint()
    assert info.value.error_code == TransportErrorCode.FRAME_ENCODING_ERROR
    assert isinstance(info.value, QuicDecodeError)


def test_fixed_width_integers_round_trip_big_endian() -> None:
    buf = Buffer()
    buf.push_uint8(0x12)
    buf.push_uint16(0x3456)
    buf.push_uint24(0x789ABC)
    buf.push_uint32(0xDEF01234)
    buf.push_uint64(0x0123456789ABCDEF)
    assert buf.data.hex() == "12" "3456" "789abc" "def01234" "0123456789abcdef"
    reader = Buffer(buf.data)
    assert reader.pull_uint8() == 0x12
    assert reader.pull_uint16() == 0x3456
    assert reader.pull_uint24() == 0x789ABC
    assert reader.pull_uint32() == 0xDEF01234
    assert reader.pull_uint64() == 0x0123456789ABCDEF
    assert reader.eof()


@pytest.mark.parametrize(
    "method", ["pull_uint8", "pull_uint16", "pull_uint24", "pull_uint32", "pull_uint64"]
)
def test_fixed_width_reads_past_the_end_raise_buffer_read_error(method: str) -> None:
    with pytest.raises(BufferReadError):
        getattr(Buffer(b""), method)()


def test_bytes_reads_track_the_cursor_and_refuse_overruns() -> None:
    buf = Buffer(b"\x03abcdef")
    assert buf.pull_varint_bytes() == b"abc"
    assert buf.tell() == 4
    assert buf.remaining == 3
    with pytest.raises(BufferReadError):
        buf.pull_bytes(4)
    with pytest.raises(BufferReadError):
        buf.pull_bytes(-1)
    assert buf.pull_rest() == b"def"
    assert buf.eof()


def test_seek_and_data_slice_stay_inside_the_data() -> None:
    buf = Buffer(b"0123456789")
    buf.seek(10)
    assert buf.eof()
    with pytest.raises(BufferReadError):
        buf.seek(11)
    with pytest.raises(BufferReadError):
        buf.seek(-1)
    assert buf.data_slice(2, 5) == b"234"
    with pytest.raises(BufferReadError):
        buf.data_slice(5, 11)


def test_writing_to_a_read_buffer_is_refused() -> None:
    with pytest.raises(TypeError):
        Buffer(b"abc").push_uint8(1)


def test_push_varint_bytes_writes_length_then_bytes() -> None:
    buf = Buffer()
    buf.push_varint_bytes(b"x" * 64)
    assert buf.data[:2] == b"\x40\x40"
    assert len(buf) == 66


def test_memoryview_input_is_readable() -> None:
    buf = Buffer(memoryview(b"\x25\x7b\xbd"))
    assert buf.pull_varint() == 37
    assert buf.pull_varint() == 15293
