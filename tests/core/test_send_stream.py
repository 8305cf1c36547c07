"""SendStream: buffering, retransmission, flow control and states (RFC 9000 §3.1, §4)."""

from __future__ import annotations

import random

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tquic.core.flow import ReceiveWindow, SendCredit
from tquic.core.recv_stream import RecvStream
from tquic.core.send_stream import SendState, SendStream, StreamUsageError
from tquic.paths.ackranges import RangeSet


def state_of(s: SendStream) -> SendState:
    """The state, read through a call so the type checker does not narrow it."""
    return s.state


def make(data: bytes = b"", limit: int = 1 << 20, end: bool = False) -> SendStream:
    s = SendStream(0, max_stream_data=limit)
    if data or end:
        s.write(data, end_stream=end)
    return s


def test_new_stream_is_ready_and_sends_nothing_without_data() -> None:
    s = make()
    assert state_of(s) == SendState.READY
    assert s.next_chunk(1000) is None
    assert not s.has_data_to_send()


def test_first_stream_frame_moves_ready_to_send() -> None:
    s = make(b"hello")
    assert s.next_chunk(1000) == (0, b"hello", False)
    assert state_of(s) == SendState.SEND


def test_chunks_respect_max_bytes_and_continue_at_the_next_offset() -> None:
    s = make(b"abcdefghij")
    assert s.next_chunk(4) == (0, b"abcd", False)
    assert s.next_chunk(4) == (4, b"efgh", False)
    assert s.next_chunk(4) == (8, b"ij", False)
    assert s.next_chunk(4) is None


def test_fin_rides_on_the_last_chunk_and_enters_data_sent() -> None:
    s = make(b"abc", end=True)
    assert s.next_chunk(100) == (0, b"abc", True)
    assert state_of(s) == SendState.DATA_SENT
    assert s.next_chunk(100) is None


def test_end_without_data_sends_a_bare_fin() -> None:
    s = make(b"abc")
    s.next_chunk(100)
    s.end()
    assert s.next_chunk(0) == (3, b"", True)
    assert state_of(s) == SendState.DATA_SENT


def test_new_data_stops_at_the_stream_credit() -> None:
    s = make(b"x" * 100, limit=30)
    assert s.next_chunk(1000) == (0, b"x" * 30, False)
    assert s.next_chunk(1000) is None
    assert s.on_max_stream_data(50)
    chunk = s.next_chunk(1000)
    assert chunk is not None and chunk[0] == 30 and len(chunk[1]) == 20


def test_new_data_stops_at_the_connection_credit_and_charges_it() -> None:
    conn = SendCredit(25)
    s = SendStream(0, max_stream_data=1000, connection_credit=conn)
    s.write(b"y" * 100)
    chunk = s.next_chunk(1000)
    assert chunk is not None and len(chunk[1]) == 25
    assert conn.used == 25 and s.credit.used == 25
    assert s.next_chunk(1000) is None
    assert not s.has_data_to_send()


def test_fin_needs_no_credit_when_all_data_was_sent() -> None:
    s = make(b"abc", limit=3)
    s.next_chunk(10)
    s.end()
    assert s.next_chunk(10) == (3, b"", True)


def test_stream_data_blocked_is_signalled_once_per_limit() -> None:
    s = make(b"z" * 50, limit=10)
    assert s.take_blocked_signal() is None  # credit left
    s.next_chunk(100)
    assert s.take_blocked_signal() == 10
    assert s.take_blocked_signal() is None
    s.on_max_stream_data(20)
    s.next_chunk(100)
    assert s.take_blocked_signal() == 20


def test_stream_data_blocked_moves_ready_to_send() -> None:
    s = make(b"z", limit=0)
    assert s.take_blocked_signal() == 0
    assert state_of(s) == SendState.SEND


def test_lost_data_is_retransmitted_before_new_data() -> None:
    s = make(b"0123456789")
    s.next_chunk(4)  # 0-3
    s.next_chunk(4)  # 4-7
    s.on_lost(0, 4, False)
    assert s.next_chunk(100) == (0, b"0123", False)
    assert s.next_chunk(100) == (8, b"89", False)


def test_retransmission_is_split_by_max_bytes() -> None:
    s = make(b"0123456789")
    s.next_chunk(10)
    s.on_lost(0, 10, False)
    assert s.next_chunk(3) == (0, b"012", False)
    assert s.next_chunk(3) == (3, b"345", False)


def test_retransmission_skips_parts_acked_meanwhile() -> None:
    s = make(b"0123456789")
    s.next_chunk(4)
    s.next_chunk(4)
    s.next_chunk(4)
    s.on_ack(4, 4, False)
    s.on_lost(0, 10, False)  # a coalesced loss report covering acked bytes
    assert s.next_chunk(100) == (0, b"0123", False)
    assert s.next_chunk(100) == (8, b"89", False)
    assert s.next_chunk(100) is None


def test_spurious_loss_then_ack_cancels_the_retransmission() -> None:
    s = make(b"0123456789")
    s.next_chunk(10)
    s.on_lost(0, 10, False)
    s.on_ack(0, 10, False)
    assert s.next_chunk(100) is None


def test_lost_fin_is_resent_with_the_final_data() -> None:
    s = make(b"abc", end=True)
    s.next_chunk(100)
    s.on_lost(0, 3, True)
    assert s.next_chunk(100) == (0, b"abc", True)


def test_lost_bare_fin_is_resent_alone() -> None:
    s = make(b"abc", end=True)
    s.next_chunk(100)
    s.on_ack(0, 3, False)
    s.on_lost(3, 0, True)
    assert s.next_chunk(100) == (3, b"", True)


def test_all_data_and_fin_acked_enters_data_recvd() -> None:
    s = make(b"abcdef", end=True)
    s.next_chunk(3)
    s.next_chunk(3)
    s.on_ack(3, 3, True)
    assert state_of(s) == SendState.DATA_SENT  # first half still unacked
    s.on_ack(0, 3, False)
    assert state_of(s) == SendState.DATA_RECVD
    assert s.is_finished
    assert s.next_chunk(100) is None


def test_acked_prefix_is_freed_and_out_of_order_acks_merge() -> None:
    s = make(b"a" * 3000)
    for _ in range(3):
        s.next_chunk(1000)
    s.on_ack(2000, 1000, False)
    s.on_ack(1000, 1000, False)
    assert s.acked_prefix == 0  # 0-999 still unacked
    assert s.held_bytes == 3000
    s.on_ack(0, 1000, False)
    assert s.acked_prefix == 3000
    assert s.held_bytes == 0


def test_writable_turns_false_at_the_buffer_bound() -> None:
    s = SendStream(0, max_stream_data=1 << 20, max_buffer=100)
    s.write(b"q" * 60)
    assert s.writable and s.writable_bytes == 40
    s.write(b"q" * 60)
    assert s.writable_bytes == 0
    s.next_chunk(50)  # sent bytes leave the unsent budget
    assert s.writable_bytes == 30


def test_write_after_end_is_a_usage_error() -> None:
    s = make(b"x", end=True)
    with pytest.raises(StreamUsageError):
        s.write(b"more")


def test_reset_enters_reset_sent_with_final_size_of_data_sent() -> None:
    s = make(b"0123456789")
    s.next_chunk(4)
    assert s.reset(7)
    assert state_of(s) == SendState.RESET_SENT
    assert s.reset_frame() == (7, 4)
    assert s.reset_frame() is None  # sent once until declared lost
    assert s.next_chunk(100) is None  # no STREAM frames after RESET_STREAM


def test_lost_reset_stream_is_resent_and_ack_enters_reset_recvd() -> None:
    s = make(b"abc")
    s.reset(1)
    s.reset_frame()
    s.on_reset_lost()
    assert s.reset_frame() == (1, 0)
    s.on_reset_acked()
    assert state_of(s) == SendState.RESET_RECVD
    assert s.is_finished


def test_reset_from_ready_is_allowed() -> None:
    s = make()
    assert s.reset(3)
    assert s.reset_frame() == (3, 0)


def test_reset_after_data_recvd_is_refused() -> None:
    s = make(b"a", end=True)
    s.next_chunk(10)
    s.on_ack(0, 1, True)
    assert not s.reset(1)
    assert state_of(s) == SendState.DATA_RECVD


def test_stop_sending_triggers_reset_with_the_peers_error_code() -> None:
    s = make(b"abc")
    s.next_chunk(2)
    assert s.on_stop_sending(42)
    assert s.reset_frame() == (42, 2)
    assert not s.on_stop_sending(43)  # already reset


def test_stop_sending_in_data_sent_resets_instead_of_retransmitting() -> None:
    s = make(b"abc", end=True)
    s.next_chunk(10)
    assert s.on_stop_sending(5)
    s.on_lost(0, 3, True)
    assert s.next_chunk(100) is None
    assert s.reset_frame() == (5, 3)


def test_data_acks_after_reset_are_ignored() -> None:
    s = make(b"abc")
    s.next_chunk(10)
    s.reset(0)
    s.on_ack(0, 3, False)
    assert state_of(s) == SendState.RESET_SENT


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=0, max_size=5000), st.integers(0, 2**32), st.booleans())
def test_every_byte_is_delivered_exactly_under_random_loss_and_acks(
    message: bytes, seed: int, end: bool
) -> None:
    """Random loss/ack of every frame sent: acked data reassembles to the message."""
    rng = random.Random(seed)
    s = SendStream(0, max_stream_data=len(message) + 10)
    s.write(message, end_stream=end)
    received: dict[int, bytes] = {}
    fin_acked = False
    for _ in range(10_000):
        chunk = s.next_chunk(rng.randint(1, 700))
        if chunk is None:
            break
        offset, data, fin = chunk
        if rng.random() < 0.3:
            s.on_lost(offset, len(data), fin)
        else:
            received[offset] = data
            fin_acked |= fin
            s.on_ack(offset, len(data), fin)
    buf = bytearray(len(message))
    covered = RangeSet()
    for offset, data in received.items():
        buf[offset : offset + len(data)] = data
        if data:
            covered.add_range(offset, offset + len(data) - 1)
    assert bytes(buf) == message
    assert list(covered) == ([(0, len(message) - 1)] if message else [])
    assert fin_acked == end
    assert state_of(s) == (
        SendState.DATA_RECVD if end else SendState.SEND if message else SendState.READY
    )


@settings(max_examples=40, deadline=None)
@given(st.binary(min_size=1, max_size=20_000), st.integers(0, 2**32))
@example(bytes(range(256)) * 80, 7)  # 20 KB: many window updates
@example(bytes(range(256)) * 80, 8)
def test_transfer_to_recv_stream_completes_under_loss_reorder_and_flow_control(
    message: bytes, seed: int
) -> None:
    """SendStream and RecvStream compose: small windows, 20% loss, shuffled delivery."""
    rng = random.Random(seed)
    conn_send = SendCredit(2000)
    conn_recv = ReceiveWindow(2000, max_window=8000)
    s = SendStream(0, max_stream_data=1000, connection_credit=conn_send)
    r = RecvStream(0, max_stream_data=1000, max_window=4000, connection_window=conn_recv)
    s.write(message, end_stream=True)
    out = []
    now = 0.0
    for _ in range(20_000):
        if r.at_eof:
            break
        now += 0.001
        batch: list[tuple[int, bytes, bool]] = []
        while len(batch) < 8 and (chunk := s.next_chunk(rng.randint(1, 600))) is not None:
            batch.append(chunk)
        rng.shuffle(batch)
        for offset, data, fin in batch:
            if rng.random() < 0.2:
                s.on_lost(offset, len(data), fin)
            else:
                r.on_frame(offset, data, fin)
                s.on_ack(offset, len(data), fin)
        out.append(r.read())
        if (limit := r.max_stream_data_update(now, 0.01)) is not None:
            s.on_max_stream_data(limit)
        if (limit := conn_recv.should_send_update(now, 0.01)) is not None:
            conn_send.raise_limit(limit)
    assert b"".join(out) == message
    assert state_of(s) == SendState.DATA_RECVD
    assert conn_recv.received == len(message) == conn_send.used
