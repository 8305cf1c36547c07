"""The connection's read-only views (issue 16), what a test or a tool looks at instead
of the engine's attributes: ``crypto_state`` through the handshake and a key update
(RFC 9001 §4.9, §6) and ``send_progress`` through a stream's life (RFC 9000 §3.1)."""

from __future__ import annotations

import dataclasses

import pytest
from engine_fake_tls import fake_tls_factory
from engine_pairs import handshake_pair, make_pair, transfer

from tquic.core.send_stream import SendState
from tquic.wire.epochs import Epoch


def test_crypto_state_follows_the_epochs_through_the_handshake_and_a_key_update() -> None:
    loop = make_pair(tls_factory=fake_tls_factory)
    start = loop.client.crypto_state
    assert start.send_keys == start.recv_keys == {Epoch.INITIAL}
    assert start.spaces == {Epoch.INITIAL, Epoch.HANDSHAKE} and not start.discarded
    loop.run_until(lambda: loop.client.handshake_confirmed, timeout=5)
    done = loop.client.crypto_state
    assert done.send_keys == done.recv_keys == {Epoch.ONE_RTT}
    assert done.discarded == {Epoch.INITIAL, Epoch.HANDSHAKE} and not done.spaces
    assert (done.send_key_phase, done.recv_key_phase, done.key_updates) == (0, 0, 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        done.key_updates = 1  # type: ignore[misc]
    transfer(loop, 20_000)  # a packet of phase 0 acknowledged: an update is allowed
    loop.client.request_key_update(loop.now)
    updated = loop.client.crypto_state
    assert (updated.send_key_phase, updated.key_updates) == (1, 1)
    assert done.key_updates == 0  # a snapshot: the earlier one did not move
    transfer(loop, 20_000)
    assert loop.server.crypto_state.recv_key_phase == 1


def test_send_progress_follows_a_stream_until_it_is_freed() -> None:
    loop = handshake_pair()
    client = loop.client
    sid = client.open_stream(bidirectional=False)
    client.send_stream_data(sid, b"x" * 50_000, end_stream=True)
    progress = client.send_progress(sid)
    assert progress is not None
    assert (progress.written, progress.sent, progress.acked_prefix) == (50_000, 0, 0)
    assert progress.final_size == 50_000 and not progress.lost
    loop.run_until(lambda: (p := client.send_progress(sid)) is not None and p.sent > 0,
                   timeout=5)
    sending = client.send_progress(sid)
    assert sending is not None and sending.state in (SendState.SEND, SendState.DATA_SENT)
    loop.run_until(lambda: loop.received(sid)[1], timeout=10)
    # Every byte and the FIN acknowledged: the stream is finished and forgotten.
    loop.run_until(lambda: client.send_progress(sid) is None, timeout=5)
    assert client.send_progress(sid + 4) is None  # never opened
