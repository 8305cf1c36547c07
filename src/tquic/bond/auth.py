"""Who may open a tunnel: bearer tokens kept as hashes, and a per-source failure limit.

The server never stores a client's token, only its SHA-256 (tokens are long
random strings, so a plain hash is enough; ``tquic bond hash-token`` prints
one).  A request carries ``authorization: Bearer TOKEN`` (RFC 6750 §2.1);
no header is answered 401, a wrong one 403.  Each source address may fail
``per_minute`` times in a sliding minute; beyond that it gets 429 without its
token being looked at, so guessing is slow.  Both tables are bounded.

With TLS client certificates (the server's ``client_ca``; tquic.bond.credentials)
the TLS layer has verified the certificate before any request arrives; it names the
client (``cert_sha256``, else ``name`` = its CN or a DNS name), and a token is not
needed.  A verified certificate that names no ``[[client]]`` is answered 403; with
no clients file at all, each certificate's CN is its own client.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

from tquic.bond.config import ClientEntry
from tquic.bond.credentials import certificate_names, certificate_sha256

MAX_SOURCES = 4096  # failure histories kept at once (the oldest source is forgotten)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class AuthResult:
    """``client`` is the entry when accepted; otherwise ``status`` says how to refuse."""

    client: ClientEntry | None
    status: int  # 200, 401, 403 or 429
    reason: str


class Authenticator:
    def __init__(self, clients: tuple[ClientEntry, ...], shared_token: str | None,
                 per_minute: int) -> None:
        self._clients = clients
        self._by_token = {c.token_sha256: c for c in clients if c.token_sha256}
        if shared_token is not None:
            self._by_token.setdefault(hash_token(shared_token), ClientEntry("default",
                                                                            hash_token(shared_token)))
        self._per_minute = per_minute
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self.refused = 0

    def check(self, source: str, authorization: bytes | None, now: float,
              certificate: Any = None) -> AuthResult:
        """``certificate``: the client's TLS certificate, already verified by the TLS
        layer against ``client_ca`` (None: no certificate, the token decides)."""
        history = self._failures.get(source)
        if history is not None:
            while history and history[0] < now - 60.0:
                history.popleft()
            if len(history) >= self._per_minute:
                self.refused += 1
                return AuthResult(None, 429, "too many failed attempts from this address")
        if certificate is not None:
            return self._by_certificate(source, certificate, now)
        if authorization is None:
            return self._fail(source, now, 401, "no credentials (authorization: Bearer TOKEN)")
        scheme, _, token = authorization.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return self._fail(source, now, 401, "authorization is not 'Bearer TOKEN'")
        digest = hash_token(token.strip())
        for known, entry in self._by_token.items():
            if hmac.compare_digest(known, digest):
                return AuthResult(entry, 200, "token")
        return self._fail(source, now, 403, "unknown token")

    def _by_certificate(self, source: str, certificate: Any, now: float) -> AuthResult:
        names = certificate_names(certificate)
        if not self._clients:
            if not names:
                return self._fail(source, now, 403, "the certificate has no subject CN")
            return AuthResult(ClientEntry(names[0]), 200, "certificate")
        digest = certificate_sha256(certificate)
        for entry in self._clients:
            if entry.cert_sha256 is not None and hmac.compare_digest(entry.cert_sha256, digest):
                return AuthResult(entry, 200, "certificate")
        for entry in self._clients:
            if entry.cert_sha256 is None and entry.name in names:
                return AuthResult(entry, 200, "certificate")
        shown = names[0] if names else digest[:16]
        return self._fail(source, now, 403, f"certificate {shown!r} names no [[client]]")

    def _fail(self, source: str, now: float, status: int, reason: str) -> AuthResult:
        self.refused += 1
        history = self._failures.get(source)
        if history is None:
            history = self._failures[source] = deque(maxlen=max(self._per_minute, 1))
            while len(self._failures) > MAX_SOURCES:
                self._failures.popitem(last=False)
        else:
            self._failures.move_to_end(source)
        history.append(now)
        return AuthResult(None, status, reason)
