"""HTTP/3 over two real tquic engines (real TLS 1.3, real packets) in memory."""

from __future__ import annotations

import pytest
from h3_engine import H3Pair

from tquic.h3.errors import H3ErrorCode, H3UsageError
from tquic.h3.events import (
    ConnectionTerminated,
    DatagramReceived,
    DataReceived,
    GoawayReceived,
    H3Event,
    HeadersReceived,
    SettingsReceived,
    StreamReset,
)
from tquic.h3.settings import H3Config

GET = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"localhost"), (b":path", b"/")]
TUNNEL = H3Config(enable_datagrams=True, enable_connect_protocol=True)


def _done(events: list[H3Event], sid: int) -> bool:
    return any(
        isinstance(e, HeadersReceived | DataReceived) and e.stream_id == sid and e.stream_ended
        for e in events
    )


def _body(events: list[H3Event], sid: int) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, DataReceived) and e.stream_id == sid)


def _heads(events: list[H3Event], sid: int) -> list[list[tuple[bytes, bytes]]]:
    return [e.headers for e in events if isinstance(e, HeadersReceived) and e.stream_id == sid]


def test_settings_exchange_over_real_engines() -> None:
    pair = H3Pair()
    client, server = pair.handshake()
    assert any(isinstance(e, SettingsReceived) for e in pair.client_events)
    assert not client.closed and not server.closed


def test_request_response_with_body_and_trailers() -> None:
    pair = H3Pair()
    client, server = pair.handshake()
    sid = client.get_next_available_stream_id()
    post = [(b":method", b"POST"), *GET[1:3], (b":path", b"/upload"), (b"content-length", b"200000")]
    body = bytes(range(250)) * 800
    client.send_headers(sid, post)
    client.send_data(sid, body, end_stream=True)
    pair.run_until(lambda: _done(pair.server_events, sid))
    assert _heads(pair.server_events, sid) == [post]
    assert _body(pair.server_events, sid) == body

    server.send_headers(sid, [(b":status", b"200"), (b"content-type", b"text/plain")])
    server.send_data(sid, b"stored")
    server.send_trailers(sid, [(b"x-digest", b"ok")])
    pair.run_until(lambda: _done(pair.client_events, sid))
    assert _heads(pair.client_events, sid) == [
        [(b":status", b"200"), (b"content-type", b"text/plain")],
        [(b"x-digest", b"ok")],
    ]
    assert _body(pair.client_events, sid) == b"stored"


def test_404_and_head_over_real_engines() -> None:
    pair = H3Pair()
    client, server = pair.handshake()
    missing = client.get_next_available_stream_id()
    client.send_headers(missing, [*GET[:3], (b":path", b"/missing")], end_stream=True)
    head = client.get_next_available_stream_id()
    client.send_headers(head, [(b":method", b"HEAD"), *GET[1:]], end_stream=True)
    pair.run_until(lambda: _done(pair.server_events, missing) and _done(pair.server_events, head))
    server.send_headers(missing, [(b":status", b"404")])
    server.send_data(missing, b"no such page", end_stream=True)
    server.send_headers(head, [(b":status", b"200"), (b"content-length", b"5000")], end_stream=True)
    pair.run_until(lambda: _done(pair.client_events, missing) and _done(pair.client_events, head))
    assert _heads(pair.client_events, missing) == [[(b":status", b"404")]]
    assert _body(pair.client_events, missing) == b"no such page"
    assert _heads(pair.client_events, head) == [[(b":status", b"200"), (b"content-length", b"5000")]]
    assert not any(isinstance(e, StreamReset) for e in pair.client_events)


def test_transfer_survives_packet_loss() -> None:
    pair = H3Pair(drop=lambda n: n > 6 and n % 7 == 0)  # every 7th datagram after the handshake
    client, server = pair.handshake()
    sid = client.get_next_available_stream_id()
    client.send_headers(sid, GET, end_stream=True)
    pair.run_until(lambda: _done(pair.server_events, sid))
    payload = b"z" * 300_000
    server.send_headers(sid, [(b":status", b"200")])
    server.send_data(sid, payload, end_stream=True)
    pair.run_until(lambda: _done(pair.client_events, sid), timeout=60)
    assert _body(pair.client_events, sid) == payload


def test_goaway_over_real_engines() -> None:
    pair = H3Pair()
    client, server = pair.handshake()
    sid = client.get_next_available_stream_id()
    client.send_headers(sid, GET, end_stream=True)
    pair.run_until(lambda: _done(pair.server_events, sid))
    server.send_goaway()
    pair.run_until(lambda: any(isinstance(e, GoawayReceived) for e in pair.client_events))
    with pytest.raises(H3UsageError):
        client.get_next_available_stream_id()
    server.send_headers(sid, [(b":status", b"204")], end_stream=True)
    pair.run_until(lambda: _done(pair.client_events, sid))


def test_extended_connect_and_datagrams_over_real_engines() -> None:
    pair = H3Pair(TUNNEL, TUNNEL)
    client, server = pair.handshake()
    assert client.datagrams_enabled() and server.datagrams_enabled()
    sid = client.get_next_available_stream_id()
    request = [
        (b":method", b"CONNECT"), (b":protocol", b"connect-ip"), (b":scheme", b"https"),
        (b":authority", b"localhost"), (b":path", b"/.well-known/masque/ip/*/*/"),
        (b"capsule-protocol", b"?1"),
    ]
    client.send_headers(sid, request)
    pair.run_until(lambda: _heads(pair.server_events, sid) == [request])
    server.send_headers(sid, [(b":status", b"200"), (b"capsule-protocol", b"?1")])
    pair.run_until(lambda: len(_heads(pair.client_events, sid)) == 1)
    packet = b"\x45\x00" + b"\x00" * 38  # an IPv4 header's worth
    client.send_datagram(sid, b"\x00" + packet)  # Context ID 0 (RFC 9484 §6)
    pair.run_until(lambda: any(isinstance(e, DatagramReceived) for e in pair.server_events))
    assert DatagramReceived(sid, b"\x00" + packet) in pair.server_events
    server.send_datagram(sid, b"\x00pong")
    pair.run_until(lambda: any(isinstance(e, DatagramReceived) for e in pair.client_events))
    assert DatagramReceived(sid, b"\x00pong") in pair.client_events


def test_datagrams_refused_without_the_quic_transport_parameter() -> None:
    pair = H3Pair(TUNNEL, TUNNEL, datagrams=False)
    client, _ = pair.handshake()
    assert not client.datagrams_enabled()


def test_h3_connection_error_closes_the_real_connection_with_its_code() -> None:
    pair = H3Pair()
    client, server = pair.handshake()
    sid = client.get_next_available_stream_id()
    # Hostile client: DATA before HEADERS on a request stream (RFC 9114 §4.1).
    pair.client_quic.send_stream_data(sid, b"\x00\x01x")
    pair.run_until(lambda: client.closed)
    assert server.closed
    closes = [e for e in pair.client_events if isinstance(e, ConnectionTerminated)]
    assert closes and closes[0].error_code == H3ErrorCode.H3_FRAME_UNEXPECTED


def test_tunnel_ended_with_a_bare_fin_reaches_the_peer() -> None:
    pair = H3Pair(TUNNEL, TUNNEL)
    client, server = pair.handshake()
    sid = client.get_next_available_stream_id()
    client.send_headers(sid, [(b":method", b"CONNECT"), (b":authority", b"localhost:22")])
    pair.run_until(lambda: bool(_heads(pair.server_events, sid)))
    server.send_headers(sid, [(b":status", b"200")])
    client.send_data(sid, b"ssh bytes")
    pair.run_until(lambda: _body(pair.server_events, sid) == b"ssh bytes")
    client.send_data(sid, b"", end_stream=True)  # RFC 9114 §4.4: the client ends its direction
    pair.run_until(lambda: _done(pair.server_events, sid), timeout=2)
