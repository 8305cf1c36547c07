"""Address-validation tokens: Retry tokens and NEW_TOKEN tokens (RFC 9000 §8.1.2-§8.1.4).

A token is AEAD-sealed (AES-256-GCM) under a server key, so it cannot be
forged or read; the client address is the associated data, so a token only
validates the address it was issued to; it carries its issue time, so it
expires.  A Retry token also carries the Original Destination CID and the
Retry Source CID the server must echo in its transport parameters (§7.3).
The first byte tells the two kinds apart (§8.1.3: a server must be able to).
"""

from __future__ import annotations

import functools
import os
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tquic.paths.network_path import Address

KIND_RETRY = 0x52  # "R"
KIND_NEW_TOKEN = 0x4E  # "N"
RETRY_TOKEN_LIFETIME = 10.0  # seconds: a Retry token is used within one RTT or so
NEW_TOKEN_LIFETIME = 24 * 3600.0  # §8.1.3: valid for a later connection
_NONCE = 12
_TIME = struct.Struct("!d")


@dataclass(frozen=True, slots=True)
class RetryTokenContents:
    """What a valid Retry token proves and carries."""

    original_destination_connection_id: bytes
    retry_source_connection_id: bytes


def _address_bytes(address: Address) -> bytes:
    return f"{address[0]}|{address[1]}".encode()


class TokenManager:
    """Issues and validates tokens with one 32-byte key (share it across a server farm)."""

    __slots__ = ("_aead", "_counter", "_prefix")

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("token key must be 32 bytes")
        self._aead = AESGCM(key)
        # Nonces: a random 4-byte prefix per manager and a counter from a random start.
        # Unique within the process, and across the servers sharing the key but for a
        # 2^-32 chance per pair; cheaper than os.urandom for every Retry of a flood.
        self._prefix = os.urandom(4)
        self._counter = int.from_bytes(os.urandom(8), "big")

    def _seal(self, kind: int, address: Address, body: bytes) -> bytes:
        self._counter = (self._counter + 1) & 0xFFFFFFFFFFFFFFFF
        nonce = self._prefix + self._counter.to_bytes(8, "big")
        aad = bytes((kind,)) + _address_bytes(address)
        return bytes((kind,)) + nonce + self._aead.encrypt(nonce, body, aad)

    def _open(self, kind: int, token: bytes, address: Address) -> bytes | None:
        if len(token) < 1 + _NONCE + 16 + _TIME.size or token[0] != kind:
            return None
        aad = bytes((kind,)) + _address_bytes(address)
        try:
            return self._aead.decrypt(token[1 : 1 + _NONCE], token[1 + _NONCE :], aad)
        except InvalidTag:
            return None

    def create_retry_token(self, address: Address, original_dcid: bytes, retry_scid: bytes,
                           now: float) -> bytes:
        """A token for a Retry packet sent to ``address`` (§8.1.2)."""
        body = (_TIME.pack(now) + bytes((len(original_dcid),)) + original_dcid
                + bytes((len(retry_scid),)) + retry_scid)
        return self._seal(KIND_RETRY, address, body)

    def validate_retry_token(self, token: bytes, address: Address,
                             now: float) -> RetryTokenContents | None:
        """The CIDs in a Retry token, or None when it is forged, for another address,
        expired or malformed (the server then closes with INVALID_TOKEN, §8.1.2)."""
        body = self._open(KIND_RETRY, token, address)
        if body is None:
            return None
        issued = _TIME.unpack_from(body)[0]
        if not issued - 1.0 <= now <= issued + RETRY_TOKEN_LIFETIME:
            return None
        pos = _TIME.size
        if pos >= len(body):
            return None
        n = body[pos]
        odcid = body[pos + 1 : pos + 1 + n]
        pos += 1 + n
        if pos >= len(body) or len(odcid) != n:
            return None
        m = body[pos]
        rscid = body[pos + 1 : pos + 1 + m]
        if len(rscid) != m or pos + 1 + m != len(body):
            return None
        return RetryTokenContents(odcid, rscid)

    def create_new_token(self, address: Address, now: float) -> bytes:
        """A NEW_TOKEN token for a future connection from ``address``'s host (§8.1.3).

        Bound to the IP address only: the next connection comes from a new port.
        """
        return self._seal(KIND_NEW_TOKEN, (address[0], 0), _TIME.pack(now))

    def validate_new_token(self, token: bytes, address: Address, now: float) -> bool:
        """True for an authentic, unexpired NEW_TOKEN token issued to ``address``'s host."""
        body = self._open(KIND_NEW_TOKEN, token, (address[0], 0))
        if body is None or len(body) != _TIME.size:
            return False
        issued = _TIME.unpack(body)[0]
        return bool(issued - 1.0 <= now <= issued + NEW_TOKEN_LIFETIME)

    @staticmethod
    def token_kind(token: bytes) -> int | None:
        """KIND_RETRY, KIND_NEW_TOKEN, or None for a token we did not make."""
        if token and token[0] in (KIND_RETRY, KIND_NEW_TOKEN):
            return token[0]
        return None


@functools.lru_cache(maxsize=16)
def shared_token_manager(key: bytes) -> TokenManager:
    """One TokenManager per key for the whole process: every server connection and the
    endpoint share it (an AES-GCM context is ~2.6 KB of OpenSSL memory, too much to
    hold per idle connection).  Its nonce counter is then unique process-wide too."""
    return TokenManager(key)
