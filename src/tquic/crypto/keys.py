"""Key derivation: HKDF-Expand-Label, Initial secrets, key update.

HKDF-Expand-Label is the TLS 1.3 construction (RFC 9846 §7.1) that QUIC reuses
for packet protection keys (RFC 9001 §5.1).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import struct
from collections.abc import Callable
from enum import IntEnum

from tquic.wire.version import QUIC_V1, QUIC_V2

__all__ = [
    "INITIAL_SALT_V1",
    "INITIAL_SALT_V2",
    "IV_LENGTH",
    "QUIC_V1",
    "QUIC_V2",
    "CipherSuite",
    "UnsupportedVersionError",
    "hkdf_expand",
    "hkdf_expand_label",
    "hkdf_extract",
    "hmac_digest",
    "initial_secrets",
    "key_length",
    "keyed_hmac",
    "next_generation_secret",
    "packet_keys",
    "prepared_hmac",
    "suite_hash_name",
]


class CipherSuite(IntEnum):
    """TLS 1.3 cipher suites QUIC can use (RFC 9001 §5.3)."""

    AES_128_GCM_SHA256 = 0x1301
    AES_256_GCM_SHA384 = 0x1302
    CHACHA20_POLY1305_SHA256 = 0x1303


def suite_hash_name(suite: CipherSuite) -> str:
    """The hashlib name of the suite's hash function."""
    return "sha384" if suite == CipherSuite.AES_256_GCM_SHA384 else "sha256"


@functools.lru_cache(maxsize=8)
def digest_size(hash_name: str) -> int:
    """The output size of a hashlib hash, without building a hash object every time."""
    return hashlib.new(hash_name).digest_size


# HMAC (RFC 2104) over hashlib for the two hashes TLS 1.3 and QUIC use: OpenSSL 3's
# one-shot HMAC() (behind hmac.digest) fetches its MAC implementation on every call,
# which made it ~1.5-3.6 µs here against ~1 µs for the two hash calls below; a
# handshake runs ~40 of them (HKDF, Finished).  Other hashes go to hmac.digest.
_HMAC_HASHES = {"sha256": (hashlib.sha256, 64), "sha384": (hashlib.sha384, 128)}
_IPAD = bytes(b ^ 0x36 for b in range(256))  # bytes.translate tables: key XOR ipad
_OPAD = bytes(b ^ 0x5C for b in range(256))


def hmac_digest(hash_name: str, key: bytes, msg: bytes) -> bytes:
    """HMAC(key, msg) with ``hash_name``; the same bytes as ``hmac.digest``."""
    entry = _HMAC_HASHES.get(hash_name)
    if entry is None:
        return hmac.digest(key, msg, hash_name)
    new, block = entry
    if len(key) > block:  # RFC 2104 §2: a key longer than a block is hashed first
        key = new(key).digest()
    key = key.ljust(block, b"\0")
    inner = new(key.translate(_IPAD) + msg).digest()
    return new(key.translate(_OPAD) + inner).digest()


def prepared_hmac(hash_name: str, key: bytes) -> Callable[[bytes], bytes]:
    """``msg -> HMAC(key, msg)`` with the key's padded blocks hashed once: each message
    then costs two short hashes (RFC 2104 §2).  For a key used several times, e.g. a
    traffic secret's three packet-key derivations."""
    entry = _HMAC_HASHES.get(hash_name)
    if entry is None:
        return functools.partial(hmac.digest, key, digest=hash_name)
    new, block = entry
    if len(key) > block:  # RFC 2104 §2
        key = new(key).digest()
    padded = key.ljust(block, b"\0")
    inner = new(padded.translate(_IPAD))
    outer = new(padded.translate(_OPAD))

    def digest(msg: bytes) -> bytes:
        h = inner.copy()
        h.update(msg)
        o = outer.copy()
        o.update(h.digest())
        return o.digest()
    return digest


@functools.lru_cache(maxsize=16)
def keyed_hmac(hash_name: str, key: bytes) -> Callable[[bytes], bytes]:
    """``prepared_hmac`` kept for a long-lived key used many times (a server's stateless
    reset key: one HMAC per CID issued); never for per-connection secrets, which a cache
    would keep alive."""
    return prepared_hmac(hash_name, key)


def hkdf_extract(hash_name: str, salt: bytes, ikm: bytes) -> bytes:
    """HKDF-Extract (RFC 5869 §2.2)."""
    if not salt:
        salt = bytes(digest_size(hash_name))
    return hmac_digest(hash_name, salt, ikm)


def hkdf_expand(hash_name: str, prk: bytes, info: bytes, length: int) -> bytes:
    """HKDF-Expand (RFC 5869 §2.3)."""
    if length <= 32:  # one block of SHA-256 or SHA-384: every QUIC key, IV and secret
        return hmac_digest(hash_name, prk, info + b"\x01")[:length]
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        block = hmac_digest(hash_name, prk, block + info + bytes((counter,)))
        out += block
        counter += 1
    return out[:length]


def hkdf_expand_label(
    hash_name: str, secret: bytes, label: bytes, context: bytes, length: int
) -> bytes:
    """HKDF-Expand-Label (RFC 9846 §7.1): label is given without the "tls13 " prefix."""
    return hkdf_expand(hash_name, secret,
                       _label_prefix(label, length) + bytes((len(context),)) + context, length)


@functools.lru_cache(maxsize=128)
def _label_prefix(label: bytes, length: int) -> bytes:
    """The HkdfLabel up to its context (RFC 9846 §7.1), for the few labels in use: a
    handshake derives ~30 keys and secrets from a dozen (label, length) pairs."""
    full_label = b"tls13 " + label
    return struct.pack("!HB", length, len(full_label)) + full_label


# --- QUIC packet protection keys (RFC 9001 §5.1, §5.2, §6.1; RFC 9369 §3.3) ---

# RFC 9001 §5.2 and RFC 9369 §3.3.1.
INITIAL_SALT_V1 = bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a")
INITIAL_SALT_V2 = bytes.fromhex("0dede3def700a6db819381be6e269dcbf9bd2ed9")

# Length of the AEAD key (and of the header protection key, which uses the same
# cipher family at the same strength: RFC 9001 §5.4.3, §5.4.4).
_KEY_LENGTH: dict[CipherSuite, int] = {
    CipherSuite.AES_128_GCM_SHA256: 16,
    CipherSuite.AES_256_GCM_SHA384: 32,
    CipherSuite.CHACHA20_POLY1305_SHA256: 32,
}
# Every TLS 1.3 AEAD QUIC can use has a 12-byte nonce (RFC 9001 §5.1: "quic iv"
# length is the nonce length, at least 8).
IV_LENGTH = 12


class UnsupportedVersionError(ValueError):
    """Key derivation was asked for a QUIC version whose salt and labels are unknown."""


class _Labels:
    """The HKDF labels of one QUIC version (RFC 9001 §5.1, §6.1; RFC 9369 §3.3.2)."""

    __slots__ = ("hp", "iv", "key", "ku", "salt")

    def __init__(self, prefix: bytes, salt: bytes) -> None:
        self.key = prefix + b" key"
        self.iv = prefix + b" iv"
        self.hp = prefix + b" hp"
        self.ku = prefix + b" ku"
        self.salt = salt


_LABELS: dict[int, _Labels] = {
    QUIC_V1: _Labels(b"quic", INITIAL_SALT_V1),
    QUIC_V2: _Labels(b"quicv2", INITIAL_SALT_V2),
}


def _labels(version: int) -> _Labels:
    labels = _LABELS.get(version)
    if labels is None:
        raise UnsupportedVersionError(f"no packet protection keys for version {version:#010x}")
    return labels


def key_length(suite: CipherSuite) -> int:
    """Length in bytes of the AEAD key and of the header protection key for ``suite``."""
    return _KEY_LENGTH[suite]


def initial_secrets(version: int, dcid: bytes) -> tuple[bytes, bytes]:
    """The (client, server) Initial secrets for the client's first Destination CID.

    RFC 9001 §5.2: HKDF-Extract with the version's salt (RFC 9369 §3.3.1 for v2),
    then HKDF-Expand-Label "client in" / "server in" with SHA-256, 32 bytes.  The
    labels of this step are the same in both versions.
    """
    initial_secret = hkdf_extract("sha256", _labels(version).salt, dcid)
    client = hkdf_expand_label("sha256", initial_secret, b"client in", b"", 32)
    server = hkdf_expand_label("sha256", initial_secret, b"server in", b"", 32)
    return client, server


@functools.lru_cache(maxsize=16)
def _packet_key_infos(suite: CipherSuite, version: int) -> tuple[str, int, bytes, bytes, bytes]:
    """(hash name, key length, and the HKDF-Expand inputs of "quic key", "quic iv" and
    "quic hp": HkdfLabel with an empty context, then the counter byte 0x01) for one
    suite and version (RFC 9846 §7.1, RFC 5869 §2.3: one block covers every length)."""
    labels = _labels(version)
    length = _KEY_LENGTH[suite]

    def info(label: bytes, size: int) -> bytes:
        return _label_prefix(label, size) + b"\x00\x01"
    return (suite_hash_name(suite), length, info(labels.key, length),
            info(labels.iv, IV_LENGTH), info(labels.hp, length))


def packet_keys(suite: CipherSuite, secret: bytes, version: int) -> tuple[bytes, bytes, bytes]:
    """(key, iv, hp) derived from a traffic secret (RFC 9001 §5.1; RFC 9369 §3.3.2 labels).

    The same three HKDF-Expand-Label outputs as ``hkdf_expand_label``, with the HMAC key
    pads of ``secret`` hashed once for the three (each derivation then hashes its own
    short input only): 7 of these per handshake and side."""
    hash_name, length, key_info, iv_info, hp_info = _packet_key_infos(suite, version)
    # HKDF-Expand's first block T(1) = HMAC(secret, info | 0x01) (RFC 5869 §2.3), which
    # the infos end with; one block covers every length here.
    mac = prepared_hmac(hash_name, secret)
    return mac(key_info)[:length], mac(iv_info)[:IV_LENGTH], mac(hp_info)[:length]


def next_generation_secret(suite: CipherSuite, secret: bytes, version: int) -> bytes:
    """The secret of the next key phase (RFC 9001 §6.1 "quic ku"; RFC 9369 "quicv2 ku").

    secret_<n+1> = HKDF-Expand-Label(secret_<n>, "quic ku", "", Hash.length).
    """
    hash_name = suite_hash_name(suite)
    length = digest_size(hash_name)
    return hkdf_expand_label(hash_name, secret, _labels(version).ku, b"", length)
