"""Version negotiation: RFC 9368 compatible negotiation between QUIC v1 and v2
(RFC 9369 §4), and Version Negotiation packets (RFC 9000 §6.2), with real TLS."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from engine_certs import server_config
from engine_pairs import CLIENT_PATH, make_pair, terminated

from tquic.core.config import QuicConfiguration
from tquic.core.connection import QuicConnection
from tquic.core.events import StreamDataReceived
from tquic.core.handshake import Handshake
from tquic.core.version_negotiation import (
    client_check_server_info,
    client_hello_version_information,
    server_choose_version,
)
from tquic.crypto.protection import initial_protections
from tquic.qlog import QuicLogger
from tquic.testing.engines import EnginePair
from tquic.wire.errors import QuicError, TransportErrorCode
from tquic.wire.frames import CryptoFrame, parse_frames
from tquic.wire.packet import encode_version_negotiation, parse_header
from tquic.wire.params import VersionInformation
from tquic.wire.version import QUIC_V1, QUIC_V2

VNE = TransportErrorCode.VERSION_NEGOTIATION_ERROR


def _client(*versions: int) -> QuicConfiguration:
    return QuicConfiguration(is_client=True, verify_peer=False, alpn_protocols=("hq",),
                             versions=versions)


def _pair(client_versions: tuple[int, ...], server_versions: tuple[int, ...],
          **kwargs: Any) -> tuple[EnginePair, list[bytes]]:
    """A real-TLS pair; the returned list records every datagram in send order."""
    seen: list[bytes] = []

    def record(_index: int, data: bytes) -> bool:
        seen.append(data)
        return False

    loop = make_pair(client_config=_client(*client_versions),
                     server_config=server_config(versions=server_versions),
                     tls_factory=None, drop=record, **kwargs)
    return loop, seen


def _version(datagram: bytes) -> int | None:
    return int.from_bytes(datagram[1:5], "big") if datagram[0] & 0x80 else None


def _split(loop: EnginePair, seen: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """Long-header datagrams by sender: a long header's DCID is the receiver's CID."""
    server_cids = {loop.server.original_destination_connection_id, *loop.server.host_cids}
    from_client: list[bytes] = []
    from_server: list[bytes] = []
    for data in seen:
        if not data[0] & 0x80:
            continue
        dcid = data[6:6 + data[5]]
        (from_client if dcid in server_cids else from_server).append(data)
    return from_client, from_server


def _echo(loop: EnginePair) -> None:
    sid = loop.client.open_stream()
    loop.client.send_stream_data(sid, b"v" * 5000, end_stream=True)
    loop.run_until(lambda: any(isinstance(e, StreamDataReceived) and e.end_stream
                               for e in loop.server_events), timeout=30)


def _done(loop: EnginePair) -> None:
    loop.run_until(lambda: loop.client.handshake_complete and loop.server.handshake_complete,
                   timeout=5, what="the handshake")


# -- compatible negotiation (RFC 9368 §2.3, RFC 9369 §4) ---------------------------------

def test_server_preferring_v2_upgrades_a_v1_client_without_a_round_trip() -> None:
    loop, seen = _pair((QUIC_V1, QUIC_V2), (QUIC_V2, QUIC_V1))
    _done(loop)
    assert loop.client.version == QUIC_V2 and loop.server.version == QUIC_V2
    from_client, from_server = _split(loop, seen)
    assert _version(from_client[0]) == QUIC_V1  # the first flight is the original version
    assert _version(from_server[0]) == QUIC_V2  # the server's first Initial is v2 already
    assert all(_version(d) == QUIC_V2 for d in from_server)
    assert all(_version(d) == QUIC_V2 for d in from_client[1:])
    # one round trip, as without negotiation: done within 3 one-way delays plus slack
    assert loop.now < 0.05
    _echo(loop)
    assert terminated(loop.client_events) is None and terminated(loop.server_events) is None


def test_server_keeps_accepting_v1_initials_after_switching() -> None:
    # The server's v2 flight is lost: the client, still in v1, retransmits its
    # ClientHello in v1 Initials, which the server must still decrypt (RFC 9369 §4).
    state = {"drop_v2": True}

    def drop(_index: int, data: bytes) -> bool:
        return state["drop_v2"] and bool(data[0] & 0x80) and _version(data) == QUIC_V2

    log = QuicLogger(vantage="server")
    loop = make_pair(client_config=_client(QUIC_V1, QUIC_V2),
                     server_config=server_config(versions=(QUIC_V2, QUIC_V1), quic_logger=log),
                     tls_factory=None, drop=drop)

    def initials_received() -> int:
        return sum(e["name"] == "quic:packet_received"
                   and e["data"]["header"]["packet_type"] == "initial" for e in log.events)

    loop.run_until(lambda: initials_received() >= 2, timeout=3)  # a retransmitted one
    assert loop.server.version == QUIC_V2 and loop.client.version == QUIC_V1
    state["drop_v2"] = False
    _done(loop)
    assert loop.client.version == QUIC_V2
    _echo(loop)


def test_server_preferring_v1_stays_in_v1() -> None:
    loop, _ = _pair((QUIC_V1, QUIC_V2), (QUIC_V1, QUIC_V2))
    _done(loop)
    assert loop.client.version == QUIC_V1 and loop.server.version == QUIC_V1


def test_client_that_does_not_offer_v2_is_not_upgraded() -> None:
    loop, seen = _pair((QUIC_V1,), (QUIC_V2, QUIC_V1))
    _done(loop)
    assert loop.client.version == QUIC_V1 and loop.server.version == QUIC_V1
    assert all(_version(d) in (QUIC_V1, None) for d in seen)


def test_client_starting_in_v2_with_v1_available_is_moved_to_the_servers_preference() -> None:
    loop, _ = _pair((QUIC_V2, QUIC_V1), (QUIC_V1, QUIC_V2))
    _done(loop)
    assert loop.client.version == QUIC_V1 and loop.server.version == QUIC_V1
    _echo(loop)


def test_server_chosen_version_mismatch_closes_with_version_negotiation_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    build = Handshake.build_local_params

    def lying_params(self: Handshake) -> Any:  # the server claims v1 while it speaks v2
        params = build(self)
        if params.original_destination_connection_id is None:  # a client's (RFC 9000 §18.2)
            return params
        return replace(params, version_information=VersionInformation(
            QUIC_V1, (QUIC_V2, QUIC_V1)))

    monkeypatch.setattr(Handshake, "build_local_params", lying_params)
    loop = make_pair(client_config=_client(QUIC_V1, QUIC_V2),
                     server_config=server_config(versions=(QUIC_V2, QUIC_V1)), tls_factory=None)
    loop.run_until(lambda: terminated(loop.client_events) is not None, timeout=5)
    event = terminated(loop.client_events)
    assert event is not None and event.error_code == VNE and not event.by_peer


def test_client_chosen_version_mismatch_closes_with_version_negotiation_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    build = Handshake.build_local_params

    def lying_params(self: Handshake) -> Any:  # the client names v2 while its packets are v1
        params = build(self)
        if params.original_destination_connection_id is not None:  # a server's (§18.2)
            return params
        return replace(params, version_information=VersionInformation(
            QUIC_V2, (QUIC_V1, QUIC_V2)))

    monkeypatch.setattr(Handshake, "build_local_params", lying_params)
    loop = make_pair(client_config=_client(QUIC_V1, QUIC_V2),
                     server_config=server_config(versions=(QUIC_V2, QUIC_V1)), tls_factory=None)
    loop.run_until(lambda: terminated(loop.server_events) is not None, timeout=5)
    event = terminated(loop.server_events)
    assert event is not None and event.error_code == VNE
    loop.run_until(lambda: terminated(loop.client_events) is not None, timeout=5)
    peer_view = terminated(loop.client_events)
    assert peer_view is not None and peer_view.by_peer and peer_view.error_code == VNE


# -- Version Negotiation packets (RFC 9000 §6.2, RFC 9368 §4) -------------------------------

def _vn_to_client(loop: EnginePair, versions: tuple[int, ...]) -> None:
    client = loop.client
    scid = client.local_transport_parameters.initial_source_connection_id
    assert scid is not None
    packet = encode_version_negotiation(scid, client.original_destination_connection_id,
                                        versions)
    loop.client.receive_datagram(packet, CLIENT_PATH, loop.now)


def test_version_negotiation_restarts_the_client_with_a_common_version() -> None:
    loop, seen = _pair((QUIC_V2, QUIC_V1), (QUIC_V1,))
    _vn_to_client(loop, (0x1A2A3A4A, QUIC_V1))  # a greased version first (RFC 9000 §6.3)
    assert loop.client.version == QUIC_V1
    _done(loop)
    assert loop.server.version == QUIC_V1
    assert all(_version(d) in (QUIC_V1, None) for d in seen)
    _echo(loop)


def test_version_negotiation_listing_the_clients_version_is_ignored() -> None:
    loop, _ = _pair((QUIC_V1, QUIC_V2), (QUIC_V1, QUIC_V2))
    _vn_to_client(loop, (QUIC_V2, QUIC_V1))
    # Not acted upon: acting on one counts as the packet received (only one is, §6.2).
    assert loop.client.version == QUIC_V1 and not loop.client.received_any_packet
    _done(loop)
    assert terminated(loop.client_events) is None


def test_version_negotiation_without_a_common_version_ends_the_attempt() -> None:
    loop, _ = _pair((QUIC_V1,), (QUIC_V1,))
    _vn_to_client(loop, (QUIC_V2, 0x2A3A4A5A))
    event = terminated(loop.client_events) or terminated(
        [loop.client.next_event() for _ in range(5)])
    assert event is not None and event.error_code == VNE
    assert loop.client.is_closed


def test_forged_version_negotiation_downgrade_is_detected() -> None:
    # The client prefers v2; a forged VN claims only v1.  The server's Available
    # Versions (v1, v2) show the client would have chosen v2 (RFC 9368 §4).
    loop, _ = _pair((QUIC_V2, QUIC_V1), (QUIC_V1, QUIC_V2))
    _vn_to_client(loop, (QUIC_V1,))
    assert loop.client.version == QUIC_V1
    loop.run_until(lambda: terminated(loop.client_events) is not None, timeout=5)
    event = terminated(loop.client_events)
    assert event is not None and event.error_code == VNE and not loop.client.handshake_complete


# -- the rules as functions ------------------------------------------------------------------

def test_server_choice_follows_server_preference_among_offered_compatible_versions() -> None:
    info = VersionInformation(QUIC_V1, (QUIC_V1, QUIC_V2))
    assert server_choose_version(QUIC_V1, (QUIC_V2, QUIC_V1), info) == QUIC_V2
    assert server_choose_version(QUIC_V1, (QUIC_V1, QUIC_V2), info) == QUIC_V1
    assert server_choose_version(QUIC_V1, (QUIC_V2, QUIC_V1), None) == QUIC_V1
    only_v1 = VersionInformation(QUIC_V1, (QUIC_V1,))
    assert server_choose_version(QUIC_V1, (QUIC_V2, QUIC_V1), only_v1) == QUIC_V1
    with pytest.raises(QuicError) as err:
        server_choose_version(QUIC_V1, (QUIC_V2,), VersionInformation(QUIC_V2, (QUIC_V2,)))
    assert err.value.error_code == VNE


def test_client_checks_of_the_servers_version_information() -> None:
    ok = VersionInformation(QUIC_V2, (QUIC_V2, QUIC_V1))
    client_check_server_info(ok, negotiated=QUIC_V2, original=QUIC_V1, acted_on_vn=False,
                             client_versions=(QUIC_V1, QUIC_V2))
    client_check_server_info(None, negotiated=QUIC_V1, original=QUIC_V1, acted_on_vn=False,
                             client_versions=(QUIC_V1,))
    bad = [
        (None, QUIC_V2, QUIC_V1, False),  # switched without the parameter
        (None, QUIC_V1, QUIC_V1, True),  # after VN without the parameter
        (VersionInformation(QUIC_V1, (QUIC_V1,)), QUIC_V2, QUIC_V1, False),  # wrong chosen
        (VersionInformation(QUIC_V1, (QUIC_V1, QUIC_V2)), QUIC_V1, QUIC_V1, True),  # downgrade
    ]
    for info, negotiated, original, vn in bad:
        with pytest.raises(QuicError) as err:
            client_check_server_info(info, negotiated=negotiated, original=original,
                                     acted_on_vn=vn, client_versions=(QUIC_V2, QUIC_V1))
        assert err.value.error_code == VNE


def test_client_hello_peek_finds_version_information_or_gives_up() -> None:
    client = QuicConnection(_client(QUIC_V1, QUIC_V2))
    client.connect(CLIENT_PATH, 0.0)
    # The ClientHello as the server reads it: its first Initial opened (RFC 9001 §5.2).
    datagram = client.datagrams_to_send(0.0)[0][0]
    header = parse_header(datagram, 0, 8)
    _, recv = initial_protections(QUIC_V1, client.original_destination_connection_id, False)
    _, payload, _ = recv.unprotect(datagram[:header.packet_end], header.pn_offset, -1)
    (crypto,) = [f for f in parse_frames(payload) if isinstance(f, CryptoFrame)]
    assert crypto.offset == 0
    info = client_hello_version_information(crypto.data)
    assert info == VersionInformation(QUIC_V1, (QUIC_V1, QUIC_V2))
    assert client_hello_version_information(b"\x01\x00\x00\x07garbage") is None
    assert client_hello_version_information(b"\x02\x00\x00\x00") is None
    assert client_hello_version_information(b"") is None
