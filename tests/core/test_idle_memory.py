"""What an idle connection holds (issue 19): handshake-only state is freed once its
epoch is discarded (RFC 9001 §4.9), queues and AEAD contexts are created lazily, and
``release_idle_state`` drops the keys' OpenSSL contexts, which the next packet
rebuilds."""

from __future__ import annotations

import pytest
from engine_pairs import handshake_pair, make_pair

from tquic.core.conn_base import Epoch
from tquic.core.empty_queue import EMPTY, writable
from tquic.core.events import StreamDataReceived
from tquic.crypto.keys import CipherSuite
from tquic.crypto.protection import PacketProtection
from tquic.wire.packet import encode_short_header
from tquic.wire.version import QUIC_V1


def _confirmed_real_tls() -> object:
    loop = make_pair()
    loop.run_until(lambda: loop.client.handshake_confirmed
                   and loop.server.handshake_complete, timeout=5)
    return loop


def test_handshake_only_state_is_freed_once_discarded() -> None:
    loop = _confirmed_real_tls()
    for conn in (loop.client, loop.server):  # type: ignore[attr-defined]
        state = conn.crypto_state
        assert state.spaces == frozenset()  # Initial and Handshake spaces gone (RFC 9001 §4.9)
        assert state.crypto_streams == {Epoch.ONE_RTT}
        assert state.send_keys == state.recv_keys == {Epoch.ONE_RTT}
        assert state.discarded == {Epoch.INITIAL, Epoch.HANDSHAKE}
        # The next key phase is derived ahead (§6.3) but its AEAD context waits.
        assert "1rtt:send" in state.contexts_built
        assert "1rtt:recv_next" not in state.contexts_built
        while conn.next_event() is not None:  # drained, the queue is the shared EMPTY
            pass
        assert conn._events is EMPTY


def _echo(loop: object, payload: bytes) -> bytes:
    client = loop.client  # type: ignore[attr-defined]
    sid = client.open_stream()
    client.send_stream_data(sid, payload, end_stream=True)

    def received() -> bytes:
        return b"".join(e.data for e in loop.server_events  # type: ignore[attr-defined]
                        if isinstance(e, StreamDataReceived) and e.stream_id == sid)

    loop.run_until(lambda: len(received()) == len(payload),  # type: ignore[attr-defined]
                   timeout=5)  # type: ignore[attr-defined]
    return received()


def test_released_contexts_are_rebuilt_by_the_next_packet() -> None:
    loop = handshake_pair()
    for conn in (loop.client, loop.server):
        conn.release_idle_state()
        assert conn.crypto_state.contexts_built == frozenset()
    assert _echo(loop, b"after release " * 100) == b"after release " * 100
    # A key update across a release: the next generation is built from key bytes.
    loop.server.release_idle_state()
    loop.client.request_key_update(loop.now)
    assert _echo(loop, b"new phase " * 50) == b"new phase " * 50
    assert loop.server.crypto_state.recv_key_phase == 1
    loop.client.release_idle_state()
    loop.server.release_idle_state()
    assert _echo(loop, b"x" * 3000) == b"x" * 3000


@pytest.mark.parametrize("suite", list(CipherSuite))
def test_packet_protection_survives_release_in_every_suite(suite: CipherSuite) -> None:
    secret = bytes(range(48 if suite == CipherSuite.AES_256_GCM_SHA384 else 32))
    sender = PacketProtection.from_secret(suite, secret, QUIC_V1)
    receiver = PacketProtection.from_secret(suite, secret, QUIC_V1)
    nxt = receiver.next_generation()  # shares the header protection
    assert not nxt.holds_contexts
    for pn in range(3):
        header = encode_short_header(b"c" * 8, pn, 2, False)
        packet = sender.protect(header, b"\x01" + bytes(40), pn)
        if pn == 1:
            receiver.release()  # the shared header protection goes with it
            sender.release()
        plain, payload, got = receiver.unprotect(packet, 9, pn - 1)
        assert (plain, payload, got) == (header, b"\x01" + bytes(40), pn)
        assert nxt.header_protection.mask(packet[13:29])[:5]  # still usable after release


def test_the_shared_empty_queue_refuses_appends() -> None:
    with pytest.raises(RuntimeError):
        EMPTY.append(1)
    queue = writable(EMPTY)
    assert queue is not EMPTY
    queue.append(1)
    assert writable(queue) is queue and not EMPTY
