"""End-to-end: two engines in memory, explicit time; handshake and stream transfer.

The TLS engine here is tests/core/engine_fake_tls.py (a stand-in with the real
interface) so these tests exercise the QUIC engine alone.
"""

from __future__ import annotations

import hashlib

from engine_fake_tls import fake_tls_factory
from engine_pairs import make_pair

from tquic.core.events import HandshakeCompleted, StreamDataReceived
from tquic.testing.engines import EnginePair
from tquic.wire.epochs import Epoch


def _handshake(**kwargs: object) -> EnginePair:
    loop = make_pair(tls_factory=fake_tls_factory, **kwargs)  # type: ignore[arg-type]
    loop.run_until(lambda: loop.client.handshake_complete
                   and loop.server.handshake_complete, timeout=5)
    return loop


def _received(events: list[object], stream_id: int) -> tuple[bytes, bool]:
    data = b"".join(e.data for e in events
                    if isinstance(e, StreamDataReceived) and e.stream_id == stream_id)
    fin = any(isinstance(e, StreamDataReceived) and e.stream_id == stream_id and e.end_stream
              for e in events)
    return data, fin


def test_handshake_completes_in_about_one_and_a_half_rtt() -> None:
    loop = _handshake()
    assert loop.now < 0.05  # 10 ms one-way delay: 1.5 RTT = 30 ms
    assert any(isinstance(e, HandshakeCompleted) for e in loop.client_events)
    assert any(isinstance(e, HandshakeCompleted) for e in loop.server_events)


def test_handshake_is_confirmed_and_handshake_keys_are_discarded() -> None:
    loop = _handshake()
    loop.run_until(lambda: loop.client.handshake_confirmed, timeout=5)
    assert loop.client.handshake_confirmed and loop.server.handshake_confirmed
    for conn in (loop.client, loop.server):
        state = conn.crypto_state
        assert state.send_keys == state.recv_keys == {Epoch.ONE_RTT}  # Initial+Handshake gone
        assert state.discarded == {Epoch.INITIAL, Epoch.HANDSHAKE}  # (RFC 9001 §4.9)


def test_one_stream_echo_both_directions() -> None:
    loop = _handshake()
    sid = loop.client.open_stream()
    loop.client.send_stream_data(sid, b"hello", end_stream=True)
    loop.run_until(lambda: _received(loop.server_events, sid)[1], timeout=30)
    assert _received(loop.server_events, sid) == (b"hello", True)
    loop.server.send_stream_data(sid, b"world", end_stream=True)
    loop.run_until(lambda: _received(loop.client_events, sid)[1], timeout=30)
    assert _received(loop.client_events, sid) == (b"world", True)


def test_bulk_two_megabytes_arrive_byte_identical() -> None:
    loop = _handshake()
    payload = hashlib.sha256(b"seed").digest() * (2 * 1024 * 1024 // 32)
    sid = loop.client.open_stream()
    loop.client.send_stream_data(sid, payload, end_stream=True)
    loop.run_until(lambda: _received(loop.server_events, sid)[1], timeout=30)
    data, _ = _received(loop.server_events, sid)
    assert hashlib.sha256(data).digest() == hashlib.sha256(payload).digest()


def test_lossy_loop_dropping_every_seventh_datagram_delivers_identical_data() -> None:
    loop = _handshake(drop=lambda i, d: i % 7 == 0)
    payload = bytes(range(256)) * 2048  # 512 KiB
    sid = loop.client.open_stream()
    loop.client.send_stream_data(sid, payload, end_stream=True)
    loop.run_until(lambda: _received(loop.server_events, sid)[1], timeout=120)
    assert _received(loop.server_events, sid)[0] == payload


def test_concurrent_streams_are_delivered_independently() -> None:
    loop = _handshake()
    sent: dict[int, bytes] = {}
    for i in range(10):
        bidi = i % 2 == 0
        sid = loop.client.open_stream(bidirectional=bidi)
        sent[sid] = bytes([i]) * (10_000 + 997 * i)
        loop.client.send_stream_data(sid, sent[sid], end_stream=True)
    loop.run_until(lambda: all(_received(loop.server_events, s)[1] for s in sent), timeout=30)
    for sid, data in sent.items():
        assert _received(loop.server_events, sid)[0] == data


def test_flow_control_window_limits_a_fast_sender_and_autotunes() -> None:
    from engine_certs import server_config

    from tquic.core.config import QuicConfiguration

    client = QuicConfiguration(is_client=True, verify_peer=False,
                               initial_max_data=64 * 1024, max_data=4 << 20,
                               initial_max_stream_data=32 * 1024, max_stream_data=2 << 20)
    loop = make_pair(client_config=client, server_config=server_config(
        initial_max_data=64 * 1024, max_data=4 << 20, initial_max_stream_data=32 * 1024,
        max_stream_data=2 << 20), tls_factory=fake_tls_factory)
    loop.run_until(lambda: loop.client.handshake_complete and loop.server.handshake_complete, timeout=30)
    sid = loop.client.open_stream()
    payload = b"x" * (1 << 20)
    loop.client.send_stream_data(sid, payload, end_stream=True)
    loop.run_until(lambda: _received(loop.server_events, sid)[1], timeout=30)
    assert _received(loop.server_events, sid)[0] == payload
    # the receiver grew its window beyond the initial 32 KiB (auto-tuning)
    assert loop.server.receive_window > 64 * 1024
