"""Out-of-order data a peer can make us hold is bounded per stream *and* per connection
(RFC 9000 §21.10): the connection's receive window counts every stream's fragments."""

from __future__ import annotations

import pytest

from tquic.core.flow import ReceiveWindow
from tquic.core.recv_stream import RecvStream
from tquic.wire.errors import QuicError, TransportErrorCode


def _streams(count: int, max_pieces: int) -> tuple[ReceiveWindow, list[RecvStream]]:
    conn = ReceiveWindow(1 << 24)
    conn.max_pieces = max_pieces
    return conn, [RecvStream(4 * n, max_stream_data=1 << 20, connection_window=conn)
                  for n in range(count)]


def test_fragments_over_all_streams_are_bounded_with_protocol_violation() -> None:
    conn, streams = _streams(4, max_pieces=10)
    for n in range(10):  # 10 gaps spread over 4 streams: each stream is far below its own cap
        streams[n % 4].on_frame(10 + 4 * n, b"x")
    assert conn.pieces == 10
    with pytest.raises(QuicError) as info:
        streams[3].on_frame(500, b"x")
    assert info.value.error_code == TransportErrorCode.PROTOCOL_VIOLATION
    assert "in the connection" in info.value.reason


def test_filled_gaps_and_resets_give_the_budget_back() -> None:
    conn, streams = _streams(2, max_pieces=4)
    streams[0].on_frame(10, b"a")
    streams[0].on_frame(20, b"b")
    streams[1].on_frame(10, b"c")
    assert conn.pieces == 3
    streams[0].on_frame(0, bytes(25))  # covers the gaps: both pieces drain
    assert conn.pieces == 1
    streams[1].on_reset(0, 100)  # a reset drops what the stream held
    assert conn.pieces == 0
    for n in range(4):  # the whole budget is usable again
        streams[0].on_frame(100 + 4 * n, b"x")
    assert conn.pieces == 4


def test_a_piece_that_replaces_held_pieces_counts_once() -> None:
    conn, [stream] = _streams(1, max_pieces=100)
    stream.on_frame(10, b"x")
    stream.on_frame(12, b"y")
    stream.on_frame(8, bytes(10))  # covers both: they are replaced by one piece
    assert conn.pieces == 1

