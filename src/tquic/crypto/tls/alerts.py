"""TLS alerts (RFC 9846 §6) and the one exception every TLS failure raises.

QUIC carries no TLS alert records: an alert becomes a QUIC connection error
0x100 + AlertDescription (RFC 9001 §4.8).  :class:`TlsAlert` is therefore a
:class:`~tquic.wire.errors.QuicError` whose ``error_code`` is already that
value, so the engine can close with it directly.  A few QUIC-specific checks
are defined by RFC 9001 as PROTOCOL_VIOLATION rather than as an alert (a
non-empty legacy_session_id, §8.4; a bad max_early_data_size, §4.6.1; CRYPTO
data in 0-RTT, §8.3); those carry an explicit ``error_code`` override while
keeping the closest alert as ``description``.
"""

from __future__ import annotations

from enum import IntEnum

from tquic.wire.errors import QuicError, crypto_error

__all__ = ["AlertDescription", "TlsAlert"]


class AlertDescription(IntEnum):
    """AlertDescription values (RFC 9846 Appendix B.2)."""

    close_notify = 0
    unexpected_message = 10
    bad_record_mac = 20
    record_overflow = 22
    handshake_failure = 40
    bad_certificate = 42
    unsupported_certificate = 43
    certificate_revoked = 44
    certificate_expired = 45
    certificate_unknown = 46
    illegal_parameter = 47
    unknown_ca = 48
    access_denied = 49
    decode_error = 50
    decrypt_error = 51
    protocol_version = 70
    insufficient_security = 71
    internal_error = 80
    inappropriate_fallback = 86
    user_canceled = 90
    missing_extension = 109
    unsupported_extension = 110
    unrecognized_name = 112
    bad_certificate_status_response = 113
    unknown_psk_identity = 115
    certificate_required = 116
    general_error = 117
    no_application_protocol = 120


class TlsAlert(QuicError):
    """A fatal TLS alert (QUIC knows only fatal ones, RFC 9001 §4.8).

    ``error_code`` is ``crypto_error(description)`` unless the RFC names a
    transport error instead (``error_code`` override).
    """

    def __init__(
        self,
        description: AlertDescription,
        reason: str,
        *,
        error_code: int | None = None,
    ) -> None:
        super().__init__(crypto_error(description) if error_code is None else error_code, reason)
        self.description = description

    def __repr__(self) -> str:
        return (
            f"TlsAlert({self.description.name}, reason={self.reason!r}, "
            f"error_code={self.error_code:#x})"
        )
