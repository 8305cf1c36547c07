"""draft-ietf-quic-multipath negotiation, fallback and every frame rule (real TLS).

§"Connection Lifecycle": multipath is used only if BOTH endpoints advertise
initial_max_path_id; otherwise the connection is plain RFC 9000 and any
multipath frame is a PROTOCOL_VIOLATION.  §"New Frames" and the per-frame
sections name the error for each rule; the table below checks each one
closes the connection with that code.
"""

from __future__ import annotations

import pytest
from engine_certs import server_config
from engine_fake_tls import fake_tls_factory, rewriting_tls_factory
from engine_pairs import (
    LINK_B,
    client_config,
    inject,
    inject_handshake,
    make_pair,
    mp_pair,
    terminated,
)

from tquic.core.conn_base import Epoch
from tquic.core.events import ConnectionIdIssued, PathStatusChanged
from tquic.core.multipath import PathError
from tquic.wire.buffer import encode_varint
from tquic.wire.errors import TransportErrorCode
from tquic.wire.frames import (
    Frame,
    MaxPathIdFrame,
    PathAbandonFrame,
    PathAckFrame,
    PathCidsBlockedFrame,
    PathNewConnectionIdFrame,
    PathRetireConnectionIdFrame,
    PathsBlockedFrame,
    PathStatusAvailableFrame,
    PathStatusBackupFrame,
    encode_frames,
)

PV = TransportErrorCode.PROTOCOL_VIOLATION
TPE = TransportErrorCode.TRANSPORT_PARAMETER_ERROR


def test_both_advertise_initial_max_path_id_enables_multipath_and_issues_path_cids() -> None:
    loop = mp_pair(client_max_path_id=3, server_max_path_id=2)
    assert loop.client.multipath_enabled and loop.server.multipath_enabled
    # §"Issuing New Connection IDs": CIDs for each unused path ID up to min(3, 2).
    for events in (loop.client_events, loop.server_events):
        issued = {e.path_id for e in events if isinstance(e, ConnectionIdIssued)}
        assert issued == {0, 1, 2}
    loop.run_until(lambda: list(loop.client.peer_cids()) == [0, 1, 2], timeout=1)
    assert list(loop.server.peer_cids()) == [0, 1, 2]


@pytest.mark.parametrize(("client", "server"), [(4, None), (None, 4), (None, None)])
def test_without_both_parameters_the_connection_is_single_path_quic(
        client: int | None, server: int | None) -> None:
    loop = mp_pair(client_max_path_id=client, server_max_path_id=server)
    assert not loop.client.multipath_enabled and not loop.server.multipath_enabled
    with pytest.raises(PathError):
        loop.client.add_path(LINK_B, None, loop.now)
    sid = loop.client.open_stream()
    loop.client.send_stream_data(sid, b"z" * 100_000, end_stream=True)
    loop.run_until(lambda: loop.received(sid)[1], timeout=10)
    assert loop.received(sid)[0] == b"z" * 100_000
    # No path-specific CID was issued: nothing beyond path 0 exists.
    assert all(e.path_id == 0 for e in loop.client_events + loop.server_events
               if isinstance(e, ConnectionIdIssued))


def test_multipath_frame_without_negotiation_is_a_protocol_violation() -> None:
    loop = mp_pair(client_max_path_id=4, server_max_path_id=None)
    inject(loop, encode_frames((PathStatusBackupFrame(0, 1),)))
    event = terminated(loop.server_events + _drain(loop.server))
    assert event is not None and event.error_code == PV


def test_multipath_frame_in_a_handshake_packet_is_a_protocol_violation() -> None:
    loop = make_pair(client_config(max_path_id=4), server_config(max_path_id=4),
                     tls_factory=fake_tls_factory)
    # The client has its Handshake keys; the server still expects its Finished.
    loop.run_until(lambda: Epoch.HANDSHAKE in loop.client.crypto_state.send_keys, timeout=2)
    assert Epoch.HANDSHAKE in loop.server.crypto_state.recv_keys
    inject_handshake(loop, encode_frames((MaxPathIdFrame(8),)))
    event = terminated(_drain(loop.server))
    assert event is not None and event.error_code == PV and not event.by_peer


def _client_closes_on(extra: bytes = b"", **server_params: object) -> tuple[int, str]:
    """How the client closes (code, reason) when the server sends these parameters."""
    loop = make_pair(client_config(max_path_id=4), server_config(max_path_id=4),
                     tls_factory=rewriting_tls_factory(False, extra, **server_params))
    loop.run_until(lambda: terminated(loop.client_events) is not None, timeout=5)
    event = terminated(loop.client_events)
    assert event is not None and not event.by_peer
    return event.error_code, event.reason


def test_initial_max_path_id_above_2_to_the_32_is_a_transport_parameter_error() -> None:
    value = encode_varint(1 << 32)  # our encoder refuses it: written by hand (RFC 9000 §18)
    raw = encode_varint(0x3E) + encode_varint(len(value)) + value  # initial_max_path_id
    assert _client_closes_on(raw, initial_max_path_id=None) == (
        TPE, "initial_max_path_id above 2^32-1")


def test_initial_max_path_id_with_zero_length_cid_is_a_protocol_violation() -> None:
    assert _client_closes_on(initial_source_connection_id=b"") == (
        PV, "initial_max_path_id with a zero-length connection ID")


def _drain(conn: object) -> list[object]:
    out = []
    while (event := conn.next_event()) is not None:  # type: ignore[attr-defined]
        out.append(event)
    return out


TOKEN = bytes(16)
# Frames the server receives from the client (server's maximum path ID is 4).
VIOLATIONS: list[tuple[str, list[Frame] | bytes]] = [
    ("PATH_ACK above max path id", [PathAckFrame(5, ((0, 0),), 0, None)]),
    ("PATH_ACK of an unsent packet", [PathAckFrame(0, ((10_000, 10_000),), 0, None)]),
    ("PATH_ABANDON above max path id", [PathAbandonFrame(5, 0)]),
    ("PATH_STATUS_BACKUP above max path id", [PathStatusBackupFrame(5, 1)]),
    ("PATH_STATUS_AVAILABLE above max path id", [PathStatusAvailableFrame(9, 1)]),
    ("PATH_NEW_CONNECTION_ID above max path id",
     [PathNewConnectionIdFrame(5, 0, 0, b"\x01" * 8, TOKEN)]),
    ("PATH_RETIRE_CONNECTION_ID above max path id", [PathRetireConnectionIdFrame(5, 0)]),
    ("PATH_RETIRE_CONNECTION_ID of an unissued sequence",
     [PathRetireConnectionIdFrame(1, 99)]),
    ("MAX_PATH_ID below initial_max_path_id", [MaxPathIdFrame(1)]),
    ("MAX_PATH_ID above 2^32-1", encode_varint(0x3E7A) + encode_varint(1 << 32)),
    ("PATHS_BLOCKED above our max path id", [PathsBlockedFrame(5)]),
    ("PATH_CIDS_BLOCKED above max path id", [PathCidsBlockedFrame(5, 0)]),
    ("PATH_CIDS_BLOCKED with a sequence never issued", [PathCidsBlockedFrame(1, 50)]),
]


@pytest.mark.parametrize(("name", "frames"), VIOLATIONS, ids=[v[0] for v in VIOLATIONS])
def test_multipath_frame_rule_violation_closes_with_protocol_violation(
        name: str, frames: list[Frame] | bytes) -> None:
    loop = mp_pair()
    inject(loop, frames if isinstance(frames, bytes) else encode_frames(tuple(frames)))
    event = terminated(_drain(loop.server))
    assert event is not None, name
    assert event.error_code == PV, (name, event)
    assert not event.by_peer


def test_path_cid_reused_across_path_ids_is_a_protocol_violation() -> None:
    loop = mp_pair()
    loop.run_until(lambda: 1 in loop.server.peer_cids(), timeout=1)
    cid_of_path_1 = loop.server.peer_cids()[1][0]
    inject(loop, encode_frames((PathNewConnectionIdFrame(2, 5, 0, cid_of_path_1, TOKEN),)))
    event = terminated(_drain(loop.server))
    assert event is not None and event.error_code == PV


def test_outdated_or_harmless_multipath_frames_are_ignored() -> None:
    loop = mp_pair()
    frames = (
        MaxPathIdFrame(4),  # does not raise the limit: ignored
        PathsBlockedFrame(2),  # informational
        PathAckFrame(3, ((0, 0),), 0, None),  # a path never used: nothing to acknowledge
        PathStatusBackupFrame(1, 5),  # for a path not open yet: kept for when it opens
        PathStatusAvailableFrame(1, 4),  # older than the BACKUP above: ignored
    )
    inject(loop, encode_frames(frames))
    assert terminated(_drain(loop.server)) is None
    loop.run_until(lambda: loop.client.can_open_path, timeout=2)
    assert loop.client.add_path(LINK_B, None, loop.now) == 1
    loop.run_until(lambda: loop.server.paths.get(1) is not None, timeout=2)
    path = loop.server.paths.get(1)
    assert path is not None and path.peer_backup and path.peer_status_seq == 5
    assert PathStatusChanged(1, True, by_peer=True) in loop.server_events
