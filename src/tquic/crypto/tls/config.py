"""TLS configuration and the small values exchanged with the QUIC engine.

``TlsConfig`` is validated when it is built: every bad field raises
``ValueError`` naming the field (DESIGN.md, "Configuration is validated when it
is built").
"""

from __future__ import annotations

import ipaddress
import os
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tquic.crypto.keys import CipherSuite
from tquic.crypto.tls.alerts import TlsAlert
from tquic.crypto.tls.codec import Reader, u16, u32, vec8, vec16
from tquic.crypto.tls.kex import NamedGroup
from tquic.crypto.tls.signatures import (
    DEFAULT_SIGNATURE_SCHEMES,
    PrivateKey,
    SignatureScheme,
    scheme_fits_key,
)
from tquic.wire.epochs import Epoch as Epoch  # the one enum (RFC 9001 §4)

__all__ = [
    "DEFAULT_CIPHER_SUITES",
    "DEFAULT_GROUPS",
    "MAX_TICKET_LIFETIME",
    "QUIC_MAX_EARLY_DATA",
    "Epoch",
    "SessionTicket",
    "TlsConfig",
    "TrafficSecret",
]

# RFC 9846 §4.6.1: lifetimes never exceed 7 days.
MAX_TICKET_LIFETIME = 604800
# RFC 9001 §4.6.1: the only max_early_data_size QUIC allows.
QUIC_MAX_EARLY_DATA = 0xFFFFFFFF

DEFAULT_CIPHER_SUITES: tuple[CipherSuite, ...] = (
    CipherSuite.AES_128_GCM_SHA256,
    CipherSuite.AES_256_GCM_SHA384,
    CipherSuite.CHACHA20_POLY1305_SHA256,
)
DEFAULT_GROUPS: tuple[NamedGroup, ...] = (
    NamedGroup.x25519,
    NamedGroup.secp256r1,
    NamedGroup.secp384r1,
)


@dataclass(frozen=True, slots=True)
class TrafficSecret:
    """A new traffic secret for one direction of one epoch (RFC 9001 §4.1.4)."""

    epoch: Epoch
    is_write: bool
    suite: CipherSuite
    secret: bytes

    def __repr__(self) -> str:  # never print key material
        return f"TrafficSecret({self.epoch.name}, is_write={self.is_write}, {self.suite.name})"


@dataclass(frozen=True, slots=True)
class SessionTicket:
    """What a client keeps to resume a session (RFC 9846 §4.6.1), with 0-RTT state.

    ``peer_transport_parameters`` are the server's parameters of the connection
    that issued the ticket: a client sending 0-RTT must use them (RFC 9000
    §7.4.1).  ``received_at`` is in the clock of the TlsConfig that received it.
    """

    ticket: bytes
    psk: bytes
    cipher_suite: CipherSuite
    server_name: str | None
    alpn_protocol: str | None
    ticket_age_add: int
    lifetime: int
    received_at: float
    max_early_data: int
    peer_transport_parameters: bytes | None = None

    @property
    def allows_early_data(self) -> bool:
        return self.max_early_data == QUIC_MAX_EARLY_DATA

    def is_valid_at(self, now: float) -> bool:
        """RFC 9846 §4.6.1: never used beyond its lifetime, nor beyond 7 days."""
        age = now - self.received_at
        return 0 <= age < min(self.lifetime, MAX_TICKET_LIFETIME)

    def __repr__(self) -> str:
        return f"SessionTicket(server_name={self.server_name!r}, suite={self.cipher_suite.name})"

    def to_bytes(self) -> bytes:
        """A compact encoding to keep the ticket across processes (it holds a secret PSK)."""
        tp = self.peer_transport_parameters
        return (
            b"\x01"
            + vec16(self.ticket)
            + vec8(self.psk)
            + u16(self.cipher_suite)
            + vec8((self.server_name or "").encode())
            + vec8((self.alpn_protocol or "").encode())
            + u32(self.ticket_age_add)
            + u32(self.lifetime)
            + struct.pack("!d", self.received_at)
            + u32(self.max_early_data)
            + (b"\x00" if tp is None else b"\x01" + vec16(tp))
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> SessionTicket:
        """Inverse of :meth:`to_bytes`; ``ValueError`` for anything else."""
        try:
            r = Reader(data)
            if r.u8() != 1:
                raise ValueError("unknown session ticket encoding version")
            ticket = r.vector(2, "ticket", 1)
            psk = r.vector(1, "psk", 32, 48)
            suite = CipherSuite(r.u16())
            server_name = r.vector(1, "server_name").decode("ascii") or None
            alpn = r.vector(1, "alpn").decode() or None
            age_add = r.u32()
            lifetime = r.u32()
            (received_at,) = struct.unpack("!d", r.raw(8))
            max_early = r.u32()
            tp = r.vector(2, "transport parameters") if r.u8() else None
            r.done("session ticket")
        except (TlsAlert, UnicodeDecodeError) as exc:
            raise ValueError(f"not a session ticket: {exc}") from None
        return cls(
            ticket, psk, suite, server_name, alpn, age_add, lifetime, received_at, max_early, tp
        )


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _valid_hostname(name: str) -> bool:
    if not name or len(name) > 253 or not name.isascii():
        return False
    labels = name.rstrip(".").split(".")
    return all(0 < len(lbl) <= 63 and all(c.isalnum() or c in "-_" for c in lbl) for lbl in labels)


@dataclass(frozen=True, kw_only=True)
class TlsConfig:
    """Everything one TLS endpoint needs; validated at construction."""

    is_client: bool
    alpn_protocols: tuple[str, ...] = ()
    server_name: str | None = None
    certificate_chain: tuple[x509.Certificate, ...] = ()
    private_key: PrivateKey | None = None
    cafile: str | None = None
    cadata: bytes | None = None
    verify_peer: bool = True
    cipher_suites: tuple[CipherSuite, ...] = DEFAULT_CIPHER_SUITES
    groups: tuple[NamedGroup, ...] = DEFAULT_GROUPS
    signature_algorithms: tuple[SignatureScheme, ...] = DEFAULT_SIGNATURE_SCHEMES
    session_ticket: SessionTicket | None = None
    enable_early_data: bool = False
    max_early_data: int = QUIC_MAX_EARLY_DATA
    require_client_cert: bool = False
    ticket_lifetime: int = 86400
    keylog_file: str | None = None
    keylog_callback: Callable[[str], None] | None = None
    clock: Callable[[], float] = field(default=time.time)

    def __post_init__(self) -> None:
        self._validate_alpn()
        self._validate_names()
        self._validate_algorithms()
        self._validate_credentials()
        if not 0 < self.ticket_lifetime <= MAX_TICKET_LIFETIME:
            raise ValueError(
                f"ticket_lifetime must be 1..{MAX_TICKET_LIFETIME} s (RFC 9846 §4.6.1)"
            )
        if self.max_early_data != QUIC_MAX_EARLY_DATA:
            raise ValueError("max_early_data must be 0xffffffff in QUIC (RFC 9001 §4.6.1)")
        if self.session_ticket is not None and not self.is_client:
            raise ValueError("session_ticket is a client setting")
        if self.require_client_cert and self.is_client:
            raise ValueError("require_client_cert is a server setting")
        if self.cafile is not None and not os.path.isfile(self.cafile):
            raise ValueError(f"cafile {self.cafile!r} is not a readable file")
        if self.keylog_file is not None and not self.keylog_file:
            raise ValueError("keylog_file must be a path or None")

    def _validate_alpn(self) -> None:
        # RFC 9001 §8.1: QUIC endpoints must use ALPN.
        if not self.alpn_protocols:
            raise ValueError("alpn_protocols must name at least one protocol (RFC 9001 §8.1)")
        for p in self.alpn_protocols:
            if not isinstance(p, str) or not 0 < len(p.encode()) <= 255:
                raise ValueError(f"alpn_protocols: {p!r} must be 1..255 bytes (RFC 7301)")
        if len(set(self.alpn_protocols)) != len(self.alpn_protocols):
            raise ValueError("alpn_protocols: duplicates")

    def _validate_names(self) -> None:
        if self.server_name is not None and not (
            _is_ip(self.server_name) or _valid_hostname(self.server_name)
        ):
            raise ValueError(f"server_name {self.server_name!r} is not a host name or IP address")
        if self.is_client and self.verify_peer and self.server_name is None:
            raise ValueError("server_name is required to verify the server (or verify_peer=False)")

    def _validate_algorithms(self) -> None:
        for name, values, enum in (
            ("cipher_suites", self.cipher_suites, CipherSuite),
            ("groups", self.groups, NamedGroup),
            ("signature_algorithms", self.signature_algorithms, SignatureScheme),
        ):
            if not values:
                raise ValueError(f"{name} must not be empty")
            if len(set(values)) != len(values):
                raise ValueError(f"{name}: duplicates")
            for v in values:
                if v not in enum.__members__.values():
                    raise ValueError(f"{name}: unsupported value {v!r}")

    def _validate_credentials(self) -> None:
        if not self.is_client and not self.certificate_chain:
            raise ValueError("certificate_chain is required for a server")
        if self.certificate_chain and self.private_key is None:
            raise ValueError("private_key is required with certificate_chain")
        if self.private_key is not None:
            if not self.certificate_chain:
                raise ValueError("private_key given without certificate_chain")
            if not isinstance(
                self.private_key,
                ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey,
            ):
                raise ValueError("private_key must be EC, RSA or Ed25519")
            leaf = self.certificate_chain[0]
            if leaf.public_key() != self.private_key.public_key():
                raise ValueError("private_key does not match certificate_chain[0]")
            oid = leaf.public_key_algorithm_oid
            if not any(
                scheme_fits_key(s, self.private_key, oid) for s in self.signature_algorithms
            ):
                raise ValueError("signature_algorithms has no scheme for private_key")
