"""1-RTT key update state (RFC 9001 §6) on two OneRttKeys facing each other."""

from __future__ import annotations

import pytest

from tquic.core.key_update import KeyUpdateNotAllowed, OneRttKeys
from tquic.crypto.keys import CipherSuite
from tquic.crypto.protection import PacketProtection
from tquic.wire.errors import QuicError
from tquic.wire.errors import TransportErrorCode as E
from tquic.wire.packet import encode_short_header
from tquic.wire.version import QUIC_V1

S = CipherSuite.AES_128_GCM_SHA256


def _pair() -> tuple[OneRttKeys, OneRttKeys]:
    a, b = b"a" * 32, b"b" * 32
    client = OneRttKeys(PacketProtection.from_secret(S, a, QUIC_V1),
                        PacketProtection.from_secret(S, b, QUIC_V1))
    server = OneRttKeys(PacketProtection.from_secret(S, b, QUIC_V1),
                        PacketProtection.from_secret(S, a, QUIC_V1))
    return client, server


def _send(keys: OneRttKeys, pn: int) -> bytes:
    header = encode_short_header(b"c" * 8, pn, 4, bool(keys.send_phase))
    keys.on_packet_sent(pn)
    return keys.send.protect(header, b"\x01" + bytes(30), pn)


def test_update_needs_an_acknowledged_packet_of_the_current_phase() -> None:
    client, _ = _pair()
    with pytest.raises(KeyUpdateNotAllowed):
        client.initiate()
    _send(client, 0)
    client.on_ack_received(0)
    client.initiate()
    assert client.send_phase == 1


def test_peer_answers_an_update_and_keeps_old_keys_for_delayed_packets() -> None:
    client, server = _pair()
    old = _send(client, 0)
    client.on_ack_received(0)
    client.initiate()
    new = _send(client, 1)
    server.unprotect(new, 9, -1, 0, 1.0, 0.3)
    assert server.send_phase == 1 and server.recv_phase == 1
    _, payload, pn = server.unprotect(old, 9, 1, 0, 1.0, 0.3)  # delayed, previous keys
    assert pn == 0 and payload.startswith(b"\x01")
    server.discard_previous(2.0)
    assert server.recv_prev is None


def test_consecutive_updates_without_acknowledgment_are_a_key_update_error() -> None:
    client, server = _pair()
    _send(client, 0)
    client.on_ack_received(0)
    client.initiate()
    server.unprotect(_send(client, 1), 9, -1, 0, 1.0, 0.3)
    # the client updates again although the server never acknowledged with new keys
    client.on_ack_received(1)  # its phase-1 packet acknowledged (in an old-key packet)
    client.initiate()
    with pytest.raises(QuicError) as info:
        server.unprotect(_send(client, 2), 9, 1, 0, 1.0, 0.3)
    assert info.value.error_code == E.KEY_UPDATE_ERROR
