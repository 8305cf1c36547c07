"""Frames: RFC 9000 §19 layouts and rules, RFC 9221, ack-frequency, multipath."""

from __future__ import annotations

import typing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wire_strategies import FRAME_STRATEGIES, any_frame, non_padding_frame

from tquic.wire.buffer import VARINT_MAX, Buffer, encode_varint
from tquic.wire.errors import QuicDecodeError, TransportErrorCode
from tquic.wire.frames import (
    FRAME_RULES,
    MULTIPATH_FRAME_TYPES,
    AckFrame,
    AckFrequencyFrame,
    ConnectionCloseFrame,
    CryptoFrame,
    DataBlockedFrame,
    DatagramFrame,
    Frame,
    FrameType,
    HandshakeDoneFrame,
    ImmediateAckFrame,
    MaxDataFrame,
    MaxPathIdFrame,
    MaxStreamDataFrame,
    MaxStreamsFrame,
    NewConnectionIdFrame,
    NewTokenFrame,
    PaddingFrame,
    PathAbandonFrame,
    PathAckFrame,
    PathChallengeFrame,
    PathCidsBlockedFrame,
    PathNewConnectionIdFrame,
    PathResponseFrame,
    PathRetireConnectionIdFrame,
    PathsBlockedFrame,
    PathStatusAvailableFrame,
    PathStatusBackupFrame,
    PingFrame,
    ResetStreamFrame,
    RetireConnectionIdFrame,
    StopSendingFrame,
    StreamDataBlockedFrame,
    StreamFrame,
    StreamsBlockedFrame,
    encode_datagram_frame,
    encode_frame,
    encode_frames,
    encode_stream_frame,
    frame_allowed,
    frame_size,
    frame_type_of,
    is_ack_eliciting,
    is_ack_eliciting_type,
    is_probing,
    is_probing_frame,
    parse_frames,
    stream_data_capacity,
    stream_frame_overhead,
)
from tquic.wire.packet import PacketType

FEE = TransportErrorCode.FRAME_ENCODING_ERROR
PV = TransportErrorCode.PROTOCOL_VIOLATION


def _decode_error(payload: bytes) -> QuicDecodeError:
    with pytest.raises(QuicDecodeError) as info:
        parse_frames(payload)
    return info.value


# --- coverage of the tables -------------------------------------------------------


def test_every_frame_class_has_a_strategy_and_every_codepoint_has_rules() -> None:
    assert set(FRAME_STRATEGIES) == set(typing.get_args(Frame))
    assert {int(t) for t in FrameType} == set(FRAME_RULES)


def test_multipath_codepoints_match_the_draft() -> None:
    assert int(FrameType.PATH_ACK) == 0x3E and int(FrameType.PATH_ACK_ECN) == 0x3F
    named = [FrameType.PATH_ABANDON, FrameType.PATH_STATUS_BACKUP,
             FrameType.PATH_STATUS_AVAILABLE, FrameType.PATH_NEW_CONNECTION_ID,
             FrameType.PATH_RETIRE_CONNECTION_ID, FrameType.MAX_PATH_ID,
             FrameType.PATHS_BLOCKED, FrameType.PATH_CIDS_BLOCKED]
    assert named == list(range(0x3E75, 0x3E7D))
    assert int(FrameType.ACK_FREQUENCY) == 0xAF and int(FrameType.IMMEDIATE_ACK) == 0x1F
    assert int(FrameType.DATAGRAM) == 0x30 and int(FrameType.DATAGRAM_LEN) == 0x31


# --- round trips ------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(any_frame)
def test_every_frame_type_round_trips_and_frame_size_is_exact(frame: Frame) -> None:
    payload = encode_frames([frame])
    assert parse_frames(payload) == [frame]
    assert frame_size(frame) == len(payload)
    assert Buffer(payload).pull_varint() == frame_type_of(frame)


@settings(max_examples=150, deadline=None)
@given(st.lists(non_padding_frame, min_size=1, max_size=8),
       st.integers(min_value=0, max_value=30))
def test_frame_sequences_round_trip_in_order(frames: list[Frame], padding: int) -> None:
    if padding:
        frames = [*frames, PaddingFrame(padding)]
    assert parse_frames(encode_frames(frames)) == frames


@settings(max_examples=100, deadline=None)
@given(st.lists(non_padding_frame, min_size=1, max_size=4),
       st.lists(st.integers(min_value=1, max_value=1400), min_size=1, max_size=4))
def test_padding_runs_between_and_after_frames_are_each_one_frame(
        frames: list[Frame], runs: list[int]) -> None:
    # A run that fills the rest of the packet and one that stops at a frame are both
    # read whole (the first by one comparison, the second by a search).
    mixed: list[Frame] = []
    for frame, run in zip(frames, runs, strict=False):
        mixed += [PaddingFrame(run), frame]
    mixed.append(PaddingFrame(runs[-1]))
    assert parse_frames(encode_frames(mixed)) == mixed


@pytest.mark.parametrize("cls", list(FRAME_STRATEGIES), ids=lambda c: c.__name__)
def test_each_frame_class_round_trips(cls: type) -> None:
    @settings(max_examples=15, deadline=None)
    @given(FRAME_STRATEGIES[cls])
    def check(frame: Frame) -> None:
        payload = encode_frames([frame])
        assert parse_frames(payload) == [frame]
        assert frame_allowed(frame_type_of(frame), PacketType.ONE_RTT)

    check()


# --- RFC example payloads ----------------------------------------------------------

# RFC 9001 A.2: the client's CRYPTO frame (padded to 1162 bytes in the example).
CLIENT_CRYPTO = bytes.fromhex(
    "060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e868"
    "04fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578"
    "616d706c652e636f6dff01000100000a00080006001d00170018001000070005"
    "04616c706e0005000501000000000033 00260024001d00209370b2c9caa47fba"
    "baf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b000302030400"
    "0d0010000e0403050306030203080408050806002d00020101001c0002400100"
    "3900320408ffffffffffffffff05048000ffff07048000ffff08011001048000"
    "75300901100f088394c8f03e51570806048000ffff".replace(" ", "")
)
# RFC 9001 A.3: the server's ACK + CRYPTO payload.
SERVER_PAYLOAD = bytes.fromhex(
    "02000000000600405a020000560303eefce7f7b37ba1d1632e96677825ddf739"
    "88cfc79825df566dc5430b9a045a1200130100002e00330024001d00209d3c94"
    "0d89690b84d08a60993c144eca684d1081287c834d5311bcf32bb9da1a002b00"
    "020304"
)


def test_rfc9001_client_initial_payload_is_crypto_then_padding() -> None:
    payload = CLIENT_CRYPTO + bytes(1162 - len(CLIENT_CRYPTO))
    frames = parse_frames(payload)
    assert len(frames) == 2
    crypto, padding = frames
    assert isinstance(crypto, CryptoFrame)
    assert crypto.offset == 0
    assert len(crypto.data) == 241
    assert crypto.data[:4] == bytes.fromhex("010000ed")  # ClientHello, 237 bytes
    assert padding == PaddingFrame(1162 - len(CLIENT_CRYPTO))
    assert encode_frames(frames) == payload


def test_rfc9001_server_initial_payload_is_ack_then_crypto() -> None:
    frames = parse_frames(SERVER_PAYLOAD)
    assert frames[0] == AckFrame(((0, 0),), 0, None)
    assert isinstance(frames[1], CryptoFrame)
    assert frames[1].offset == 0 and len(frames[1].data) == 90
    assert frames[1].data[:4] == bytes.fromhex("02000056")  # ServerHello
    # The example spells the CRYPTO Length in two bytes (0x405a); we re-encode
    # minimally, so only the ACK and the data survive byte for byte.
    assert encode_frames(frames[:1]) == SERVER_PAYLOAD[:5]


# --- ACK ------------------------------------------------------------------------


def test_ack_ranges_encode_as_rfc9000_gap_and_length() -> None:
    frame = AckFrame(((8, 10), (3, 5), (0, 0)), ack_delay=7)
    # Largest 10, delay 7, count 2, first range 2, gap 8-5-2=1, len 2, gap 3-0-2=1, len 0.
    assert encode_frames([frame]) == bytes([0x02, 10, 7, 2, 2, 1, 2, 1, 0])
    assert frame.largest_acknowledged == 10


def test_ack_ecn_counts_use_type_0x03() -> None:
    payload = encode_frames([AckFrame(((0, 4),), 0, (1, 2, 3))])
    assert payload == bytes([0x03, 4, 0, 0, 4, 1, 2, 3])


def test_ack_first_range_below_zero_is_a_frame_encoding_error() -> None:
    error = _decode_error(bytes([0x02, 5, 0, 0, 6]))
    assert error.error_code == FEE
    assert error.frame_type == 0x02


def test_ack_gap_below_zero_is_a_frame_encoding_error() -> None:
    # Largest 5, first range 0 (smallest 5), gap 4 -> largest -1.
    error = _decode_error(bytes([0x02, 5, 0, 1, 0, 4, 0]))
    assert error.error_code == FEE


def test_ack_range_count_larger_than_the_frame_is_refused_without_looping() -> None:
    payload = bytes([0x02, 5, 0]) + encode_varint(2**61) + bytes([0])
    assert _decode_error(payload).error_code == FEE


def test_path_ack_carries_the_path_id_first() -> None:
    frame = PathAckFrame(3, ((0, 9),), 1, None)
    assert encode_frames([frame]) == bytes([0x3E, 3, 9, 1, 0, 9])
    assert parse_frames(bytes([0x3F, 3, 9, 1, 0, 9, 4, 5, 6])) == [
        PathAckFrame(3, ((0, 9),), 1, (4, 5, 6))]


@pytest.mark.parametrize("ranges", [(), ((5, 4),), ((5, 9), (3, 4)), ((5, 9), (6, 7)),
                                    ((5, 9), (0, 10))])
def test_invalid_ack_ranges_are_not_encoded(ranges: tuple[tuple[int, int], ...]) -> None:
    with pytest.raises(ValueError):
        encode_frames([AckFrame(ranges, 0)])


# --- STREAM, CRYPTO, DATAGRAM ------------------------------------------------------


def test_stream_type_bits_follow_off_len_fin() -> None:
    assert encode_frames([StreamFrame(4, 0, b"ab", False)])[0] == 0x0A
    assert encode_frames([StreamFrame(4, 9, b"ab", True)])[0] == 0x0F
    buf = Buffer()
    encode_stream_frame(buf, 4, 9, b"ab", True, with_length=False)
    assert buf.data == bytes([0x0D, 4, 9]) + b"ab"


def test_stream_without_length_runs_to_the_end_of_the_packet() -> None:
    payload = bytes([0x08, 1]) + b"hello\x00\x01"
    assert parse_frames(payload) == [StreamFrame(1, 0, b"hello\x00\x01", False)]


def test_stream_offset_plus_length_beyond_2_62_is_a_frame_encoding_error() -> None:
    payload = bytes([0x0E, 0]) + encode_varint(VARINT_MAX) + bytes([1]) + b"x"
    error = _decode_error(payload)
    assert error.error_code == FEE
    assert error.frame_type == 0x0E
    with pytest.raises(ValueError):
        encode_frames([StreamFrame(0, VARINT_MAX, b"x")])


def test_crypto_offset_plus_length_beyond_2_62_is_a_frame_encoding_error() -> None:
    payload = bytes([0x06]) + encode_varint(VARINT_MAX) + bytes([1]) + b"x"
    assert _decode_error(payload).error_code == FEE


def test_stream_length_past_the_payload_is_a_frame_encoding_error() -> None:
    error = _decode_error(bytes([0x0A, 0, 10]) + b"short")
    assert error.error_code == FEE
    assert error.frame_type == 0x0A


def test_datagram_types_0x30_and_0x31() -> None:
    assert parse_frames(b"\x30abc") == [DatagramFrame(b"abc")]
    assert parse_frames(b"\x31\x02ab\x01") == [DatagramFrame(b"ab"), PingFrame()]
    buf = Buffer()
    encode_datagram_frame(buf, b"xyz", with_length=False)
    assert buf.data == b"\x30xyz"


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=VARINT_MAX), st.integers(min_value=0, max_value=2**40),
       st.integers(min_value=0, max_value=70000))
def test_stream_data_capacity_fills_the_space_exactly_or_as_close_as_varints_allow(
    stream_id: int, offset: int, space: int
) -> None:
    capacity = stream_data_capacity(stream_id, offset, space)
    if capacity > 0:
        assert stream_frame_overhead(stream_id, offset, capacity) + capacity <= space
    more = capacity + 1
    assert stream_frame_overhead(stream_id, offset, more) + more > space


# --- connection IDs, tokens, limits ------------------------------------------------


@pytest.mark.parametrize("length", [0, 21])
def test_new_connection_id_length_outside_1_to_20_is_a_frame_encoding_error(
        length: int) -> None:
    payload = bytes([0x18, 1, 0, length]) + bytes(length) + bytes(16)
    error = _decode_error(payload)
    assert error.error_code == FEE
    assert error.frame_type == 0x18


def test_retire_prior_to_above_sequence_number_is_a_frame_encoding_error() -> None:
    payload = bytes([0x18, 1, 2, 4]) + b"abcd" + bytes(16)
    assert _decode_error(payload).error_code == FEE
    multipath = encode_varint(0x3E78) + bytes([0, 1, 2, 4]) + b"abcd" + bytes(16)
    assert _decode_error(multipath).error_code == FEE


@pytest.mark.parametrize("frame", [
    NewConnectionIdFrame(1, 0, b"", bytes(16)),
    NewConnectionIdFrame(1, 0, bytes(21), bytes(16)),
    NewConnectionIdFrame(1, 2, b"abcd", bytes(16)),
    NewConnectionIdFrame(1, 0, b"abcd", bytes(15)),
    PathNewConnectionIdFrame(2**32, 1, 0, b"abcd", bytes(16)),
    PathChallengeFrame(b"1234567"),
    NewTokenFrame(b""),
    MaxStreamsFrame(2**60 + 1, True),
    AckFrequencyFrame(0, 0, 2**14 * 1000, 0),
    PaddingFrame(0),
    PathAckFrame(2**32, ((0, 1),), 0),
    AckFrame(((0, 1), (5, 9)), 0),
    ConnectionCloseFrame(VARINT_MAX + 1, 0, b"", False),
    ConnectionCloseFrame(1, VARINT_MAX + 1, b"", False),
])
def test_frames_that_break_an_encoding_rule_are_not_encoded(frame: Frame) -> None:
    buf = Buffer()
    with pytest.raises(ValueError):
        encode_frame(buf, frame)
    assert len(buf) == 0  # nothing half-written into the packet


def test_empty_new_token_is_a_frame_encoding_error() -> None:
    assert _decode_error(bytes([0x07, 0])).error_code == FEE


@pytest.mark.parametrize("frame_type", [0x12, 0x13, 0x16, 0x17])
def test_stream_counts_above_2_60_are_frame_encoding_errors(frame_type: int) -> None:
    assert parse_frames(bytes([frame_type]) + encode_varint(2**60))[0] is not None
    error = _decode_error(bytes([frame_type]) + encode_varint(2**60 + 1))
    assert error.error_code == FEE


def test_ack_frequency_max_ack_delay_of_2_14_ms_is_a_protocol_violation() -> None:
    ok = encode_varint(0xAF) + bytes([1, 1]) + encode_varint(2**14 * 1000 - 1) + bytes([1])
    assert parse_frames(ok) == [AckFrequencyFrame(1, 1, 2**14 * 1000 - 1, 1)]
    bad = encode_varint(0xAF) + bytes([1, 1]) + encode_varint(2**14 * 1000) + bytes([1])
    assert _decode_error(bad).error_code == PV


@pytest.mark.parametrize("frame_type", sorted(MULTIPATH_FRAME_TYPES))
def test_multipath_path_id_above_2_32_is_a_protocol_violation(frame_type: int) -> None:
    payload = encode_varint(frame_type) + encode_varint(2**32) + bytes(40)
    error = _decode_error(payload)
    assert error.error_code == PV
    assert error.frame_type == frame_type


def test_connection_close_variants() -> None:
    transport = ConnectionCloseFrame(0x0A, 0x08, b"bad stream", False)
    application = ConnectionCloseFrame(0x101, None, b"", True)
    assert encode_frames([transport]) == bytes([0x1C, 0x0A, 0x08, 10]) + b"bad stream"
    assert encode_frames([application]) == bytes([0x1D, 0x41, 0x01, 0])
    assert parse_frames(encode_frames([transport, application])) == [transport, application]


# --- generic decoding rules ----------------------------------------------------------


def test_packet_without_frames_is_a_protocol_violation() -> None:
    assert _decode_error(b"").error_code == PV


def test_unknown_frame_type_is_a_frame_encoding_error_naming_the_type() -> None:
    error = _decode_error(b"\x01\x21")
    assert error.error_code == FEE
    assert error.frame_type == 0x21


def test_frame_type_in_a_longer_varint_than_needed_is_a_protocol_violation() -> None:
    # RFC 9000 §12.4: 0x4001 is PING in two bytes; we choose to reject it.
    error = _decode_error(b"\x40\x01")
    assert error.error_code == PV
    assert error.frame_type == 0x01
    assert parse_frames(encode_varint(0x3E7A) + b"\x05") != []


def test_padding_runs_are_counted_not_listed() -> None:
    payload = bytes(5) + b"\x01" + bytes(3)
    assert parse_frames(payload) == [PaddingFrame(5), PingFrame(), PaddingFrame(3)]
    assert parse_frames(bytes(1500)) == [PaddingFrame(1500)]


# --- per-type tables (RFC 9000 §12.4 Table 3, §12.5, §9.1, §13.2.1) --------------------

INI, ZRT, HSK, ONE = (PacketType.INITIAL, PacketType.ZERO_RTT, PacketType.HANDSHAKE,
                      PacketType.ONE_RTT)
TABLE3: dict[int, set[PacketType]] = {
    # type: packet types allowed, from the "Pkts" column (RCID and the §12.5 list
    # of frames that cannot appear in 0-RTT applied strictly).
    0x00: {INI, HSK, ZRT, ONE}, 0x01: {INI, HSK, ZRT, ONE},
    0x02: {INI, HSK, ONE}, 0x03: {INI, HSK, ONE},
    0x04: {ZRT, ONE}, 0x05: {ZRT, ONE}, 0x06: {INI, HSK, ONE}, 0x07: {ONE},
    **{t: {ZRT, ONE} for t in range(0x08, 0x18)},
    0x18: {ZRT, ONE}, 0x19: {ONE}, 0x1A: {ZRT, ONE}, 0x1B: {ONE},
    0x1C: {INI, HSK, ZRT, ONE}, 0x1D: {ZRT, ONE},
    0x1E: {ONE}, 0x1F: {ONE}, 0xAF: {ONE}, 0x30: {ZRT, ONE}, 0x31: {ZRT, ONE},
    **{t: {ONE} for t in MULTIPATH_FRAME_TYPES},
}


@pytest.mark.parametrize("frame_type", sorted(TABLE3))
def test_frame_allowed_matches_table_3(frame_type: int) -> None:
    allowed = {pt for pt in PacketType if frame_allowed(frame_type, pt)}
    assert allowed == TABLE3[frame_type]


def test_unknown_frame_types_are_allowed_nowhere() -> None:
    assert not any(frame_allowed(0x21, pt) for pt in PacketType)


def test_ack_eliciting_excludes_padding_ack_path_ack_and_close() -> None:
    assert not is_ack_eliciting(PaddingFrame(3))
    assert not is_ack_eliciting(AckFrame(((0, 0),), 0))
    assert not is_ack_eliciting(PathAckFrame(1, ((0, 0),), 0))
    assert not is_ack_eliciting(ConnectionCloseFrame(0, 0, b"", False))
    assert is_ack_eliciting(PingFrame())
    assert is_ack_eliciting(StreamFrame(0, 0, b""))
    assert is_ack_eliciting(DatagramFrame(b""))
    non_eliciting = {t for t in FrameType if not is_ack_eliciting_type(t)}
    assert non_eliciting == {0x00, 0x02, 0x03, 0x1C, 0x1D, 0x3E, 0x3F}


def test_probing_frames_are_those_of_rfc9000_section_9_1() -> None:
    assert {t for t in FrameType if is_probing(t)} == {0x00, 0x18, 0x1A, 0x1B}
    assert is_probing_frame(PathChallengeFrame(bytes(8)))
    assert not is_probing_frame(PingFrame())


def _one_of_each_codepoint() -> dict[int, bytes]:
    """A valid encoding for every FrameType value, keyed by the type on the wire."""
    samples: list[bytes] = []
    frames: list[Frame] = [
        PaddingFrame(1), PingFrame(), AckFrame(((0, 1),), 0), AckFrame(((0, 1),), 0, (1, 1, 1)),
        ResetStreamFrame(0, 0, 0), StopSendingFrame(0, 0), CryptoFrame(0, b"c"),
        NewTokenFrame(b"t"), MaxDataFrame(1), MaxStreamDataFrame(0, 1),
        MaxStreamsFrame(1, True), MaxStreamsFrame(1, False), DataBlockedFrame(1),
        StreamDataBlockedFrame(0, 1), StreamsBlockedFrame(1, True),
        StreamsBlockedFrame(1, False), NewConnectionIdFrame(1, 0, b"c", bytes(16)),
        RetireConnectionIdFrame(0), PathChallengeFrame(bytes(8)), PathResponseFrame(bytes(8)),
        ConnectionCloseFrame(0, 0, b"", False), ConnectionCloseFrame(0, None, b"", True),
        HandshakeDoneFrame(), ImmediateAckFrame(), AckFrequencyFrame(0, 1, 1000, 1),
        DatagramFrame(b"d"), PathAckFrame(0, ((0, 1),), 0), PathAckFrame(0, ((0, 1),), 0, (0, 0, 1)),
        PathAbandonFrame(1, 0), PathStatusBackupFrame(1, 0), PathStatusAvailableFrame(1, 0),
        PathNewConnectionIdFrame(1, 0, 0, b"c", bytes(16)), PathRetireConnectionIdFrame(1, 0),
        MaxPathIdFrame(1), PathsBlockedFrame(1), PathCidsBlockedFrame(1, 0),
    ]
    for frame in frames:
        samples.append(encode_frames([frame]))
    for offset in (0, 7):
        for fin in (False, True):
            for with_length in (False, True):
                buf = Buffer()
                encode_stream_frame(buf, 4, offset, b"x", fin, with_length=with_length)
                samples.append(buf.data)
    buf = Buffer()
    encode_datagram_frame(buf, b"d", with_length=False)
    samples.append(buf.data)
    return {Buffer(sample).pull_varint(): sample for sample in samples}


def test_every_codepoint_in_the_table_decodes() -> None:
    samples = _one_of_each_codepoint()
    assert set(samples) == {int(t) for t in FrameType}
    for frame_type, payload in samples.items():
        (frame,) = parse_frames(payload)
        assert frame_allowed(frame_type, PacketType.ONE_RTT)
        if frame_type not in (0x08, 0x09, 0x0C, 0x0D, 0x30):  # the Length-less forms
            assert frame_type_of(frame) == frame_type
