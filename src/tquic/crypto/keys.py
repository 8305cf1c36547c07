"""Key derivation: HKDF-Expand-Label, Initial secrets, key update.

HKDF-Expand-Label is the TLS 1.3 construction (RFC 9846 §7.1) that QUIC reuses
for packet protection keys (RFC 9001 §5.1).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from enum import IntEnum


class CipherSuite(IntEnum):
    """TLS 1.3 cipher suites QUIC can use (RFC 9001 §5.3)."""

    AES_128_GCM_SHA256 = 0x1301
    AES_256_GCM_SHA384 = 0x1302
    CHACHA20_POLY1305_SHA256 = 0x1303


def suite_hash_name(suite: CipherSuite) -> str:
    """The hashlib name of the suite's hash function."""
    return "sha384" if suite == CipherSuite.AES_256_GCM_SHA384 else "sha256"


def hkdf_extract(hash_name: str, salt: bytes, ikm: bytes) -> bytes:
    """HKDF-Extract (RFC 5869 §2.2)."""
    if not salt:
        salt = bytes(hashlib.new(hash_name).digest_size)
    return hmac.digest(salt, ikm, hash_name)


def hkdf_expand(hash_name: str, prk: bytes, info: bytes, length: int) -> bytes:
    """HKDF-Expand (RFC 5869 §2.3)."""
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        block = hmac.digest(prk, block + info + bytes((counter,)), hash_name)
        out += block
        counter += 1
    return out[:length]


def hkdf_expand_label(
    hash_name: str, secret: bytes, label: bytes, context: bytes, length: int
) -> bytes:
    """HKDF-Expand-Label (RFC 9846 §7.1): label is given without the "tls13 " prefix."""
    full_label = b"tls13 " + label
    info = (
        struct.pack("!HB", length, len(full_label))
        + full_label
        + bytes((len(context),))
        + context
    )
    return hkdf_expand(hash_name, secret, info, length)
