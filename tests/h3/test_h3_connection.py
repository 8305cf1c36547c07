"""H3Connection request/response exchanges, SETTINGS, GREASE and GOAWAY (RFC 9114)."""

from __future__ import annotations

import pytest
from h3_shim import H3Pair

from tquic.h3.errors import H3ErrorCode, H3UsageError
from tquic.h3.events import (
    DataReceived,
    GoawayReceived,
    H3Event,
    HeadersReceived,
    SettingsReceived,
    StreamReset,
)
from tquic.h3.frames import FrameParser, SettingId, SettingsFrame, UnknownFrame
from tquic.h3.settings import H3Config

GET = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"example.com"), (b":path", b"/")]


def _body(events: list[H3Event], stream_id: int) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, DataReceived) and e.stream_id == stream_id)


def _headers(events: list[H3Event], stream_id: int) -> list[HeadersReceived]:
    return [e for e in events if isinstance(e, HeadersReceived) and e.stream_id == stream_id]


def _ended(events: list[H3Event], stream_id: int) -> bool:
    tail = [e for e in events if isinstance(e, HeadersReceived | DataReceived) and e.stream_id == stream_id]
    return bool(tail) and tail[-1].stream_ended


def test_settings_are_exchanged_first_with_grease_and_qpack_values() -> None:
    pair = H3Pair(server_config=H3Config(enable_connect_protocol=True, enable_datagrams=True))
    client_events, server_events = pair.pump()
    (settings,) = [e for e in client_events if isinstance(e, SettingsReceived)]
    values = dict(settings.settings)
    assert values[SettingId.QPACK_MAX_TABLE_CAPACITY] == 4096
    assert values[SettingId.QPACK_BLOCKED_STREAMS] == 16
    assert values[SettingId.ENABLE_CONNECT_PROTOCOL] == 1
    assert values[SettingId.H3_DATAGRAM] == 1
    assert any((k - 0x21) % 0x1F == 0 and k >= 0x21 for k in values), "a GREASE setting is sent"
    assert pair.client.peer_settings.enable_connect_protocol
    assert any(isinstance(e, SettingsReceived) for e in server_events)
    # The server's control stream (3) starts with type 0x00 then SETTINGS, then a GREASE frame.
    control = bytes(pair.sq.sent[3])
    assert control[0] == 0x00
    frames = FrameParser().feed(control[1:])
    assert isinstance(frames[0], SettingsFrame) and isinstance(frames[1], UnknownFrame)
    # QPACK encoder (0x02) and decoder (0x03) streams, and a reserved-type stream with FIN.
    assert pair.sq.sent[7][:1] == b"\x02" and pair.sq.sent[11][:1] == b"\x03"
    assert 15 in pair.sq.fin and not pair.client.closed and not pair.server.closed


def test_get_round_trip_with_body_and_trailers_over_tiny_chunks() -> None:
    pair = H3Pair(chunk=3)  # every stream write is cut into 3-byte pieces
    pair.pump()
    sid = pair.client.get_next_available_stream_id()
    pair.client.send_headers(sid, [*GET, (b"user-agent", b"tquic")], end_stream=True)
    _, server_events = pair.pump()
    (request,) = _headers(server_events, sid)
    assert request.headers == [*GET, (b"user-agent", b"tquic")] and request.stream_ended

    pair.server.send_headers(sid, [(b":status", b"200"), (b"content-length", b"11")])
    pair.server.send_data(sid, b"hello ")
    pair.server.send_data(sid, b"world")
    pair.server.send_trailers(sid, [(b"x-checksum", b"abc")])
    client_events, _ = pair.pump()
    response, trailers = _headers(client_events, sid)
    assert response.headers == [(b":status", b"200"), (b"content-length", b"11")]
    assert not response.stream_ended
    assert _body(client_events, sid) == b"hello world"
    assert trailers.headers == [(b"x-checksum", b"abc")] and trailers.stream_ended
    assert not pair.client.closed and not pair.server.closed


def test_post_body_reaches_server_and_404_comes_back() -> None:
    pair = H3Pair()
    pair.pump()
    sid = pair.client.get_next_available_stream_id()
    post = [(b":method", b"POST"), (b":scheme", b"https"), (b":authority", b"h"), (b":path", b"/nope")]
    pair.client.send_headers(sid, post)
    pair.client.send_data(sid, b"x" * 100_000, end_stream=True)
    _, server_events = pair.pump()
    assert _body(server_events, sid) == b"x" * 100_000 and _ended(server_events, sid)
    pair.server.send_headers(sid, [(b":status", b"404")])
    pair.server.send_data(sid, b"not found", end_stream=True)
    client_events, _ = pair.pump()
    assert _headers(client_events, sid)[0].headers == [(b":status", b"404")]
    assert _body(client_events, sid) == b"not found" and _ended(client_events, sid)


def test_head_response_with_content_length_and_no_body_is_accepted() -> None:
    pair = H3Pair()
    pair.pump()
    sid = pair.client.get_next_available_stream_id()
    pair.client.send_headers(sid, [(b":method", b"HEAD"), *GET[1:]], end_stream=True)
    pair.pump()
    # RFC 9114 §4.1.2: a response that never has content may carry a non-zero Content-Length.
    pair.server.send_headers(sid, [(b":status", b"200"), (b"content-length", b"1234")], end_stream=True)
    client_events, _ = pair.pump()
    assert _headers(client_events, sid)[0].stream_ended
    assert not any(isinstance(e, StreamReset) for e in client_events)


def test_interim_response_precedes_final_response() -> None:
    pair = H3Pair()
    pair.pump()
    sid = pair.client.get_next_available_stream_id()
    pair.client.send_headers(sid, GET, end_stream=True)
    pair.pump()
    pair.server.send_headers(sid, [(b":status", b"103"), (b"link", b"</s.css>")])
    pair.server.send_headers(sid, [(b":status", b"200")])
    pair.server.send_data(sid, b"ok", end_stream=True)
    client_events, _ = pair.pump()
    assert [h.headers[0] for h in _headers(client_events, sid)] == [(b":status", b"103"), (b":status", b"200")]
    assert _body(client_events, sid) == b"ok"


def test_qpack_dynamic_table_is_used_and_blocked_streams_resume() -> None:
    pair = H3Pair()
    pair.pump()  # settings exchanged: both encoders may now use the dynamic table
    big = [(b"x-custom-header", b"v" * 200)]
    ids = []
    for _ in range(3):
        sid = pair.client.get_next_available_stream_id()
        pair.client.send_headers(sid, [*GET, *big], end_stream=True)
        ids.append(sid)
    # Deliver request streams BEFORE the encoder stream: the decoder blocks, then resumes.
    encoder_id = 6
    held = [e for e in pair.sq.events if getattr(e, "stream_id", None) == encoder_id]
    others = [e for e in pair.sq.events if getattr(e, "stream_id", None) != encoder_id]
    pair.sq.events.clear()
    early: list[H3Event] = []
    for event in others:
        early.extend(pair.server.handle_event(event))
    assert len([e for e in early if isinstance(e, HeadersReceived)]) < 3, "some stream is blocked"
    pair.sq.events.extend(held)
    _, late = pair.pump()
    server_events = early + late
    assert [h.headers for h in server_events if isinstance(h, HeadersReceived)] == [[*GET, *big]] * 3
    assert all(_ended(server_events, sid) for sid in ids)
    assert len(pair.cq.sent[encoder_id]) > 200, "the header went into the dynamic table"
    assert not pair.server.closed


def test_goaway_from_server_stops_new_requests_and_rejects_later_ones() -> None:
    pair = H3Pair()
    pair.pump()
    first = pair.client.get_next_available_stream_id()
    pair.client.send_headers(first, GET, end_stream=True)
    pair.pump()
    late = pair.client.get_next_available_stream_id()  # opened before GOAWAY arrives
    assert pair.server.send_goaway() == first + 4
    pair.client.send_headers(late, GET, end_stream=True)
    client_events, _ = pair.pump()
    assert GoawayReceived(first + 4) in client_events
    # The server rejected the request at/above the GOAWAY id (§5.2, H3_REQUEST_REJECTED).
    assert (late, H3ErrorCode.H3_REQUEST_REJECTED) in pair.sq.resets
    assert StreamReset(late, H3ErrorCode.H3_REQUEST_REJECTED, True) in client_events
    with pytest.raises(H3UsageError):
        pair.client.get_next_available_stream_id()
    # The request below the GOAWAY id still completes.
    pair.server.send_headers(first, [(b":status", b"200")], end_stream=True)
    client_events, _ = pair.pump()
    assert _headers(client_events, first)[0].stream_ended
    with pytest.raises(H3UsageError):
        pair.server.send_goaway(first + 8)  # GOAWAY ids never increase


def test_client_goaway_carries_a_push_id() -> None:
    pair = H3Pair()
    pair.pump()
    assert pair.client.send_goaway() == 0
    _, server_events = pair.pump()
    assert GoawayReceived(0) in server_events and not pair.server.closed


def test_sending_in_the_wrong_order_is_a_usage_error() -> None:
    pair = H3Pair()
    pair.pump()
    sid = pair.client.get_next_available_stream_id()
    with pytest.raises(H3UsageError):
        pair.client.send_data(sid, b"early")  # DATA before HEADERS
    with pytest.raises(H3UsageError):
        pair.client.send_headers(sid, [(b":method", b"GET")])  # missing pseudo-headers
    with pytest.raises(H3UsageError):
        pair.client.send_headers(sid, [*GET, (b"Upper", b"x")])
    with pytest.raises(H3UsageError):
        pair.client.send_headers(sid, [*GET, (b"connection", b"close")])
    pair.client.send_headers(sid, GET, end_stream=True)
    with pytest.raises(H3UsageError):
        pair.client.send_data(sid, b"late")
    with pytest.raises(H3UsageError):
        pair.server.send_headers(sid + 4, [(b":status", b"200")])  # no such request


def test_cancelled_request_resets_both_directions() -> None:
    pair = H3Pair()
    pair.pump()
    sid = pair.client.get_next_available_stream_id()
    pair.client.send_headers(sid, GET)
    pair.pump()
    pair.client.cancel_stream(sid)
    _, server_events = pair.pump()
    assert StreamReset(sid, H3ErrorCode.H3_REQUEST_CANCELLED, True) in server_events
    assert (sid, H3ErrorCode.H3_REQUEST_CANCELLED) in pair.cq.stop_sendings


def test_server_goaway_before_any_request_names_stream_zero() -> None:
    pair = H3Pair()
    pair.pump()
    assert pair.server.send_goaway() == 0
    client_events, _ = pair.pump()
    assert GoawayReceived(0) in client_events
    with pytest.raises(H3UsageError):
        pair.client.get_next_available_stream_id()
