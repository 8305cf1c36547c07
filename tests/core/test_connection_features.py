"""End-to-end features: key update, datagrams, migration, stateless reset, Retry, v2, PMTUD."""

from __future__ import annotations

from engine_fake_tls import fake_tls_factory
from engine_pairs import CLIENT_PATH, SERVER_PATH, handshake_pair, make_pair, terminated

from tquic.core.config import QuicConfiguration
from tquic.core.events import DatagramReceived, PathMigrated, PathValidated
from tquic.paths.network_path import NetworkPath
from tquic.testing.engines import CLIENT_ADDR, EnginePair, Link
from tquic.wire.version import QUIC_V2


def _echo(loop: EnginePair, data: bytes) -> None:
    """``data`` crosses on a new client stream within 10 s (EngineTimeout if not)."""
    sid = loop.client.open_stream()
    loop.client.send_stream_data(sid, data, end_stream=True)
    loop.run_until(lambda: loop.received(sid) == (data, True), timeout=10,
                   what=f"stream {sid}'s {len(data)} bytes")
    loop.advance(0.1)  # let the ACKs arrive


def test_key_update_initiated_by_the_client_is_answered_and_data_flows() -> None:
    loop = handshake_pair()
    _echo(loop, b"before")
    loop.client.request_key_update()
    _echo(loop, b"after" * 1000)
    assert loop.client.key_phase == 1 and loop.server.key_phase == 1
    # RFC 9001 §6.1: a second update once the first was acknowledged
    loop.client.request_key_update()
    _echo(loop, b"again" * 1000)
    assert loop.client.key_phase == 0 and loop.server.key_phase == 0
    assert terminated(loop.server_events) is None


def test_key_update_initiated_by_the_server() -> None:
    loop = handshake_pair()
    _echo(loop, b"x" * 5000)
    loop.server.request_key_update()
    _echo(loop, b"y" * 5000)
    assert loop.client.key_phase == 1


def test_datagrams_are_delivered_when_negotiated() -> None:
    from engine_certs import server_config

    loop = handshake_pair(
        client_config=QuicConfiguration(is_client=True, verify_peer=False,
                                        max_datagram_frame_size=65535),
        server_config=server_config(max_datagram_frame_size=65535))
    for i in range(5):
        loop.client.send_datagram(b"dgram%d" % i)
    loop.run_until(lambda: sum(isinstance(e, DatagramReceived)
                               for e in loop.server_events) == 5, timeout=30)
    got = [e.data for e in loop.server_events if isinstance(e, DatagramReceived)]
    assert got == [b"dgram%d" % i for i in range(5)]


def test_datagram_too_large_or_not_negotiated_is_refused() -> None:
    import pytest

    from tquic.core.connection import DatagramError

    loop = handshake_pair()
    with pytest.raises(DatagramError):
        loop.client.send_datagram(b"x")
    from engine_certs import server_config

    loop = handshake_pair(
        client_config=QuicConfiguration(is_client=True, verify_peer=False,
                                        max_datagram_frame_size=65535),
        server_config=server_config(max_datagram_frame_size=65535))
    with pytest.raises(DatagramError):
        loop.client.send_datagram(b"x" * 5000)


def test_nat_rebinding_moves_the_server_to_the_new_address_after_validation() -> None:
    loop = handshake_pair()
    _echo(loop, b"warm up")
    loop.links[CLIENT_ADDR].nat = ("10.0.0.1", 50000)  # the NAT picked a new port
    _echo(loop, b"after rebinding" * 100)
    loop.run_until(lambda: any(isinstance(e, PathValidated) for e in loop.server_events), timeout=30)
    migrated = [e for e in loop.server_events if isinstance(e, PathMigrated)]
    assert migrated and migrated[-1].network_path.remote == ("10.0.0.1", 50000)
    assert loop.server.paths.primary.network_path.remote == ("10.0.0.1", 50000)


def test_client_migration_uses_a_new_connection_id() -> None:
    loop = handshake_pair()
    _echo(loop, b"warm up")
    old_dcid = loop.client.paths.primary.peer_cid.cid  # type: ignore[union-attr]
    new_local = ("10.9.9.9", 4433)
    loop.links[new_local] = Link()
    loop.client.migrate(NetworkPath(new_local, CLIENT_PATH.remote), loop.now)
    assert loop.client.paths.primary.peer_cid.cid != old_dcid  # type: ignore[union-attr]
    _echo(loop, b"moved" * 200)
    assert loop.server.paths.primary.network_path.remote == ("10.9.9.9", 4433)


def test_stateless_reset_terminates_the_client() -> None:
    from tquic.core.cids import stateless_reset_token

    loop = handshake_pair()
    _echo(loop, b"x")
    # the server lost its state; its endpoint answers with a reset for the client's DCID
    dcid = loop.client.paths.primary.peer_cid.cid  # type: ignore[union-attr]
    token = stateless_reset_token(loop.server.configuration.stateless_reset_key, dcid)
    reset = b"\x43" + b"\x5a" * 30 + token
    loop.client.receive_datagram(reset, CLIENT_PATH, loop.now)
    loop.collect()
    event = terminated(loop.client_events)
    assert event is not None and event.reason == "stateless reset"
    assert loop.client.datagrams_to_send(loop.now) == []


def test_retry_then_handshake_with_authenticated_cids() -> None:
    from engine_certs import server_config

    from tquic.core.connection import QuicConnection
    from tquic.core.tokens import TokenManager
    from tquic.wire.packet import encode_retry, parse_header

    client = QuicConnection(QuicConfiguration(is_client=True, verify_peer=False),
                            tls_factory=fake_tls_factory)
    client.connect(CLIENT_PATH, 0.0)
    first = client.datagrams_to_send(0.0)[0][0]
    header = parse_header(first, 0, 8)
    tm = TokenManager(b"k" * 32)
    retry_scid = b"R" * 8
    token = tm.create_retry_token(SERVER_PATH.remote, header.dcid, retry_scid, 0.0)
    retry = encode_retry(client.version, header.scid, retry_scid, header.dcid, token)
    client.receive_datagram(retry, CLIENT_PATH, 0.01)
    second = client.datagrams_to_send(0.01)[0][0]
    h2 = parse_header(second, 0, 8)
    assert h2.token == token and h2.dcid == retry_scid
    contents = tm.validate_retry_token(h2.token, SERVER_PATH.remote, 0.02)
    assert contents is not None
    server = QuicConnection(
        server_config(), is_client=False, tls_factory=fake_tls_factory,
        original_destination_connection_id=contents.original_destination_connection_id,
        retry_source_connection_id=contents.retry_source_connection_id)
    loop = EnginePair(client, server)
    loop.now = 0.02
    server.receive_datagram(second, SERVER_PATH, 0.02)
    loop.run_until(lambda: client.handshake_complete and server.handshake_complete, timeout=30)
    assert terminated(loop.client_events) is None


def test_retry_with_a_bad_integrity_tag_is_ignored() -> None:
    from tquic.core.connection import QuicConnection
    from tquic.wire.packet import encode_retry, parse_header

    client = QuicConnection(QuicConfiguration(is_client=True, verify_peer=False),
                            tls_factory=fake_tls_factory)
    client.connect(CLIENT_PATH, 0.0)
    header = parse_header(client.datagrams_to_send(0.0)[0][0], 0, 8)
    retry = bytearray(encode_retry(client.version, header.scid, b"R" * 8, header.dcid, b"tok"))
    retry[-1] ^= 0xFF
    client.receive_datagram(bytes(retry), CLIENT_PATH, 0.01)
    assert not client.received_retry


def test_quic_v2_handshake_and_transfer() -> None:
    from engine_certs import server_config

    loop = handshake_pair(
        client_config=QuicConfiguration(is_client=True, verify_peer=False, versions=(QUIC_V2,)),
        server_config=server_config())
    assert loop.client.version == QUIC_V2 and loop.server.version == QUIC_V2
    _echo(loop, b"v2" * 10_000)


def test_pmtud_raises_the_datagram_size_to_the_ceiling() -> None:
    from engine_certs import server_config

    loop = handshake_pair(
        client_config=QuicConfiguration(is_client=True, verify_peer=False,
                                        max_udp_payload_size=1452),
        server_config=server_config(max_udp_payload_size=1452))
    _echo(loop, b"z" * 100_000)
    assert loop.client.paths.primary.max_datagram_size == 1452


def test_pmtud_stops_below_a_path_mtu_that_drops_big_datagrams() -> None:
    from engine_certs import server_config

    loop = make_pair(
        client_config=QuicConfiguration(is_client=True, verify_peer=False,
                                        max_udp_payload_size=1452),
        server_config=server_config(max_udp_payload_size=1452),
        tls_factory=fake_tls_factory, drop=lambda i, d: len(d) > 1350)
    loop.run_until(lambda: loop.client.handshake_complete and loop.server.handshake_complete, timeout=30)
    _echo(loop, b"z" * 200_000)
    loop.advance(3)
    size = loop.client.paths.primary.max_datagram_size
    assert 1300 <= size <= 1350
