"""Stateless session tickets (RFC 9846 §4.6.1) and 0-RTT anti-replay (§8).

Design: a ticket is the resumption state sealed with AES-256-GCM under a
server ticket key (``nonce ‖ ciphertext``), so the server keeps no per-session
state.  What must be remembered is which tickets have already carried 0-RTT:
:class:`TicketStore` keeps a bounded set of ticket digests for their
lifetime and accepts early data at most once per ticket (RFC 9846 §8.1
"single-use tickets" applied to 0-RTT only; a reused ticket still resumes,
with 1-RTT, since replaying a full handshake gains an attacker nothing).
Ticket age is also checked against a freshness window (RFC 9846 §8.3).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tquic.crypto.keys import CipherSuite
from tquic.crypto.tls.alerts import TlsAlert
from tquic.crypto.tls.codec import Reader, u16, u32, vec8, vec16

__all__ = ["TicketState", "TicketStore"]

_AAD = b"tquic session ticket v1"
_NONCE = 12


@dataclass(frozen=True, slots=True)
class TicketState:
    """What the server needs to resume: sealed inside the ticket."""

    cipher_suite: CipherSuite
    psk: bytes
    issued_at: float
    ticket_age_add: int
    lifetime: int
    alpn_protocol: str
    max_early_data: int
    server_name: str | None
    app_data: bytes = b""

    def encode(self) -> bytes:
        return (
            u16(self.cipher_suite)
            + vec8(self.psk)
            + int(self.issued_at * 1000).to_bytes(8, "big")
            + u32(self.ticket_age_add)
            + u32(self.lifetime)
            + vec8(self.alpn_protocol.encode())
            + u32(self.max_early_data)
            + vec8((self.server_name or "").encode())
            + vec16(self.app_data)
        )

    @classmethod
    def decode(cls, data: bytes) -> TicketState:
        r = Reader(data)
        suite = CipherSuite(r.u16())
        psk = r.vector(1, "psk")
        issued = int.from_bytes(r.raw(8), "big") / 1000
        age_add = r.u32()
        lifetime = r.u32()
        alpn = r.vector(1, "alpn").decode()
        max_early = r.u32()
        sni = r.vector(1, "sni").decode()
        app = r.vector(2, "app_data")
        r.done("ticket")
        return cls(suite, psk, issued, age_add, lifetime, alpn, max_early, sni or None, app)


class TicketStore:
    """A server's ticket key and its 0-RTT replay cache.

    Share one store between all connections of a server (and between server
    processes, by giving them the same ``key``).  ``clock`` lets a simulator
    run tickets in virtual time.
    """

    def __init__(
        self,
        key: bytes | None = None,
        *,
        clock: Callable[[], float] = time.time,
        freshness_window: float = 10.0,
        max_replay_entries: int = 100_000,
    ) -> None:
        if key is None:
            key = os.urandom(32)
        if len(key) != 32:
            raise ValueError("key must be 32 bytes (AES-256-GCM)")
        if freshness_window <= 0:
            raise ValueError("freshness_window must be positive")
        if max_replay_entries < 1:
            raise ValueError("max_replay_entries must be at least 1")
        self._aead = AESGCM(key)
        self.clock = clock
        self.freshness_window = freshness_window
        self._max_entries = max_replay_entries
        self._used: OrderedDict[bytes, float] = OrderedDict()

    def seal(self, state: TicketState) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, state.encode(), _AAD)

    def open(self, ticket: bytes) -> TicketState | None:
        """The state in ``ticket``, or None for a ticket we did not issue (RFC 9846 §4.2.11: ignore)."""
        if len(ticket) < _NONCE + 16:
            return None
        try:
            plain = self._aead.decrypt(ticket[:_NONCE], ticket[_NONCE:], _AAD)
            return TicketState.decode(plain)
        except (InvalidTag, TlsAlert, ValueError):
            return None

    def is_fresh(self, state: TicketState, obfuscated_age: int, now: float) -> bool:
        """RFC 9846 §8.3: the client's ticket age agrees with ours within the window."""
        client_age_ms = (obfuscated_age - state.ticket_age_add) % (1 << 32)
        server_age_ms = (now - state.issued_at) * 1000
        return abs(client_age_ms - server_age_ms) <= self.freshness_window * 1000

    def claim_early_data(self, ticket: bytes, now: float) -> bool:
        """True the first time a ticket carries 0-RTT; False for a replay (RFC 9846 §8.1, §8.3).

        An entry only needs to outlive the freshness window: a replay arriving
        later carries the same obfuscated age, which no longer matches the
        server's view, so :meth:`is_fresh` rejects it.  When the cache is full
        of live entries, 0-RTT is refused (fail closed) rather than forgetting.
        """
        used = self._used
        while used:
            digest, expiry = next(iter(used.items()))
            if expiry > now:
                break
            del used[digest]
        digest = hashlib.sha256(ticket).digest()
        if digest in used or len(used) >= self._max_entries:
            return False
        used[digest] = now + 2 * self.freshness_window
        return True
