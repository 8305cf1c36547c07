"""Hostile input: every protocol violation is answered with the RFC's CONNECTION_CLOSE
code, and no input makes receive_datagram raise or hit INTERNAL_ERROR."""

from __future__ import annotations

import pytest
from engine_certs import server_config
from engine_pairs import SERVER_PATH, handshake_pair, inject, terminated
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tquic.wire.buffer import encode_varint
from tquic.wire.errors import TransportErrorCode as E
from tquic.wire.frames import (
    AckFrame,
    AckFrequencyFrame,
    CryptoFrame,
    DatagramFrame,
    HandshakeDoneFrame,
    MaxStreamDataFrame,
    NewConnectionIdFrame,
    NewTokenFrame,
    PathAbandonFrame,
    ResetStreamFrame,
    RetireConnectionIdFrame,
    StreamFrame,
    encode_frames,
)


def _ncid(seq: int) -> NewConnectionIdFrame:
    return NewConnectionIdFrame(seq, 0, bytes([seq]) * 8, bytes([seq]) * 16)


# (name, payload sent by the client in a 1-RTT packet, expected error code)
CASES = [
    ("HANDSHAKE_DONE from a client", encode_frames([HandshakeDoneFrame()]), E.PROTOCOL_VIOLATION),
    ("NEW_TOKEN from a client", encode_frames([NewTokenFrame(b"t")]), E.PROTOCOL_VIOLATION),
    ("STREAM on the server's own unidirectional stream",
     encode_frames([StreamFrame(3, 0, b"x")]), E.STREAM_STATE_ERROR),
    ("STREAM on a server-initiated bidi stream never opened",
     encode_frames([StreamFrame(1, 0, b"x")]), E.STREAM_STATE_ERROR),
    ("STREAM beyond MAX_STREAMS", encode_frames([StreamFrame(4 * 500, 0, b"x")]),
     E.STREAM_LIMIT_ERROR),
    ("STREAM beyond the stream flow-control window",
     encode_frames([StreamFrame(0, 10 << 20, b"x")]), E.FLOW_CONTROL_ERROR),
    ("STREAM past the final size",
     encode_frames([StreamFrame(0, 0, b"abc", True), StreamFrame(0, 3, b"d")]),
     E.FINAL_SIZE_ERROR),
    ("RESET_STREAM below received data",
     encode_frames([StreamFrame(0, 0, b"abcdef"), ResetStreamFrame(0, 1, 2)]),
     E.FINAL_SIZE_ERROR),
    ("MAX_STREAM_DATA on a receive-only stream",
     encode_frames([MaxStreamDataFrame(2, 100)]), E.STREAM_STATE_ERROR),
    ("ACK of a packet never sent", encode_frames([AckFrame(((0, 100_000),), 0)]),
     E.PROTOCOL_VIOLATION),
    ("RETIRE_CONNECTION_ID of an unissued sequence number",
     encode_frames([RetireConnectionIdFrame(1000)]), E.PROTOCOL_VIOLATION),
    ("NEW_CONNECTION_ID beyond active_connection_id_limit",
     encode_frames([_ncid(i) for i in range(10, 15)]), E.CONNECTION_ID_LIMIT_ERROR),
    ("NEW_CONNECTION_ID reusing a sequence number for another CID",
     encode_frames([NewConnectionIdFrame(1, 0, b"\x09" * 8, b"\x01" * 16)]),
     E.PROTOCOL_VIOLATION),
    ("multipath frame without multipath", encode_frames([PathAbandonFrame(0, 0)]),
     E.PROTOCOL_VIOLATION),
    ("DATAGRAM without max_datagram_frame_size", encode_frames([DatagramFrame(b"d")]),
     E.PROTOCOL_VIOLATION),
    ("CRYPTO beyond the crypto buffer", encode_frames([CryptoFrame(1 << 20, b"x")]),
     E.CRYPTO_BUFFER_EXCEEDED),
    ("unknown frame type", encode_varint(0x21) + b"\x00" * 8, E.FRAME_ENCODING_ERROR),
    ("truncated STREAM frame", b"\x0e\x00\x05\x10ab", E.FRAME_ENCODING_ERROR),
    ("packet without frames", b"", E.PROTOCOL_VIOLATION),
]


@pytest.mark.parametrize(("name", "payload", "code"), CASES, ids=[c[0] for c in CASES])
def test_violation_closes_with_the_rfc_code(name: str, payload: bytes, code: int) -> None:
    loop = handshake_pair()
    inject(loop, payload)
    loop.collect()
    event = terminated(loop.server_events)
    assert event is not None, name
    assert event.error_code == code, (name, event)
    # the peer learns the code from CONNECTION_CLOSE
    loop.run_until(lambda: terminated(loop.client_events) is not None, timeout=5)
    peer_view = terminated(loop.client_events)
    assert peer_view.by_peer and peer_view.error_code == code


def test_stream_frame_in_an_initial_packet_is_a_protocol_violation() -> None:
    from engine_fake_tls import fake_tls_factory
    from engine_pairs import make_pair

    from tquic.crypto.protection import initial_protections
    from tquic.wire.packet import PacketType, encode_long_header

    loop = make_pair(tls_factory=fake_tls_factory)
    client = loop.client
    dcid = client.original_destination_connection_id
    keys, _ = initial_protections(client.version, dcid, True)  # RFC 9001 §5.2
    payload = encode_frames([StreamFrame(0, 0, b"x")]) + bytes(1200)
    header = encode_long_header(client.version, PacketType.INITIAL, dcid,
                                client.host_cids[0], b"", len(payload) + 16, 0, 4)
    loop.server.receive_datagram(keys.protect(header, payload, 0), SERVER_PATH, 0.0)
    loop.collect()
    event = terminated(loop.server_events)
    assert event is not None and event.error_code == E.PROTOCOL_VIOLATION


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_frames_in_a_valid_packet_never_cause_an_internal_error(payload: bytes) -> None:
    loop = handshake_pair()
    inject(loop, payload)
    loop.advance(0.2)
    for events in (loop.server_events, loop.client_events):
        event = terminated(events)
        assert event is None or event.error_code != E.INTERNAL_ERROR, event


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_and_mutated_datagrams_never_raise(data: st.DataObject) -> None:
    loop = handshake_pair()
    sid = loop.client.open_stream()
    loop.client.send_stream_data(sid, b"payload" * 100)
    datagrams = [d for d, _ in loop.client.datagrams_to_send(loop.now)] or [b"\x40" * 40]
    base = data.draw(st.sampled_from(datagrams))
    mutated = bytearray(base)
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(mutated) - 1))
        mutated[pos] = data.draw(st.integers(0, 255))
    noise = data.draw(st.binary(max_size=1500))
    for datagram in (bytes(mutated), noise, bytes(mutated[: len(mutated) // 2])):
        loop.server.receive_datagram(datagram, SERVER_PATH, loop.now)
        loop.client.receive_datagram(datagram, SERVER_PATH, loop.now)
    loop.collect()
    for events in (loop.server_events, loop.client_events):
        event = terminated(events)
        assert event is None or event.error_code != E.INTERNAL_ERROR, event


def test_ack_frequency_to_a_server_that_did_not_advertise_min_ack_delay_is_a_violation() -> None:
    """draft-ietf-quic-ack-frequency §3: the frame is allowed only to an endpoint that
    sent min_ack_delay (advertised by default; this server turned it off)."""
    loop = handshake_pair(server_config=server_config(min_ack_delay=None))
    inject(loop, encode_frames([AckFrequencyFrame(0, 2, 25_000, 1)]))
    loop.collect()
    event = terminated(loop.server_events)
    assert event is not None and event.error_code == E.PROTOCOL_VIOLATION, event
