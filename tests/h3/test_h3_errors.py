"""Every HTTP/3 violation gets the error code RFC 9114 / RFC 9204 names (§8.1).

Hostile bytes are injected straight into one H3Connection (its QUIC side is the
shim, which records how it was closed or which streams were reset).
"""

from __future__ import annotations

import pylsqpack
import pytest
from h3_shim import H3Pair, ShimQuic, client_with_raw_server, feed, server_with_raw_client
from hypothesis import given, settings
from hypothesis import strategies as st

from tquic.core.events import DatagramReceived as QuicDatagram
from tquic.core.events import StopSendingReceived, StreamDataReceived, StreamReset
from tquic.h3.connection import H3Connection
from tquic.h3.errors import H3ErrorCode, H3UsageError
from tquic.h3.events import ConnectionTerminated, DataReceived, HeadersReceived
from tquic.h3.events import StreamReset as H3StreamReset
from tquic.h3.frames import (
    CancelPushFrame,
    DataFrame,
    GoawayFrame,
    HeadersFrame,
    MaxPushIdFrame,
    PushPromiseFrame,
    SettingsFrame,
    UnknownFrame,
    encode_frame,
    encode_frame_header,
)
from tquic.h3.settings import H3Config
from tquic.wire.buffer import encode_varint

GET = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"a"), (b":path", b"/")]
CLIENT_CONTROL = 2  # the first client-initiated unidirectional stream
SERVER_CONTROL = 3
SETTINGS = encode_frame(SettingsFrame(()))


def qpack(headers: list[tuple[bytes, bytes]], stream_id: int = 0) -> bytes:
    """A HEADERS frame encoded with the static table only (valid for any decoder)."""
    _, block = pylsqpack.Encoder().encode(stream_id, headers)
    return encode_frame(HeadersFrame(block))


def closed_with(quic: ShimQuic) -> int | None:
    return quic.closed[0] if quic.closed else None


def server_control(*frames: bytes) -> tuple[H3Connection, ShimQuic]:
    conn, quic = server_with_raw_client()
    feed(conn, CLIENT_CONTROL, b"\x00" + b"".join(frames))
    return conn, quic


# -- request streams ------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "code"),
    [
        (encode_frame(DataFrame(b"x")), H3ErrorCode.H3_FRAME_UNEXPECTED),  # DATA before HEADERS
        (qpack(GET) + qpack([(b"x", b"1")]) + qpack([(b"y", b"2")]), H3ErrorCode.H3_FRAME_UNEXPECTED),
        (qpack(GET) + qpack([(b"x", b"1")]) + encode_frame(DataFrame(b"x")), H3ErrorCode.H3_FRAME_UNEXPECTED),
        (encode_frame(SettingsFrame(())), H3ErrorCode.H3_FRAME_UNEXPECTED),
        (encode_frame(GoawayFrame(0)), H3ErrorCode.H3_FRAME_UNEXPECTED),
        (encode_frame(MaxPushIdFrame(0)), H3ErrorCode.H3_FRAME_UNEXPECTED),
        (encode_frame(CancelPushFrame(0)), H3ErrorCode.H3_FRAME_UNEXPECTED),
        (encode_frame(PushPromiseFrame(0, b"\x00\x00")), H3ErrorCode.H3_FRAME_UNEXPECTED),
        (encode_frame_header(0x6, 0), H3ErrorCode.H3_FRAME_UNEXPECTED),  # HTTP/2 PING
        (encode_frame(HeadersFrame(b"\xff\xff\xff")), H3ErrorCode.QPACK_DECOMPRESSION_FAILED),
        (encode_frame_header(0x1, 1 << 20), H3ErrorCode.H3_EXCESSIVE_LOAD),
    ],
)
def test_request_stream_violations_close_the_connection(wire: bytes, code: H3ErrorCode) -> None:
    conn, quic = server_with_raw_client()
    events = feed(conn, 0, wire)
    assert closed_with(quic) == code
    assert ConnectionTerminated(code, quic.closed[1] if quic.closed else "", False) in events
    assert conn.closed and feed(conn, 4, qpack(GET, 4), True) == []


def test_truncated_frame_at_end_of_request_stream_is_frame_error() -> None:
    conn, quic = server_with_raw_client()
    feed(conn, 0, qpack(GET) + b"\x00\x05abc", fin=True)
    assert closed_with(quic) == H3ErrorCode.H3_FRAME_ERROR


def test_connect_stream_accepts_only_data_after_headers() -> None:
    conn, quic = server_with_raw_client()
    feed(conn, 0, qpack([(b":method", b"CONNECT"), (b":authority", b"h:443")]) + qpack([(b"t", b"x")]))
    assert closed_with(quic) == H3ErrorCode.H3_FRAME_UNEXPECTED  # RFC 9114 §4.4


def test_server_initiated_bidi_stream_is_stream_creation_error() -> None:
    conn, quic = client_with_raw_server()
    feed(conn, 1, b"\x01\x00")
    assert closed_with(quic) == H3ErrorCode.H3_STREAM_CREATION_ERROR


def test_push_promise_to_a_client_that_sent_no_max_push_id_is_id_error() -> None:
    conn, quic = client_with_raw_server()
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, GET, end_stream=True)
    feed(conn, sid, encode_frame(PushPromiseFrame(0, b"\x00\x00")))
    assert closed_with(quic) == H3ErrorCode.H3_ID_ERROR  # RFC 9114 §7.2.5


# -- malformed messages: stream errors ------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        [(b":method", b"GET"), (b":path", b"/"), (b":authority", b"a")],  # no :scheme
        [(b":scheme", b"https"), (b":path", b"/"), (b":authority", b"a")],  # no :method
        [*GET, (b":method", b"GET")],  # pseudo-header after... and repeated
        [(b":method", b"GET"), (b"accept", b"*/*"), (b":scheme", b"https"), (b":path", b"/"), (b":authority", b"a")],
        [*GET, (b"Accept", b"*/*")],  # uppercase name
        [*GET, (b"connection", b"keep-alive")],  # connection-specific
        [*GET, (b"transfer-encoding", b"chunked")],
        [*GET, (b"te", b"gzip")],  # TE other than trailers
        [*GET, (b":status", b"200")],  # response pseudo-header in a request
        [*GET, (b":foo", b"bar")],  # undefined pseudo-header
        [*GET, (b"x", b"a\r\nb")],  # CR LF in a value
        [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/")],  # no authority nor host
        [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b""), (b":authority", b"a")],
        [*GET[:3], (b":path", b"/"), (b"host", b"b")],  # :authority != host
        [(b":method", b"CONNECT"), (b":authority", b"h:1"), (b":path", b"/")],  # CONNECT with :path
        [(b":method", b"CONNECT"), (b":protocol", b"websocket"), *GET[1:]],  # not enabled
        [*GET, (b"content-length", b"12a")],
    ],
)
def test_malformed_request_is_reset_with_message_error(headers: list[tuple[bytes, bytes]]) -> None:
    conn, quic = server_with_raw_client()
    events = feed(conn, 0, qpack(headers), fin=True)
    assert quic.closed is None, "a malformed message is a stream error, not a connection error"
    assert (0, H3ErrorCode.H3_MESSAGE_ERROR) in quic.resets
    assert events == [H3StreamReset(0, H3ErrorCode.H3_MESSAGE_ERROR, False)]
    # The connection carries on: the next request is fine.
    events = feed(conn, 4, qpack(GET, 4), fin=True)
    assert events == [HeadersReceived(4, GET, True)]


@pytest.mark.parametrize(
    ("declared", "body"),
    [(b"5", b"abc"), (b"2", b"abc"), (b"0", b"a")],
)
def test_content_length_mismatch_is_message_error(declared: bytes, body: bytes) -> None:
    conn, quic = server_with_raw_client()
    post = [(b":method", b"POST"), *GET[1:], (b"content-length", declared)]
    events = feed(conn, 0, qpack(post) + encode_frame(DataFrame(body)), fin=True)
    assert (0, H3ErrorCode.H3_MESSAGE_ERROR) in quic.resets and quic.closed is None
    assert not any(isinstance(e, HeadersReceived | DataReceived) for e in events)


def test_malformed_response_is_not_accepted_by_the_client() -> None:
    conn, quic = client_with_raw_server()
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, GET, end_stream=True)
    events = feed(conn, sid, qpack([(b":status", b"20")], sid), fin=True)
    assert events == [H3StreamReset(sid, H3ErrorCode.H3_MESSAGE_ERROR, False)]
    assert quic.closed is None


def test_content_in_response_to_head_is_message_error() -> None:
    conn, quic = client_with_raw_server()
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(b":method", b"HEAD"), *GET[1:]], end_stream=True)
    events = feed(conn, sid, qpack([(b":status", b"200")], sid) + encode_frame(DataFrame(b"body")))
    assert events == [H3StreamReset(sid, H3ErrorCode.H3_MESSAGE_ERROR, False)]
    # Our request was complete, so only reading is aborted (STOP_SENDING).
    assert (sid, H3ErrorCode.H3_MESSAGE_ERROR) in quic.stop_sendings and quic.closed is None


def test_request_stream_ending_without_headers_is_request_incomplete() -> None:
    conn, quic = server_with_raw_client()
    events = feed(conn, 0, encode_frame(UnknownFrame(0x21, 0)), fin=True)
    assert (0, H3ErrorCode.H3_REQUEST_INCOMPLETE) in quic.resets
    assert events == [H3StreamReset(0, H3ErrorCode.H3_REQUEST_INCOMPLETE, False)]


# -- control and other unidirectional streams -----------------------------------------------


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        ((encode_frame(GoawayFrame(0)),), H3ErrorCode.H3_MISSING_SETTINGS),
        ((encode_frame(UnknownFrame(0x21, 1), unknown_payload=b"g"),), H3ErrorCode.H3_MISSING_SETTINGS),
        ((SETTINGS, SETTINGS), H3ErrorCode.H3_FRAME_UNEXPECTED),
        ((SETTINGS, encode_frame(DataFrame(b"x"))), H3ErrorCode.H3_FRAME_UNEXPECTED),
        ((SETTINGS, qpack(GET)), H3ErrorCode.H3_FRAME_UNEXPECTED),
        ((SETTINGS, encode_frame(PushPromiseFrame(1, b"\x00\x00"))), H3ErrorCode.H3_FRAME_UNEXPECTED),
        ((SETTINGS, encode_frame(CancelPushFrame(0))), H3ErrorCode.H3_ID_ERROR),  # never promised
        ((SETTINGS, encode_frame(MaxPushIdFrame(5)), encode_frame(MaxPushIdFrame(4))), H3ErrorCode.H3_ID_ERROR),
        ((SETTINGS, encode_frame(GoawayFrame(8)), encode_frame(GoawayFrame(9))), H3ErrorCode.H3_ID_ERROR),
        ((b"\x04\x02\x02\x00",), H3ErrorCode.H3_SETTINGS_ERROR),  # HTTP/2 setting
        ((b"\x04\x02\x33\x05",), H3ErrorCode.H3_SETTINGS_ERROR),  # H3_DATAGRAM=5
        ((b"\x04\x04\x06\x01\x06\x02",), H3ErrorCode.H3_SETTINGS_ERROR),  # duplicate
        ((SETTINGS, b"\x07\x02\x04\x00"), H3ErrorCode.H3_FRAME_ERROR),  # GOAWAY with extra byte
    ],
)
def test_control_stream_violations(frames: tuple[bytes, ...], code: H3ErrorCode) -> None:
    _, quic = server_control(*frames)
    assert closed_with(quic) == code


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        ((SETTINGS, encode_frame(MaxPushIdFrame(1))), H3ErrorCode.H3_FRAME_UNEXPECTED),
        ((SETTINGS, encode_frame(GoawayFrame(2))), H3ErrorCode.H3_ID_ERROR),  # not a client bidi id
        ((SETTINGS, encode_frame(GoawayFrame(4)), encode_frame(GoawayFrame(8))), H3ErrorCode.H3_ID_ERROR),
        ((SETTINGS, encode_frame(CancelPushFrame(3))), H3ErrorCode.H3_ID_ERROR),  # above MAX_PUSH_ID
    ],
)
def test_control_stream_violations_seen_by_a_client(frames: tuple[bytes, ...], code: H3ErrorCode) -> None:
    conn, quic = client_with_raw_server()
    feed(conn, SERVER_CONTROL, b"\x00" + b"".join(frames))
    assert closed_with(quic) == code


def test_closing_or_resetting_a_critical_stream_is_closed_critical_stream() -> None:
    _, quic = server_with_raw_client()
    conn = H3Connection(quic, is_client=False)
    feed(conn, CLIENT_CONTROL, b"\x00" + SETTINGS, fin=True)
    assert closed_with(quic) == H3ErrorCode.H3_CLOSED_CRITICAL_STREAM
    for stream_type in (0x00, 0x02, 0x03):
        conn, quic = server_with_raw_client()
        feed(conn, 6, bytes([stream_type]))
        conn.handle_event(StreamReset(6, 0x100))
        assert closed_with(quic) == H3ErrorCode.H3_CLOSED_CRITICAL_STREAM
    # STOP_SENDING on our own control stream (§6.2.1: the receiver must not ask).
    conn, quic = server_with_raw_client()
    conn.handle_event(StopSendingReceived(SERVER_CONTROL, 0x100))
    assert closed_with(quic) == H3ErrorCode.H3_CLOSED_CRITICAL_STREAM


@pytest.mark.parametrize("stream_type", [0x00, 0x02, 0x03])
def test_second_critical_stream_is_stream_creation_error(stream_type: int) -> None:
    conn, quic = server_with_raw_client()
    first = b"\x00" + SETTINGS if stream_type == 0 else bytes([stream_type])
    feed(conn, 2, first)
    feed(conn, 6, bytes([stream_type]))
    assert closed_with(quic) == H3ErrorCode.H3_STREAM_CREATION_ERROR


def test_push_streams() -> None:
    conn, quic = server_with_raw_client()
    feed(conn, 2, b"\x01\x00")  # only servers push (§6.2.2)
    assert closed_with(quic) == H3ErrorCode.H3_STREAM_CREATION_ERROR
    conn, quic = client_with_raw_server()
    feed(conn, 3, b"\x01")
    assert quic.closed is None  # push ID not read yet
    feed(conn, 3, b"\x00")  # push ID 0 > the MAX_PUSH_ID we never sent
    assert closed_with(quic) == H3ErrorCode.H3_ID_ERROR


def test_unknown_and_reserved_stream_types_are_ignored() -> None:
    conn, quic = server_with_raw_client()
    feed(conn, 2, encode_varint(0x1F * 7 + 0x21) + b"whatever")
    feed(conn, 6, encode_varint(0x54) + b"more")
    feed(conn, 10, b"\x40", fin=True)  # closed before its type was complete (§6.2)
    assert quic.closed is None
    assert [s for s, _ in quic.stop_sendings] == [2, 6]
    assert {c for _, c in quic.stop_sendings} == {H3ErrorCode.H3_STREAM_CREATION_ERROR}


def test_qpack_stream_errors() -> None:
    conn, quic = server_with_raw_client()
    feed(conn, 2, b"\x02" + b"\x3f\xe9\x26")  # Set Dynamic Table Capacity 5000 > our 4096
    assert closed_with(quic) == H3ErrorCode.QPACK_ENCODER_STREAM_ERROR
    conn, quic = server_with_raw_client()
    feed(conn, 2, b"\x03" + b"\x80")  # Section Acknowledgment for a stream with nothing pending
    assert closed_with(quic) == H3ErrorCode.QPACK_DECODER_STREAM_ERROR


def test_datagram_for_a_plain_get_aborts_that_request() -> None:
    conn, quic = server_with_raw_client(H3Config(enable_datagrams=True))
    feed(conn, 0, qpack(GET))
    events = conn.handle_event(QuicDatagram(b"\x00payload"))
    assert events == [H3StreamReset(0, H3ErrorCode.H3_DATAGRAM_ERROR, False)]  # RFC 9297 §2
    assert quic.closed is None
    events = conn.handle_event(QuicDatagram(b"\x40"))  # truncated quarter stream id
    assert closed_with(quic) == H3ErrorCode.H3_DATAGRAM_ERROR


def test_datagram_without_h3_datagram_setting_is_datagram_error() -> None:
    conn, quic = server_with_raw_client()
    conn.handle_event(QuicDatagram(b"\x00x"))
    assert closed_with(quic) == H3ErrorCode.H3_DATAGRAM_ERROR


# -- fuzzing the whole receive path ----------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([0, 2, 4, 6, 10, 1, 3]), st.binary(max_size=60), st.booleans()),
        max_size=8,
    ),
    st.booleans(),
)
def test_any_bytes_on_any_stream_never_raise(chunks: list[tuple[int, bytes, bool]], client: bool) -> None:
    if client:
        conn, quic = client_with_raw_server(H3Config(enable_datagrams=True))
        conn.get_next_available_stream_id()
    else:
        conn, quic = server_with_raw_client(H3Config(enable_datagrams=True, enable_connect_protocol=True))
    for stream_id, data, fin in chunks:
        conn.handle_event(StreamDataReceived(stream_id, data, fin))
    if quic.closed is not None:
        assert conn.closed



def test_request_streams_may_arrive_out_of_order() -> None:
    conn, quic = server_with_raw_client()
    assert feed(conn, 8, qpack(GET, 8), fin=True) == [HeadersReceived(8, GET, True)]
    assert feed(conn, 0, qpack(GET, 0), fin=True) == [HeadersReceived(0, GET, True)]
    assert quic.closed is None


def test_data_in_flight_after_our_abort_is_dropped() -> None:
    conn, quic = server_with_raw_client()
    feed(conn, 0, qpack([*GET, (b"Bad", b"x")]))
    assert (0, H3ErrorCode.H3_MESSAGE_ERROR) in quic.stop_sendings
    assert feed(conn, 0, encode_frame(DataFrame(b"late"))) == []
    conn.handle_event(StreamReset(0, H3ErrorCode.H3_MESSAGE_ERROR))
    assert quic.closed is None


def test_field_section_above_our_advertised_limit_is_refused() -> None:
    conn, quic = server_with_raw_client(H3Config(max_field_section_size=200))
    big = [*GET, (b"x-big", b"v" * 200)]
    events = feed(conn, 0, qpack(big), fin=True)
    assert events == [H3StreamReset(0, H3ErrorCode.H3_EXCESSIVE_LOAD, False)]
    assert quic.closed is None
    assert feed(conn, 4, qpack(GET, 4), fin=True) == [HeadersReceived(4, GET, True)]


def test_peer_field_section_limit_is_respected_when_sending() -> None:
    pair = H3Pair(server_config=H3Config(max_field_section_size=200))
    pair.pump()
    sid = pair.client.get_next_available_stream_id()
    with pytest.raises(H3UsageError):
        pair.client.send_headers(sid, [*GET, (b"x-big", b"v" * 200)])
