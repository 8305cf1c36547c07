"""WebTransport inside H3Connection (in-memory shim): stream headers sniffed next to request
streams, WT_STREAM misuse (§4.3), and any bytes on any stream never raising."""

from __future__ import annotations

from h3_shim import client_with_raw_server, feed, server_with_raw_client
from hypothesis import given, settings
from hypothesis import strategies as st
from test_h3_errors import GET, qpack

from tquic.core.events import StreamDataReceived, StreamReset
from tquic.h3.errors import H3ErrorCode
from tquic.h3.events import HeadersReceived, WebTransportStreamDataReceived
from tquic.h3.settings import H3Config
from tquic.wire.buffer import encode_varint

WT = H3Config(enable_datagrams=True, enable_connect_protocol=True, webtransport=True)


def test_server_tells_webtransport_streams_from_request_streams() -> None:
    conn, quic = server_with_raw_client(WT)
    head = encode_varint(0x41) + encode_varint(0)
    assert feed(conn, 4, head + b"payload") == [WebTransportStreamDataReceived(4, 0, b"payload", False)]
    uni = encode_varint(0x54) + encode_varint(0)
    assert feed(conn, 2, uni + b"one way", fin=True) == [
        WebTransportStreamDataReceived(2, 0, b"one way", True)]
    assert feed(conn, 4, b" more", fin=True) == [WebTransportStreamDataReceived(4, 0, b" more", True)]
    # a reset of a WebTransport stream reaches the application as a StreamReset
    feed(conn, 8, head)
    assert conn.handle_event(StreamReset(8, 0x52E4A40FA8DB)) != []
    assert quic.closed is None


def test_wt_stream_signal_inside_a_request_is_a_frame_error() -> None:
    conn, quic = server_with_raw_client(WT)
    feed(conn, 0, qpack(GET, 0))
    feed(conn, 0, encode_varint(0x41) + encode_varint(0))
    assert quic.closed is not None and quic.closed[0] == H3ErrorCode.H3_FRAME_ERROR


def test_without_webtransport_a_0x54_stream_is_ignored_as_before() -> None:
    conn, quic = server_with_raw_client(H3Config())
    assert feed(conn, 2, encode_varint(0x54) + encode_varint(0) + b"x") == []
    assert (2, H3ErrorCode.H3_STREAM_CREATION_ERROR) in quic.stop_sendings


def test_requests_still_work_when_webtransport_is_on() -> None:
    conn, _ = server_with_raw_client(WT)
    assert feed(conn, 0, qpack(GET, 0), fin=True) == [HeadersReceived(0, GET, True)]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, 8]), st.binary(max_size=40),
                       st.booleans()), max_size=8),
    st.booleans(),
)
def test_any_bytes_on_any_stream_never_raise_with_webtransport(
        chunks: list[tuple[int, bytes, bool]], client: bool) -> None:
    if client:
        conn, quic = client_with_raw_server(WT)
        conn.get_next_available_stream_id()
    else:
        conn, quic = server_with_raw_client(WT)
    for stream_id, data, fin in chunks:
        conn.handle_event(StreamDataReceived(stream_id, data, fin))
    if quic.closed is not None:
        assert conn.closed
