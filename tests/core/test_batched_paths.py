"""The per-batch shortcuts of the data path keep the engine's behaviour: stream data
delivered per batch (in order with other events), stream trains (the same packets as
the generic builder), acknowledgments of packet runs, the lazily computed idle
deadline."""

from __future__ import annotations

from typing import Any

import pytest
from engine_pairs import SERVER_PATH, handshake_pair, inject

from tquic.core.events import StreamDataReceived, StreamReset
from tquic.core.records import StreamRecord
from tquic.core.send_loop import SendLoop
from tquic.paths.sent_packets import SpaceId
from tquic.testing.engines import EnginePair
from tquic.wire.buffer import encode_varint
from tquic.wire.frames import AckFrame, encode_frames


def _events(conn: Any) -> list[Any]:
    out = []
    while (event := conn.next_event()) is not None:
        out.append(event)
    return out


def _client_stream_datagrams(loop: EnginePair, data: bytes) -> tuple[int, list[bytes]]:
    sid = loop.client.open_stream()
    loop.client.send_stream_data(sid, data)
    return sid, [d for d, _ in loop.client.datagrams_to_send(loop.now)]


def test_stream_data_of_several_packets_is_one_event_when_events_are_asked_for() -> None:
    loop = handshake_pair()
    data = bytes(range(256)) * 20  # 5120 bytes: four or five packets
    sid, datagrams = _client_stream_datagrams(loop, data)
    assert len(datagrams) >= 4
    for datagram in datagrams:
        loop.server.receive_datagram(datagram, SERVER_PATH, loop.now)
    received = [e for e in _events(loop.server) if isinstance(e, StreamDataReceived)]
    assert [(e.stream_id, e.data, e.end_stream) for e in received] == [(sid, data, False)]


def test_stream_data_received_before_a_reset_comes_before_the_reset_event() -> None:
    loop = handshake_pair()
    sid = 0
    # STREAM (offset 0, with Length) in one packet, RESET_STREAM in the next.
    inject(loop, b"\x0a" + encode_varint(sid) + encode_varint(5) + b"hello")
    inject(loop, b"\x04" + encode_varint(sid) + encode_varint(7) + encode_varint(5))
    events = [e for e in _events(loop.server) if isinstance(e, StreamDataReceived | StreamReset)]
    assert isinstance(events[0], StreamDataReceived) and events[0].data == b"hello"
    assert isinstance(events[1], StreamReset) and events[1].error_code == 7


def test_stop_sending_still_delivers_what_arrived_before_the_call() -> None:
    loop = handshake_pair()
    sid, datagrams = _client_stream_datagrams(loop, b"early data")
    for datagram in datagrams:
        loop.server.receive_datagram(datagram, SERVER_PATH, loop.now)
    loop.server.stop_sending(sid, 3)
    received = [e for e in _events(loop.server) if isinstance(e, StreamDataReceived)]
    assert b"".join(e.data for e in received) == b"early data"


def test_stream_data_is_delivered_in_batches_of_bounded_size() -> None:
    loop = handshake_pair()
    chunk = bytes(range(250)) * 4
    for i in range(150):  # 150 KB in 150 packets, no event asked for in between
        offset = encode_varint(i * len(chunk))
        inject(loop, b"\x0e" + encode_varint(0) + offset + encode_varint(len(chunk)) + chunk)
    received = [e for e in _events(loop.server) if isinstance(e, StreamDataReceived)]
    assert b"".join(e.data for e in received) == chunk * 150
    assert 3 <= len(received) < 150  # batches of at most 64 KB, not one event per packet


def _datagram_sizes(monkeypatch: pytest.MonkeyPatch | None, size: int) -> tuple[list[int], bytes]:
    if monkeypatch is not None:
        monkeypatch.setattr(SendLoop, "_train_ready", lambda self, path: False)
    loop = handshake_pair()
    data = bytes(i % 251 for i in range(size))
    _, datagrams = _client_stream_datagrams(loop, data)
    for datagram in datagrams:
        loop.server.receive_datagram(datagram, SERVER_PATH, loop.now)
    got = b"".join(e.data for e in _events(loop.server) if isinstance(e, StreamDataReceived))
    return [len(d) for d in datagrams], got


def test_stream_trains_build_the_packets_the_generic_builder_builds(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with_trains, got_trains = _datagram_sizes(None, 40_000)
    without, got_generic = _datagram_sizes(monkeypatch, 40_000)
    assert len(with_trains) >= 5  # the initial window's worth
    assert with_trains == without
    assert got_trains == got_generic
    assert got_trains == bytes(i % 251 for i in range(len(got_trains)))


def test_an_ack_of_a_run_of_packets_acknowledges_each_packets_stream_range() -> None:
    loop = handshake_pair()
    sid, _ = _client_stream_datagrams(loop, bytes(12_000))
    path = loop.client.paths.primary
    sent = path.recovery.in_flight_packets(SpaceId.APPLICATION)
    stream_packets = [p for p in sent
                      if any(isinstance(r, StreamRecord) and r.stream_id == sid for r in p.frames)]
    assert len(stream_packets) >= 8
    # Every packet but the one before last (not lost: one later packet is acknowledged,
    # at once): the run before the gap is freed, the rest is held (RFC 9000 §19.3).
    pns = [p.packet_number for p in stream_packets]
    gap = pns[-2]
    inject(loop, encode_frames((AckFrame(((pns[-1], pns[-1]), (pns[0], gap - 1)), 0),)),
           to_server=False)
    gap_start = next(r.offset for r in stream_packets[-2].frames if isinstance(r, StreamRecord))
    progress = loop.client.send_progress(sid)
    assert progress is not None and progress.acked_prefix == gap_start and not progress.lost
    inject(loop, encode_frames((AckFrame(((pns[0], pns[-1]),), 0),)), to_server=False)
    progress = loop.client.send_progress(sid)
    assert progress is not None
    assert progress.acked_prefix == progress.sent  # all that the window let out


def test_the_idle_deadline_counts_from_the_last_packet_with_at_least_three_ptos() -> None:
    loop = handshake_pair()
    server = loop.server
    loop.now += 1.0
    inject(loop, b"\x01")  # PING
    expected = loop.now + max(server.idle_timeout, 3 * server.pto)
    assert server.idle_deadline == pytest.approx(expected)
    assert server.next_timeout() is not None
