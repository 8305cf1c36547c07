"""Retry and NEW_TOKEN tokens (RFC 9000 §8.1.2-§8.1.4)."""

from __future__ import annotations

from tquic.core.tokens import KIND_NEW_TOKEN, KIND_RETRY, TokenManager

ADDR = ("192.0.2.1", 5000)


def test_retry_token_round_trip_carries_both_cids() -> None:
    tm = TokenManager(b"k" * 32)
    token = tm.create_retry_token(ADDR, b"odcid123", b"rscid456", 100.0)
    contents = tm.validate_retry_token(token, ADDR, 101.0)
    assert contents is not None
    assert contents.original_destination_connection_id == b"odcid123"
    assert contents.retry_source_connection_id == b"rscid456"
    assert TokenManager.token_kind(token) == KIND_RETRY


def test_retry_token_is_bound_to_the_client_address() -> None:
    tm = TokenManager(b"k" * 32)
    token = tm.create_retry_token(ADDR, b"o", b"r", 100.0)
    assert tm.validate_retry_token(token, ("192.0.2.1", 5001), 100.0) is None
    assert tm.validate_retry_token(token, ("192.0.2.2", 5000), 100.0) is None


def test_retry_token_expires() -> None:
    tm = TokenManager(b"k" * 32)
    token = tm.create_retry_token(ADDR, b"o", b"r", 100.0)
    assert tm.validate_retry_token(token, ADDR, 115.0) is None


def test_forged_or_tampered_tokens_are_rejected() -> None:
    tm = TokenManager(b"k" * 32)
    token = bytearray(tm.create_retry_token(ADDR, b"o", b"r", 100.0))
    token[-1] ^= 1
    assert tm.validate_retry_token(bytes(token), ADDR, 100.0) is None
    other = TokenManager(b"j" * 32).create_retry_token(ADDR, b"o", b"r", 100.0)
    assert tm.validate_retry_token(other, ADDR, 100.0) is None
    assert tm.validate_retry_token(b"", ADDR, 100.0) is None
    assert tm.validate_retry_token(b"R" + b"\x00" * 50, ADDR, 100.0) is None


def test_new_token_validates_the_same_address_for_a_day() -> None:
    tm = TokenManager(b"k" * 32)
    token = tm.create_new_token(ADDR, 0.0)
    assert TokenManager.token_kind(token) == KIND_NEW_TOKEN
    assert tm.validate_new_token(token, ADDR, 3600.0)
    assert not tm.validate_new_token(token, ("192.0.2.9", 5000), 3600.0)
    assert not tm.validate_new_token(token, ADDR, 2 * 86400.0)
    # the two kinds are not interchangeable (§8.1.3)
    assert tm.validate_retry_token(token, ADDR, 1.0) is None


def test_new_token_is_bound_to_the_host_not_the_port() -> None:
    """RFC 9000 §8.1.3: the next connection comes from a new port of the same host."""
    manager = TokenManager(b"k" * 32)
    token = manager.create_new_token(("192.0.2.1", 50000), 100.0)
    assert manager.validate_new_token(token, ("192.0.2.1", 50001), 200.0)
    assert not manager.validate_new_token(token, ("192.0.2.2", 50000), 200.0)
