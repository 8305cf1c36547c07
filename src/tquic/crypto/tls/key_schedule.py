"""The TLS 1.3 key schedule (RFC 9846 §7.1) and the transcript hash (§4.4.1)."""

from __future__ import annotations

import functools
import hashlib
from typing import Any

from tquic.crypto.keys import (
    CipherSuite,
    digest_size,
    hkdf_expand_label,
    hkdf_extract,
    hmac_digest,
    suite_hash_name,
)
from tquic.crypto.tls.messages import HandshakeType

__all__ = ["KeySchedule", "Transcript", "finished_verify_data", "resumption_psk"]


def derive_secret(hash_name: str, secret: bytes, label: bytes, transcript_hash: bytes) -> bytes:
    """Derive-Secret(Secret, Label, Messages) with the hash already taken (RFC 9846 §7.1)."""
    return hkdf_expand_label(
        hash_name, secret, label, transcript_hash, digest_size(hash_name)
    )


def finished_verify_data(hash_name: str, base_key: bytes, transcript_hash: bytes) -> bytes:
    """RFC 9846 §4.4.4: HMAC(finished_key, Transcript-Hash(...))."""
    size = digest_size(hash_name)
    finished_key = hkdf_expand_label(hash_name, base_key, b"finished", b"", size)
    return hmac_digest(hash_name, finished_key, transcript_hash)


def resumption_psk(hash_name: str, resumption_secret: bytes, ticket_nonce: bytes) -> bytes:
    """RFC 9846 §4.6.1: HKDF-Expand-Label(resumption_secret, "resumption", nonce, Hash.length)."""
    size = digest_size(hash_name)
    return hkdf_expand_label(hash_name, resumption_secret, b"resumption", ticket_nonce, size)


@functools.lru_cache(maxsize=4)
def _empty_hash(hash_name: str) -> bytes:
    return hashlib.new(hash_name).digest()


@functools.lru_cache(maxsize=4)
def _no_psk_early(hash_name: str) -> tuple[bytes, bytes]:
    """Without a PSK the Early Secret and the salt "derived" from it are constants of
    the hash (RFC 9846 §7.1: HKDF-Extract(0, 0), then Derive-Secret(., "derived", "")):
    computed once, not in every full handshake."""
    zeros = bytes(digest_size(hash_name))
    early = hkdf_extract(hash_name, zeros, zeros)
    return early, derive_secret(hash_name, early, b"derived", _empty_hash(hash_name))


class KeySchedule:
    """Early → Handshake → Main secret for one connection (RFC 9846 §7.1 diagram)."""

    __slots__ = (
        "_handshake_salt",
        "early_secret",
        "handshake_secret",
        "hash_len",
        "hash_name",
        "main_secret",
        "suite",
    )

    def __init__(self, suite: CipherSuite, psk: bytes | None = None) -> None:
        self.suite = suite
        self.hash_name = suite_hash_name(suite)
        self.hash_len = digest_size(self.hash_name)
        # "If a given secret is not available, then the 0-value ... is used."
        self._handshake_salt = b""  # Derive-Secret(early, "derived", ""), when first needed
        if psk is None:
            self.early_secret, self._handshake_salt = _no_psk_early(self.hash_name)
        else:
            self.early_secret = hkdf_extract(self.hash_name, bytes(self.hash_len), psk)
        self.handshake_secret = b""
        self.main_secret = b""

    def _empty_hash(self) -> bytes:
        return _empty_hash(self.hash_name)

    def derive(self, secret: bytes, label: bytes, transcript_hash: bytes) -> bytes:
        return derive_secret(self.hash_name, secret, label, transcript_hash)

    def binder_key(self) -> bytes:
        # Resumption PSKs use "res binder" (RFC 9846 §7.1).
        return self.derive(self.early_secret, b"res binder", self._empty_hash())

    def client_early_traffic_secret(self, client_hello_hash: bytes) -> bytes:
        return self.derive(self.early_secret, b"c e traffic", client_hello_hash)

    def enter_handshake(self, shared_secret: bytes) -> None:
        salt = self._handshake_salt or self.derive(self.early_secret, b"derived",
                                                   self._empty_hash())
        self.handshake_secret = hkdf_extract(self.hash_name, salt, shared_secret)

    def handshake_traffic_secrets(self, transcript_hash: bytes) -> tuple[bytes, bytes]:
        """(client, server) handshake traffic secrets over ClientHello...ServerHello."""
        return (
            self.derive(self.handshake_secret, b"c hs traffic", transcript_hash),
            self.derive(self.handshake_secret, b"s hs traffic", transcript_hash),
        )

    def enter_main(self) -> None:
        salt = self.derive(self.handshake_secret, b"derived", self._empty_hash())
        self.main_secret = hkdf_extract(self.hash_name, salt, bytes(self.hash_len))

    def application_traffic_secrets(self, transcript_hash: bytes) -> tuple[bytes, bytes]:
        """(client, server) application traffic secrets over ClientHello...server Finished."""
        return (
            self.derive(self.main_secret, b"c ap traffic", transcript_hash),
            self.derive(self.main_secret, b"s ap traffic", transcript_hash),
        )

    def exporter_secret(self, transcript_hash: bytes) -> bytes:
        return self.derive(self.main_secret, b"exp master", transcript_hash)

    def resumption_secret(self, transcript_hash: bytes) -> bytes:
        """Over ClientHello...client Finished."""
        return self.derive(self.main_secret, b"res master", transcript_hash)


class Transcript:
    """The handshake messages so far (RFC 9846 §4.4.1), hashed on demand.

    The bytes are kept (a handshake is a few KiB) because the hash function
    is only known once the ServerHello names the suite, and a PSK binder is
    computed before that with the PSK's hash.  Each hash in use is kept running
    and fed only the bytes added since it was last asked for: a handshake asks for
    the transcript hash five or six times, the whole transcript was hashed each time.
    """

    __slots__ = ("_data", "_running")

    def __init__(self) -> None:
        self._data = bytearray()
        self._running: dict[str, tuple[Any, int]] = {}  # hash name: (hash, bytes fed)

    def add(self, message: bytes) -> None:
        self._data += message

    def digest(self, hash_name: str, extra: bytes = b"") -> bytes:
        data = self._data
        entry = self._running.get(hash_name)
        if entry is None:
            h = hashlib.new(hash_name, data)
        else:
            h, fed = entry
            if fed < len(data):
                h.update(data[fed:])
        self._running[hash_name] = (h, len(data))
        if extra:
            h = h.copy()  # the running hash stays at the transcript itself
            h.update(extra)
        return bytes(h.digest())

    def replace_with_message_hash(self, hash_name: str) -> None:
        """After a HelloRetryRequest, ClientHello1 becomes message_hash (RFC 9846 §4.4.1)."""
        digest = hashlib.new(hash_name, self._data).digest()
        self._data = bytearray(bytes((HandshakeType.message_hash, 0, 0, len(digest))) + digest)
        self._running = {}
