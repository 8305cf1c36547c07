"""QUIC key schedule: Initial secrets, packet keys and key update, byte for byte.

Vectors from RFC 9001 Appendix A.1 and A.5, and RFC 9369 Appendix A.1 and A.5.
"""

from __future__ import annotations

import hmac

import pytest

from tquic.crypto.keys import (
    QUIC_V1,
    QUIC_V2,
    CipherSuite,
    UnsupportedVersionError,
    hkdf_expand_label,
    hkdf_extract,
    hmac_digest,
    initial_secrets,
    keyed_hmac,
    next_generation_secret,
    packet_keys,
)

DCID = bytes.fromhex("8394c8f03e515708")
AES128 = CipherSuite.AES_128_GCM_SHA256
CHACHA = CipherSuite.CHACHA20_POLY1305_SHA256
CHACHA_SECRET = bytes.fromhex("9ac312a7f877468ebe69422748ad00a15443f18203a07d6060f688f30f21632b")


def test_rfc9001_a1_initial_secret_extract() -> None:
    salt = bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a")
    assert hkdf_extract("sha256", salt, DCID) == bytes.fromhex(
        "7db5df06e7a69e432496adedb00851923595221596ae2ae9fb8115c1e9ed0a44"
    )


def test_rfc9001_a1_client_and_server_initial_secrets() -> None:
    client, server = initial_secrets(QUIC_V1, DCID)
    assert client == bytes.fromhex(
        "c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea"
    )
    assert server == bytes.fromhex(
        "3c199828fd139efd216c155ad844cc81fb82fa8d7446fa7d78be803acdda951b"
    )


def test_rfc9001_a1_client_initial_keys() -> None:
    client, _ = initial_secrets(QUIC_V1, DCID)
    key, iv, hp = packet_keys(AES128, client, QUIC_V1)
    assert key == bytes.fromhex("1f369613dd76d5467730efcbe3b1a22d")
    assert iv == bytes.fromhex("fa044b2f42a3fd3b46fb255c")
    assert hp == bytes.fromhex("9f50449e04a0e810283a1e9933adedd2")


def test_rfc9001_a1_server_initial_keys() -> None:
    _, server = initial_secrets(QUIC_V1, DCID)
    key, iv, hp = packet_keys(AES128, server, QUIC_V1)
    assert key == bytes.fromhex("cf3a5331653c364c88f0f379b6067e37")
    assert iv == bytes.fromhex("0ac1493ca1905853b0bba03e")
    assert hp == bytes.fromhex("c206b8d9b9f0f37644430b490eeaa314")


def test_rfc9369_a1_v2_initial_secrets() -> None:
    client, server = initial_secrets(QUIC_V2, DCID)
    assert client == bytes.fromhex(
        "14ec9d6eb9fd7af83bf5a668bc17a7e283766aade7ecd0891f70f9ff7f4bf47b"
    )
    assert server == bytes.fromhex(
        "0263db1782731bf4588e7e4d93b7463907cb8cd8200b5da55a8bd488eafc37c1"
    )


def test_rfc9369_a1_v2_client_keys_use_quicv2_labels() -> None:
    client, _ = initial_secrets(QUIC_V2, DCID)
    key, iv, hp = packet_keys(AES128, client, QUIC_V2)
    assert key == bytes.fromhex("8b1a0bc121284290a29e0971b5cd045d")
    assert iv == bytes.fromhex("91f73e2351d8fa91660e909f")
    assert hp == bytes.fromhex("45b95e15235d6f45a6b19cbcb0294ba9")


def test_rfc9369_a1_v2_server_keys_use_quicv2_labels() -> None:
    _, server = initial_secrets(QUIC_V2, DCID)
    key, iv, hp = packet_keys(AES128, server, QUIC_V2)
    assert key == bytes.fromhex("82db637861d55e1d011f19ea71d5d2a7")
    assert iv == bytes.fromhex("dd13c276499c0249d3310652")
    assert hp == bytes.fromhex("edf6d05c83121201b436e16877593c3a")


def test_rfc9001_a5_chacha20_keys_and_key_update_secret() -> None:
    key, iv, hp = packet_keys(CHACHA, CHACHA_SECRET, QUIC_V1)
    assert key == bytes.fromhex(
        "c6d98ff3441c3fe1b2182094f69caa2ed4b716b65488960a7a984979fb23e1c8"
    )
    assert iv == bytes.fromhex("e0459b3474bdd0e44a41c144")
    assert hp == bytes.fromhex(
        "25a282b9e82f06f21f488917a4fc8f1b73573685608597d0efcb076b0ab7a7a4"
    )
    assert next_generation_secret(CHACHA, CHACHA_SECRET, QUIC_V1) == bytes.fromhex(
        "1223504755036d556342ee9361d253421a826c9ecdf3c7148684b36b714881f9"
    )


def test_rfc9369_a5_v2_chacha20_keys_and_quicv2_ku() -> None:
    key, iv, hp = packet_keys(CHACHA, CHACHA_SECRET, QUIC_V2)
    assert key == bytes.fromhex(
        "3bfcddd72bcf02541d7fa0dd1f5f9eeea817e09a6963a0e6c7df0f9a1bab90f2"
    )
    assert iv == bytes.fromhex("a6b5bc6ab7dafce30ffff5dd")
    assert hp == bytes.fromhex(
        "d659760d2ba434a226fd37b35c69e2da8211d10c4f12538787d65645d5d1b8e2"
    )
    assert next_generation_secret(CHACHA, CHACHA_SECRET, QUIC_V2) == bytes.fromhex(
        "c69374c49e3d2a9466fa689e49d476db5d0dfbc87d32ceeaa6343fd0ae4c7d88"
    )


def test_rfc9369_retry_key_and_nonce_derive_from_the_v2_retry_secret() -> None:
    # RFC 9369 §3.3.3: the Retry key and nonce are "quicv2 key"/"quicv2 iv" of a
    # fixed secret, which exercises the v2 labels on a second input.
    secret = bytes.fromhex("c4dd2484d681aefa4ff4d69c2c20299984a765a5d3c31982f38fc74162155e9f")
    key, iv, _ = packet_keys(AES128, secret, QUIC_V2)
    assert key == bytes.fromhex("8fb4b01b56ac48e260fbcbcead7ccc92")
    assert iv == bytes.fromhex("d86969bc2d7c6d9990efb04a")


def test_key_lengths_follow_the_suite() -> None:
    secret48 = bytes(range(48))
    key, iv, hp = packet_keys(CipherSuite.AES_256_GCM_SHA384, secret48, QUIC_V1)
    assert (len(key), len(iv), len(hp)) == (32, 12, 32)
    # RFC 9001 §6.1: the next secret has the hash length (SHA-384 → 48 bytes).
    assert len(next_generation_secret(CipherSuite.AES_256_GCM_SHA384, secret48, QUIC_V1)) == 48
    assert hkdf_expand_label("sha384", secret48, b"quic key", b"", 32) == key


def test_unknown_version_has_no_keys() -> None:
    with pytest.raises(UnsupportedVersionError):
        initial_secrets(0x1A2A3A4A, DCID)
    with pytest.raises(UnsupportedVersionError):
        packet_keys(AES128, bytes(32), 0xFF00001D)


@pytest.mark.parametrize("hash_name", ["sha256", "sha384", "sha512"])
@pytest.mark.parametrize("key_length", [0, 16, 32, 48, 64, 65, 128, 129, 300])
def test_hmac_digest_is_rfc2104_hmac(hash_name: str, key_length: int) -> None:
    # The hashlib-based HMAC the key schedule uses gives hmac.digest's bytes for every
    # key length: shorter than a block (padded), a whole block, longer (hashed first).
    key = bytes((7 * i + key_length) & 0xFF for i in range(key_length))
    for message in (b"", b"\x01", bytes(range(256)) * 3):
        assert hmac_digest(hash_name, key, message) == hmac.digest(key, message, hash_name)


@pytest.mark.parametrize("suite", list(CipherSuite))
@pytest.mark.parametrize("version", [QUIC_V1, QUIC_V2])
def test_packet_keys_equal_three_expand_labels(suite: CipherSuite, version: int) -> None:
    # packet_keys hashes the secret's HMAC pads once for its three outputs: the same
    # bytes as three separate HKDF-Expand-Label calls (RFC 9001 §5.1), every suite.
    hash_name = "sha384" if suite == CipherSuite.AES_256_GCM_SHA384 else "sha256"
    size = 32 if suite != AES128 else 16
    prefix = b"quicv2" if version == QUIC_V2 else b"quic"
    for secret in (bytes(range(32)), bytes(range(48)), CHACHA_SECRET):
        assert packet_keys(suite, secret, version) == (
            hkdf_expand_label(hash_name, secret, prefix + b" key", b"", size),
            hkdf_expand_label(hash_name, secret, prefix + b" iv", b"", 12),
            hkdf_expand_label(hash_name, secret, prefix + b" hp", b"", size),
        )


@pytest.mark.parametrize("hash_name", ["sha256", "sha384", "sha512"])
@pytest.mark.parametrize("key_length", [0, 32, 64, 65, 200])
def test_keyed_hmac_is_rfc2104_hmac(hash_name: str, key_length: int) -> None:
    # The prepared HMAC of a fixed key (stateless reset tokens) gives hmac.digest's
    # bytes, message after message (each starts from the key's own pad state).
    key = bytes((5 * i + 1) & 0xFF for i in range(key_length))
    mac = keyed_hmac(hash_name, key)
    for message in (b"", b"\x01", bytes(range(256)) * 3, b"\x01"):
        assert mac(message) == hmac.digest(key, message, hash_name)
