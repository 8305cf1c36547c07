"""Connection IDs (RFC 9000 §5.1, §19.15, §19.16, §10.3)."""

from __future__ import annotations

import pytest

from tquic.core.cids import LocalCids, PeerCids, stateless_reset_token
from tquic.wire.errors import QuicError
from tquic.wire.errors import TransportErrorCode as E


def test_local_cids_issue_sequence_numbers_and_stable_reset_tokens() -> None:
    local = LocalCids(8, b"k" * 32)
    issued = local.replenish(4)
    assert [c.sequence_number for c in issued] == [1, 2, 3]
    for entry in local.active:
        assert entry.reset_token == stateless_reset_token(b"k" * 32, entry.cid)
        assert len(entry.cid) == 8


def test_local_cids_never_exceed_our_cap_whatever_the_peer_allows() -> None:
    local = LocalCids(8, b"k" * 32)
    local.replenish(1000)
    assert len(local.active) == 8


def test_retiring_an_unissued_sequence_number_is_a_protocol_violation() -> None:
    local = LocalCids(8, b"k" * 32)
    with pytest.raises(QuicError) as info:
        local.on_retire(5, b"")
    assert info.value.error_code == E.PROTOCOL_VIOLATION


def test_retiring_the_cid_the_packet_was_sent_to_is_a_protocol_violation() -> None:
    local = LocalCids(8, b"k" * 32)
    entry = local.replenish(2)[0]
    with pytest.raises(QuicError) as info:
        local.on_retire(entry.sequence_number, entry.cid)
    assert info.value.error_code == E.PROTOCOL_VIOLATION


def test_retire_twice_is_harmless() -> None:
    local = LocalCids(8, b"k" * 32)
    local.replenish(2)
    assert local.on_retire(1, b"x") is not None
    assert local.on_retire(1, b"x") is None


def test_peer_cids_limit_is_enforced() -> None:
    peer = PeerCids(limit=2)
    peer.set_initial(b"a" * 8)
    peer.on_new_connection_id(1, 0, b"b" * 8, b"1" * 16, 8)
    with pytest.raises(QuicError) as info:
        peer.on_new_connection_id(2, 0, b"c" * 8, b"2" * 16, 8)
    assert info.value.error_code == E.CONNECTION_ID_LIMIT_ERROR


def test_retire_prior_to_retires_and_reports_cids_in_use() -> None:
    peer = PeerCids(limit=2)
    first = peer.set_initial(b"a" * 8)
    retired = peer.on_new_connection_id(1, 1, b"b" * 8, b"1" * 16, 8)
    assert retired == [first]
    assert peer.pending_retirements == [0]
    assert peer.acquire() is not None


def test_a_frame_below_retire_prior_to_is_retired_at_once() -> None:
    peer = PeerCids(limit=4)
    peer.set_initial(b"a" * 8)
    peer.on_new_connection_id(5, 5, b"b" * 8, b"1" * 16, 8)
    peer.pending_retirements.clear()
    peer.on_new_connection_id(3, 0, b"c" * 8, b"2" * 16, 8)
    assert peer.pending_retirements == [3]


def test_new_connection_id_to_a_zero_length_cid_peer_is_a_protocol_violation() -> None:
    peer = PeerCids(limit=4)
    with pytest.raises(QuicError) as info:
        peer.on_new_connection_id(1, 0, b"b" * 8, b"1" * 16, 0)
    assert info.value.error_code == E.PROTOCOL_VIOLATION


def test_stateless_reset_is_recognised_by_the_token_in_the_last_16_bytes() -> None:
    peer = PeerCids(limit=4)
    peer.set_initial(b"a" * 8)
    peer.on_new_connection_id(1, 0, b"b" * 8, b"T" * 16, 8)
    assert peer.is_stateless_reset(b"\x40" + b"\x00" * 30 + b"T" * 16)
    assert not peer.is_stateless_reset(b"\x40" + b"\x00" * 30 + b"U" * 16)
    assert not peer.is_stateless_reset(b"T" * 16)  # too short to be a reset (§10.3)
