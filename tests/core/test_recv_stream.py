"""RecvStream: reassembly, final size, flow control and states (RFC 9000 §3.2, §4)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tquic.core.flow import ReceiveWindow
from tquic.core.recv_stream import RecvState, RecvStream
from tquic.wire.errors import QuicError, TransportErrorCode


def make(window: int = 1 << 20, conn: ReceiveWindow | None = None) -> RecvStream:
    return RecvStream(1, max_stream_data=window, connection_window=conn)


def state_of(r: RecvStream) -> RecvState:
    """The state, read through a call so the type checker does not narrow it."""
    return r.state


def error_code(exc: pytest.ExceptionInfo[QuicError]) -> int:
    return exc.value.error_code


def test_in_order_frames_are_readable_immediately() -> None:
    r = make()
    r.on_frame(0, b"hello ")
    r.on_frame(6, b"world")
    assert r.read() == b"hello world"
    assert r.read() == b""
    assert state_of(r) == RecvState.RECV


def test_out_of_order_frame_waits_for_the_gap() -> None:
    r = make()
    r.on_frame(5, b"world")
    assert r.read() == b""
    r.on_frame(0, b"hello")
    assert r.read() == b"helloworld"
    assert r.piece_count == 0


def test_overlapping_and_duplicate_frames_deliver_each_byte_once() -> None:
    r = make()
    r.on_frame(4, b"456789")
    r.on_frame(2, b"2345")
    r.on_frame(6, b"67")
    r.on_frame(0, b"0123")
    r.on_frame(0, b"01")
    assert r.read() == b"0123456789"


def test_new_piece_covering_held_pieces_replaces_them() -> None:
    r = make()
    r.on_frame(3, b"3")
    r.on_frame(6, b"67")
    r.on_frame(2, b"2345678")
    assert r.piece_count == 1
    r.on_frame(0, b"01")
    assert r.read() == b"012345678"


def test_partial_read_returns_at_most_max_bytes() -> None:
    r = make()
    r.on_frame(0, b"abc")
    r.on_frame(3, b"defg")
    assert r.read(2) == b"ab"
    assert r.read(3) == b"cde"
    assert r.read(100) == b"fg"


def test_fin_enters_size_known_then_data_recvd_then_data_read() -> None:
    r = make()
    r.on_frame(3, b"def", fin=True)
    assert state_of(r) == RecvState.SIZE_KNOWN
    assert r.final_size == 6
    r.on_frame(0, b"abc")
    assert state_of(r) == RecvState.DATA_RECVD
    assert r.read() == b"abcdef"
    assert state_of(r) == RecvState.DATA_READ
    assert r.at_eof and r.is_finished


def test_empty_fin_frame_on_empty_stream_completes_it() -> None:
    r = make()
    r.on_frame(0, b"", fin=True)
    assert state_of(r) == RecvState.DATA_READ  # nothing left for the application
    assert r.at_eof
    assert r.read() == b""


def test_bare_fin_after_everything_was_read_reaches_eof() -> None:
    r = make()
    r.on_frame(0, b"hello")
    assert r.read() == b"hello"
    assert not r.at_eof
    r.on_frame(5, b"", fin=True)
    assert r.at_eof


def test_data_beyond_final_size_is_final_size_error() -> None:
    r = make()
    r.on_frame(0, b"abc", fin=True)
    with pytest.raises(QuicError) as info:
        r.on_frame(3, b"d")
    assert error_code(info) == TransportErrorCode.FINAL_SIZE_ERROR


def test_changed_final_size_is_final_size_error() -> None:
    r = make()
    r.on_frame(0, b"abc", fin=True)
    with pytest.raises(QuicError) as info:
        r.on_frame(0, b"ab", fin=True)
    assert error_code(info) == TransportErrorCode.FINAL_SIZE_ERROR


def test_final_size_below_received_data_is_final_size_error() -> None:
    r = make()
    r.on_frame(10, b"xyz")
    with pytest.raises(QuicError) as info:
        r.on_frame(0, b"abc", fin=True)
    assert error_code(info) == TransportErrorCode.FINAL_SIZE_ERROR


def test_data_beyond_final_size_after_stream_closed_is_still_an_error() -> None:
    r = make()
    r.on_frame(0, b"abc", fin=True)
    r.read()
    assert r.is_finished
    with pytest.raises(QuicError) as info:
        r.on_frame(2, b"cd")
    assert error_code(info) == TransportErrorCode.FINAL_SIZE_ERROR


def test_retransmission_within_final_size_is_accepted_after_completion() -> None:
    r = make()
    r.on_frame(0, b"abc", fin=True)
    r.read()
    assert r.on_frame(0, b"abc", fin=True) == 0


def test_data_beyond_stream_window_is_flow_control_error() -> None:
    r = make(window=10)
    r.on_frame(0, b"0123456789")
    with pytest.raises(QuicError) as info:
        r.on_frame(10, b"x")
    assert error_code(info) == TransportErrorCode.FLOW_CONTROL_ERROR


def test_data_beyond_connection_window_is_flow_control_error() -> None:
    conn = ReceiveWindow(15)
    a = RecvStream(0, max_stream_data=100, connection_window=conn)
    b = RecvStream(4, max_stream_data=100, connection_window=conn)
    a.on_frame(0, b"x" * 10)
    with pytest.raises(QuicError) as info:
        b.on_frame(0, b"y" * 6)
    assert error_code(info) == TransportErrorCode.FLOW_CONTROL_ERROR


def test_flow_control_counts_the_largest_offset_not_bytes_received() -> None:
    conn = ReceiveWindow(1000)
    r = RecvStream(0, max_stream_data=1000, connection_window=conn)
    assert r.on_frame(500, b"x" * 10) == 510
    assert r.on_frame(0, b"y" * 10) == 0  # below the largest offset: no new credit
    assert conn.received == 510


def test_reading_releases_stream_and_connection_window() -> None:
    conn = ReceiveWindow(100)
    r = RecvStream(0, max_stream_data=100, connection_window=conn)
    r.on_frame(0, b"x" * 60)
    assert r.max_stream_data_update(0.0) is None  # nothing consumed yet
    r.read()
    assert r.window.consumed == 60 and conn.consumed == 60
    assert r.max_stream_data_update(0.0) == 160
    assert conn.should_send_update(0.0) == 160


def test_no_max_stream_data_once_the_final_size_is_known() -> None:
    r = make(window=100)
    r.on_frame(0, b"x" * 90, fin=True)
    r.read()
    assert r.max_stream_data_update(0.0) is None


def test_reset_in_recv_enters_reset_recvd_and_drops_data() -> None:
    r = make()
    r.on_frame(0, b"abc")
    r.on_frame(10, b"zz")
    assert r.on_reset(9, 20)
    assert state_of(r) == RecvState.RESET_RECVD
    assert r.reset_error_code == 9
    assert r.read() == b""
    r.mark_reset_read()
    assert state_of(r) == RecvState.RESET_READ and r.is_finished


def test_reset_releases_the_whole_final_size_to_the_connection() -> None:
    conn = ReceiveWindow(1000)
    r = RecvStream(0, max_stream_data=1000, connection_window=conn)
    r.on_frame(0, b"a" * 100)
    r.on_reset(0, 300)
    assert conn.received == 300
    assert conn.consumed == 300


def test_reset_with_changed_final_size_is_final_size_error() -> None:
    r = make()
    r.on_frame(0, b"abc", fin=True)
    with pytest.raises(QuicError) as info:
        r.on_reset(0, 4)
    assert error_code(info) == TransportErrorCode.FINAL_SIZE_ERROR
    assert info.value.frame_type == 0x04


def test_reset_with_final_size_below_received_data_is_final_size_error() -> None:
    r = make()
    r.on_frame(0, b"abcdef")
    with pytest.raises(QuicError) as info:
        r.on_reset(0, 3)
    assert error_code(info) == TransportErrorCode.FINAL_SIZE_ERROR


def test_reset_final_size_beyond_window_is_flow_control_error() -> None:
    r = make(window=10)
    with pytest.raises(QuicError) as info:
        r.on_reset(0, 11)
    assert error_code(info) == TransportErrorCode.FLOW_CONTROL_ERROR


def test_reset_after_all_data_received_is_suppressed() -> None:
    r = make()
    r.on_frame(0, b"abc", fin=True)
    assert not r.on_reset(1, 3)
    assert state_of(r) == RecvState.DATA_RECVD
    assert r.read() == b"abc"


def test_data_after_reset_is_discarded_but_final_size_still_enforced() -> None:
    r = make()
    r.on_reset(0, 5)
    assert r.on_frame(0, b"abc") == 0
    assert r.read() == b""
    with pytest.raises(QuicError):
        r.on_frame(4, b"xy")


def test_stop_sending_discards_data_and_keeps_counting_flow_control() -> None:
    conn = ReceiveWindow(1000)
    r = RecvStream(0, max_stream_data=1000, connection_window=conn)
    r.on_frame(0, b"abc")
    assert r.stop_sending(77)
    assert r.needs_stop_sending
    assert r.read() == b""
    r.on_frame(3, b"defg")
    assert r.read() == b""
    assert conn.received == 7 and conn.consumed == 7
    assert not r.stop_sending(78)  # once


def test_stop_sending_is_not_needed_once_all_data_arrived() -> None:
    r = make()
    r.on_frame(0, b"abc", fin=True)
    assert not r.stop_sending(1)
    r2 = make()
    r2.stop_sending(1)
    r2.on_frame(0, b"abc", fin=True)
    assert not r2.needs_stop_sending
    assert r2.is_finished


def test_too_many_out_of_order_fragments_close_the_connection() -> None:
    r = RecvStream(0, max_stream_data=1 << 20, max_pieces=8)
    for i in range(8):
        r.on_frame(10 + 2 * i, b"x")
    with pytest.raises(QuicError) as info:
        r.on_frame(100, b"x")
    assert error_code(info) == TransportErrorCode.PROTOCOL_VIOLATION


def _frames_of(message: bytes, cuts: list[int]) -> list[tuple[int, bytes, bool]]:
    points = sorted({0, len(message), *(c % (len(message) + 1) for c in cuts)})
    frames = []
    for a, b in itertools.pairwise(points):
        frames.append((a, message[a:b], b == len(message)))
    if not frames:
        frames.append((0, b"", True))
    return frames


@settings(max_examples=200, deadline=None)
@given(
    message=st.binary(max_size=3000),
    cuts=st.lists(st.integers(0, 10_000), max_size=25),
    data=st.data(),
)
def test_recv_stream_delivers_exactly_the_message_for_any_frame_order(
    message: bytes, cuts: list[int], data: st.DataObject
) -> None:
    """Any permutation, duplication and overlap of a message's frames yields the message."""
    frames = _frames_of(message, cuts)
    # Overlapping frames: random sub-slices of the message (fin only if they reach the end).
    bounds = st.tuples(st.integers(0, 3000), st.integers(0, 3000))
    extra = data.draw(st.lists(bounds, max_size=10))
    for a, b in extra:
        lo, hi = sorted((a % (len(message) + 1), b % (len(message) + 1)))
        frames.append((lo, message[lo:hi], hi == len(message) and data.draw(st.booleans())))
    duplicates = data.draw(st.lists(st.sampled_from(frames), max_size=10))
    everything = data.draw(st.permutations(frames + duplicates))

    r = RecvStream(0, max_stream_data=len(message))
    out = []
    for offset, chunk, fin in everything:
        r.on_frame(offset, chunk, fin)
        out.append(r.read(data.draw(st.one_of(st.none(), st.integers(1, 500)))))
    out.append(r.read())
    assert b"".join(out) == message
    assert state_of(r) == RecvState.DATA_READ
    assert r.piece_count == 0


def test_data_ending_beyond_2_62_is_flow_control_error() -> None:
    r = make()
    with pytest.raises(QuicError) as info:
        r.on_frame((1 << 62) - 1, b"xy")
    assert error_code(info) == TransportErrorCode.FLOW_CONTROL_ERROR


def test_out_of_order_data_counts_against_the_window_before_it_is_readable() -> None:
    r = make(window=100)
    r.on_frame(90, b"x" * 10)
    with pytest.raises(QuicError) as info:
        r.on_frame(95, b"y" * 10)
    assert error_code(info) == TransportErrorCode.FLOW_CONTROL_ERROR
