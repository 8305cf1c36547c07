"""Who may use the TCP lane on the server: the same clients as the tunnel.

The lane does not decide who its clients are; it asks an :data:`Authenticator`
(the hook the bond server plugs its client authentication into: bearer
tokens, TLS client certificates).  :class:`BearerTokens` is the plain one:
``authorization: Bearer <token>`` checked against SHA-256 hashes (the server
never keeps the tokens themselves), compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

from tquic.h3.api import ServerTunnel


@dataclass(frozen=True, slots=True)
class AuthResult:
    """``client`` names who was let in; ``status`` is 401 (no credentials), 403
    (wrong ones) or 429 (too many failures) when refused."""

    client: str | None
    status: int = 200

    @property
    def ok(self) -> bool:
        return self.client is not None and self.status == 200


Authenticator = Callable[[ServerTunnel], Awaitable[AuthResult]]


def token_hash(token: str) -> str:
    """What a server stores for a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def bearer_token(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The token of an ``authorization: Bearer …`` header (RFC 6750 §2.1), or None."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


class BearerTokens:
    """Bearer-token clients: ``{client name: sha256 hex of its token}``."""

    def __init__(self, hashes: Mapping[str, str]) -> None:
        for name, digest in hashes.items():
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest.lower()):
                raise ValueError(f"client {name!r}: token hash must be 64 hex digits (sha256)")
        self._hashes = {name: bytes.fromhex(digest) for name, digest in hashes.items()}

    @classmethod
    def from_tokens(cls, tokens: Mapping[str, str]) -> BearerTokens:
        return cls({name: token_hash(token) for name, token in tokens.items()})

    def check(self, token: str | None) -> AuthResult:
        if token is None:
            return AuthResult(None, 401)
        digest = hashlib.sha256(token.encode()).digest()
        found: str | None = None
        for name, expected in self._hashes.items():  # no early exit: same time for all
            if hmac.compare_digest(digest, expected):
                found = name
        return AuthResult(found) if found is not None else AuthResult(None, 403)

    async def __call__(self, tunnel: ServerTunnel) -> AuthResult:
        return self.check(bearer_token(tunnel.request.headers))


async def allow_anyone(tunnel: ServerTunnel) -> AuthResult:
    """No authentication (tests, or a server reachable only from trusted hosts)."""
    return AuthResult("anyone")
