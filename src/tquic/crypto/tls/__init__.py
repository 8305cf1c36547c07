"""TLS 1.3 for QUIC (RFC 9846, RFC 9001 §4 and §8): handshakes without a record layer.

The QUIC engine drives a :class:`TlsClient` or :class:`TlsServer` with CRYPTO
bytes per :class:`Epoch` (``receive``), and collects what to send
(``pop_output``) and every new traffic secret (``pop_secrets``).  Every failure
is a :class:`TlsAlert`, a ``QuicError`` whose ``error_code`` is 0x100 + alert
(or the transport error RFC 9001 names, e.g. PROTOCOL_VIOLATION); after one,
the endpoint stays failed.

Files: ``messages``/``extensions``/``codec`` (wire formats), ``key_schedule``,
``kex`` (X25519, P-256, P-384), ``signatures`` (ECDSA, RSA-PSS, Ed25519),
``client``/``server`` (state machines on top of ``endpoint``), ``verify``
(chain, validity and host name checks with ``cryptography.x509.verification``),
``certs`` (generation and loading), ``tickets`` (stateless AEAD-sealed
tickets and the 0-RTT replay cache), ``keylog`` (SSLKEYLOGFILE).

Choices: resumption is psk_dhe_ke only; tickets are sealed resumption state
(no server-side session store), 0-RTT is accepted at most once per ticket
within a ticket-age freshness window; a server that requires client
certificates does not resume; the server's 1-RTT read secret is released only
after the client's Finished verifies.
"""

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
