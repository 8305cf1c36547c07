"""How the bond client reads a server's refusal: the HTTP status of the CONNECT-IP
request with its Proxy-Status details (RFC 9209), or a TLS certificate alert that
closed the handshake (RFC 9001 §4.8) — refusals that retrying cannot fix."""

from __future__ import annotations

from typing import Any


class Refused(ConnectionError):
    """The server refused the tunnel (401/403/429/5xx): ``status`` says which."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"the server refused the tunnel: {status} {detail}".rstrip())
        self.status = status


def proxy_status_details(headers: Any) -> str:
    """The ``details`` parameter of a Proxy-Status header (RFC 9209 §2.1.2), or ""."""
    for name, value in headers:
        if name == b"proxy-status":
            _, found, rest = value.decode("latin-1").partition('details="')
            if found:
                return str(rest.split('"', 1)[0])
    return ""


def certificate_refusal(exc: BaseException | None) -> Refused | None:
    """The server closed the handshake with a TLS certificate alert (RFC 9001 §4.8:
    CRYPTO_ERROR 0x100 + alert): a 403 that retrying with the same files cannot fix."""
    from tquic.bond.credentials import CERTIFICATE_ALERTS

    code = getattr(exc, "error_code", None)
    if not isinstance(code, int) or not 0x100 <= code <= 0x1FF or not getattr(exc, "by_peer",
                                                                              False):
        return None
    alert = CERTIFICATE_ALERTS.get(code - 0x100)
    if alert is None:
        return None
    hint = ("give --cert FILE --key FILE (a certificate from the server's client CA)"
            if alert == "certificate_required" else
            "the server does not accept our --cert; ask its operator for a new one")
    return Refused(403, f"TLS {alert}: {hint}")
