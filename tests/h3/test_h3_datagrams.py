"""HTTP Datagrams (RFC 9297), the Capsule Protocol on a stream, and extended CONNECT (RFC 9220)."""

from __future__ import annotations

import pytest
from h3_shim import H3Pair

from tquic.h3.capsules import Capsule, CapsuleParser, encode_capsule, encode_datagram_capsule
from tquic.h3.errors import H3UsageError
from tquic.h3.events import DatagramReceived, DataReceived, H3Event, HeadersReceived
from tquic.h3.settings import H3Config

MASQUE = [
    (b":method", b"CONNECT"),
    (b":protocol", b"connect-udp"),
    (b":scheme", b"https"),
    (b":authority", b"proxy.example"),
    (b":path", b"/.well-known/masque/udp/192.0.2.6/443/"),
    (b"capsule-protocol", b"?1"),
]
BOTH = H3Config(enable_datagrams=True, enable_connect_protocol=True)


def _open_tunnel(pair: H3Pair) -> int:
    pair.pump()
    sid = pair.client.get_next_available_stream_id()
    pair.client.send_headers(sid, MASQUE)
    _, server_events = pair.pump()
    (request,) = [e for e in server_events if isinstance(e, HeadersReceived)]
    assert request.headers == MASQUE and not request.stream_ended
    pair.server.send_headers(sid, [(b":status", b"200"), (b"capsule-protocol", b"?1")])
    client_events, _ = pair.pump()
    assert [e.headers for e in client_events if isinstance(e, HeadersReceived)] == [
        [(b":status", b"200"), (b"capsule-protocol", b"?1")]
    ]
    return sid


def test_extended_connect_then_datagrams_both_ways() -> None:
    pair = H3Pair(BOTH, BOTH)
    sid = _open_tunnel(pair)
    assert pair.client.datagrams_enabled() and pair.server.datagrams_enabled()
    pair.client.send_datagram(sid, b"ping")
    pair.server.send_datagram(sid, b"")
    client_events, server_events = pair.pump()
    assert server_events == [DatagramReceived(sid, b"ping")]
    assert client_events == [DatagramReceived(sid, b"")]
    # RFC 9297 §2.1: Quarter Stream ID then payload.
    assert pair.cq.datagrams[-1] == bytes([sid // 4]) + b"ping"


def test_datagram_on_the_fifth_request_stream_uses_quarter_stream_id() -> None:
    pair = H3Pair(BOTH, BOTH)
    pair.pump()
    for _ in range(4):
        pair.client.get_next_available_stream_id()
    sid = _open_tunnel(pair)
    assert sid == 16
    pair.client.send_datagram(sid, b"x")
    assert pair.cq.datagrams[-1] == b"\x04x"
    _, server_events = pair.pump()
    assert server_events == [DatagramReceived(16, b"x")]


def test_capsules_flow_as_tunnel_data() -> None:
    pair = H3Pair(BOTH, BOTH, chunk=5)
    sid = _open_tunnel(pair)
    wire = encode_datagram_capsule(b"over the stream") + encode_capsule(0x2A, b"ignored")
    pair.client.send_data(sid, wire)
    _, server_events = pair.pump()
    parser = CapsuleParser(handled_types=frozenset({0}))
    capsules: list[Capsule] = []
    for event in server_events:
        assert isinstance(event, DataReceived)
        capsules.extend(parser.feed(event.data))
    assert capsules == [Capsule(0, b"over the stream")]


def test_datagrams_need_both_settings() -> None:
    pair = H3Pair(BOTH, H3Config(enable_connect_protocol=True))  # server does not send H3_DATAGRAM
    sid = _open_tunnel(pair)
    assert not pair.client.datagrams_enabled()
    with pytest.raises(H3UsageError):
        pair.client.send_datagram(sid, b"x")
    assert pair.cq.datagrams == []


def test_datagrams_need_the_quic_transport_parameter() -> None:
    pair = H3Pair(BOTH, BOTH)
    pair.cq.peer_max_datagram_frame_size = None  # server did not send max_datagram_frame_size
    sid = _open_tunnel(pair)
    with pytest.raises(H3UsageError):
        pair.client.send_datagram(sid, b"x")


def test_extended_connect_needs_the_peer_setting() -> None:
    pair = H3Pair(BOTH, H3Config())  # server did not enable CONNECT protocol
    pair.pump()
    sid = pair.client.get_next_available_stream_id()
    with pytest.raises(H3UsageError):
        pair.client.send_headers(sid, MASQUE)


def test_datagram_after_stream_closed_is_dropped() -> None:
    pair = H3Pair(BOTH, BOTH)
    sid = _open_tunnel(pair)
    pair.client.send_data(sid, b"", end_stream=True)
    pair.pump()
    with pytest.raises(H3UsageError):
        pair.client.send_datagram(sid, b"late")  # our send side is closed
    # A datagram for a stream the server has not seen yet is dropped silently.
    pair.cq.send_datagram(b"\x3f" + b"x")
    events: list[H3Event] = pair.pump()[1]
    assert events == [] and not pair.server.closed


def test_plain_connect_tunnel_carries_raw_data() -> None:
    pair = H3Pair()
    pair.pump()
    sid = pair.client.get_next_available_stream_id()
    pair.client.send_headers(sid, [(b":method", b"CONNECT"), (b":authority", b"db.example:5432")])
    pair.pump()
    pair.server.send_headers(sid, [(b":status", b"200")])
    pair.server.send_data(sid, b"server bytes")
    pair.client.send_data(sid, b"client bytes", end_stream=True)
    client_events, server_events = pair.pump()
    assert b"".join(e.data for e in server_events if isinstance(e, DataReceived)) == b"client bytes"
    assert b"".join(e.data for e in client_events if isinstance(e, DataReceived)) == b"server bytes"
