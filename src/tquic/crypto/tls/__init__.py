"""TLS 1.3 for QUIC (RFC 9846, RFC 9001): client and server handshakes without a record layer."""

from tquic.crypto.tls.alerts import AlertDescription, TlsAlert
from tquic.crypto.tls.client import TlsClient
from tquic.crypto.tls.config import (
    DEFAULT_CIPHER_SUITES,
    DEFAULT_GROUPS,
    Epoch,
    SessionTicket,
    TlsConfig,
    TrafficSecret,
)
from tquic.crypto.tls.kex import NamedGroup
from tquic.crypto.tls.server import TlsServer
from tquic.crypto.tls.signatures import SignatureScheme
from tquic.crypto.tls.tickets import TicketStore

__all__ = [
    "DEFAULT_CIPHER_SUITES",
    "DEFAULT_GROUPS",
    "AlertDescription",
    "Epoch",
    "NamedGroup",
    "SessionTicket",
    "SignatureScheme",
    "TicketStore",
    "TlsAlert",
    "TlsClient",
    "TlsConfig",
    "TlsServer",
    "TrafficSecret",
]
