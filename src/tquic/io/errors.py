"""The errors a live QUIC connection raises to its application (``tquic.io.protocol``
re-exports them where they were first defined)."""

from __future__ import annotations


class MigrationError(OSError):
    """``migrate()`` failed; the connection stays on its previous local address."""


class ConnectionClosedError(ConnectionError):
    """The QUIC connection is closed; carries the CONNECTION_CLOSE error code and reason."""

    def __init__(self, error_code: int, reason: str, by_peer: bool) -> None:
        who = "peer" if by_peer else "local"
        super().__init__(f"connection closed by {who}: error 0x{error_code:x} {reason}".rstrip())
        self.error_code = error_code
        self.reason = reason
        self.by_peer = by_peer
