"""Handshake message codecs (RFC 9846 §4, Appendix B.3).

``parse_*`` functions take the message body (after the 4-byte header) and
raise :class:`TlsAlert` (``decode_error`` for bad lengths and trailing bytes,
``illegal_parameter`` for duplicate extensions).  ``encode_*`` functions
return the whole handshake message, header included, as it enters the
transcript.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import IntEnum

from tquic.crypto.tls.codec import Reader, decode_error, u8, u16, u24, u32, vec8, vec16, vec24
from tquic.crypto.tls.extensions import Extensions, encode_extensions, parse_extensions

__all__ = [
    "HRR_RANDOM",
    "Certificate",
    "CertificateRequest",
    "CertificateVerify",
    "ClientHello",
    "EncryptedExtensions",
    "Finished",
    "HandshakeType",
    "NewSessionTicket",
    "ServerHello",
]


class HandshakeType(IntEnum):
    """RFC 9846 §4."""

    client_hello = 1
    server_hello = 2
    new_session_ticket = 4
    end_of_early_data = 5
    encrypted_extensions = 8
    certificate = 11
    certificate_request = 13
    certificate_verify = 15
    finished = 20
    key_update = 24
    message_hash = 254


# RFC 9846 §4.1.3: SHA-256("HelloRetryRequest").
HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")
LEGACY_VERSION = 0x0303


def frame(msg_type: int, body: bytes) -> bytes:
    """Handshake header: msg_type and uint24 length (RFC 9846 §4)."""
    return u8(msg_type) + u24(len(body)) + body


@dataclass(frozen=True, slots=True)
class ClientHello:
    legacy_version: int
    random: bytes
    legacy_session_id: bytes
    cipher_suites: tuple[int, ...]
    compression_methods: bytes
    extensions: Extensions

    def encode(self) -> bytes:
        body = (
            u16(self.legacy_version)
            + self.random
            + vec8(self.legacy_session_id)
            + vec16(b"".join(u16(s) for s in self.cipher_suites))
            + vec8(self.compression_methods)
            + encode_extensions(self.extensions)
        )
        return frame(HandshakeType.client_hello, body)


def parse_client_hello(body: bytes) -> ClientHello:
    """RFC 9846 §4.1.2.  A QUIC server reads each ClientHello twice (its version
    negotiation peeks at the transport parameters before TLS runs, RFC 9368 §2.3):
    the last few results are kept (a ClientHello is immutable)."""
    return _parse_client_hello(bytes(body))


@functools.lru_cache(maxsize=32)
def _parse_client_hello(body: bytes) -> ClientHello:
    r = Reader(body)
    legacy_version = r.u16("legacy_version")
    random = r.raw(32, "random")
    session_id = r.vector(1, "legacy_session_id", 0, 32)
    suites = r.sub(2, "cipher_suites", 2, 0xFFFE)
    if suites.remaining % 2:
        raise decode_error("cipher_suites: odd length")
    cipher_suites = tuple(suites.u16() for _ in range(suites.remaining // 2))
    compression = r.vector(1, "legacy_compression_methods", 1)
    # RFC 9846 §4.1.2: a ClientHello without extensions is TLS 1.2 or older;
    # parse it so the caller can answer protocol_version.
    extensions: Extensions = () if r.remaining == 0 else parse_extensions(r, "ClientHello", 8)
    r.done("ClientHello")
    return ClientHello(legacy_version, random, session_id, cipher_suites, compression, extensions)


@dataclass(frozen=True, slots=True)
class ServerHello:
    """ServerHello, and HelloRetryRequest when ``random == HRR_RANDOM`` (RFC 9846 §4.1.3)."""

    legacy_version: int
    random: bytes
    legacy_session_id_echo: bytes
    cipher_suite: int
    compression_method: int
    extensions: Extensions

    @property
    def is_hello_retry_request(self) -> bool:
        return self.random == HRR_RANDOM

    def encode(self) -> bytes:
        body = (
            u16(self.legacy_version)
            + self.random
            + vec8(self.legacy_session_id_echo)
            + u16(self.cipher_suite)
            + u8(self.compression_method)
            + encode_extensions(self.extensions)
        )
        return frame(HandshakeType.server_hello, body)


def parse_server_hello(body: bytes) -> ServerHello:
    r = Reader(body)
    legacy_version = r.u16("legacy_version")
    random = r.raw(32, "random")
    session_id = r.vector(1, "legacy_session_id_echo", 0, 32)
    suite = r.u16("cipher_suite")
    compression = r.u8("legacy_compression_method")
    extensions = parse_extensions(r, "ServerHello", 6) if r.remaining else ()
    r.done("ServerHello")
    return ServerHello(legacy_version, random, session_id, suite, compression, extensions)


@dataclass(frozen=True, slots=True)
class EncryptedExtensions:
    extensions: Extensions

    def encode(self) -> bytes:
        return frame(HandshakeType.encrypted_extensions, encode_extensions(self.extensions))


def parse_encrypted_extensions(body: bytes) -> EncryptedExtensions:
    r = Reader(body)
    exts = parse_extensions(r, "EncryptedExtensions")
    r.done("EncryptedExtensions")
    return EncryptedExtensions(exts)


@dataclass(frozen=True, slots=True)
class CertificateRequest:
    context: bytes
    extensions: Extensions

    def encode(self) -> bytes:
        body = vec8(self.context) + encode_extensions(self.extensions)
        return frame(HandshakeType.certificate_request, body)


def parse_certificate_request(body: bytes) -> CertificateRequest:
    r = Reader(body)
    context = r.vector(1, "certificate_request_context")
    exts = parse_extensions(r, "CertificateRequest", 2)
    r.done("CertificateRequest")
    return CertificateRequest(context, exts)


@dataclass(frozen=True, slots=True)
class CertificateEntry:
    cert_data: bytes
    extensions: Extensions


@dataclass(frozen=True, slots=True)
class Certificate:
    context: bytes
    entries: tuple[CertificateEntry, ...]

    def encode(self) -> bytes:
        lst = b"".join(vec24(e.cert_data) + encode_extensions(e.extensions) for e in self.entries)
        return frame(HandshakeType.certificate, vec8(self.context) + vec24(lst))


def parse_certificate(body: bytes) -> Certificate:
    """RFC 9846 §4.4.2 (X.509 entries only; raw public keys are not negotiated)."""
    r = Reader(body)
    context = r.vector(1, "certificate_request_context")
    lst = r.sub(3, "certificate_list")
    r.done("Certificate")
    entries: list[CertificateEntry] = []
    while lst.remaining:
        data = lst.vector(3, "cert_data", 1)
        entries.append(CertificateEntry(data, parse_extensions(lst, "CertificateEntry")))
    return Certificate(context, tuple(entries))


@dataclass(frozen=True, slots=True)
class CertificateVerify:
    algorithm: int
    signature: bytes

    def encode(self) -> bytes:
        body = u16(self.algorithm) + vec16(self.signature)
        return frame(HandshakeType.certificate_verify, body)


def parse_certificate_verify(body: bytes) -> CertificateVerify:
    r = Reader(body)
    alg = r.u16("algorithm")
    sig = r.vector(2, "signature")
    r.done("CertificateVerify")
    return CertificateVerify(alg, sig)


@dataclass(frozen=True, slots=True)
class Finished:
    verify_data: bytes

    def encode(self) -> bytes:
        return frame(HandshakeType.finished, self.verify_data)


def parse_finished(body: bytes, hash_length: int) -> Finished:
    # RFC 9846 §4.4.4: verify_data is Hash.length bytes; any other length does
    # not decode.
    r = Reader(body)
    data = r.raw(hash_length, "verify_data")
    r.done("Finished")
    return Finished(data)


@dataclass(frozen=True, slots=True)
class NewSessionTicket:
    ticket_lifetime: int
    ticket_age_add: int
    ticket_nonce: bytes
    ticket: bytes
    extensions: Extensions

    def encode(self) -> bytes:
        body = (
            u32(self.ticket_lifetime)
            + u32(self.ticket_age_add)
            + vec8(self.ticket_nonce)
            + vec16(self.ticket)
            + encode_extensions(self.extensions)
        )
        return frame(HandshakeType.new_session_ticket, body)


def parse_new_session_ticket(body: bytes) -> NewSessionTicket:
    """RFC 9846 §4.6.1."""
    r = Reader(body)
    lifetime = r.u32("ticket_lifetime")
    age_add = r.u32("ticket_age_add")
    nonce = r.vector(1, "ticket_nonce")
    ticket = r.vector(2, "ticket", 1)
    exts = parse_extensions(r, "NewSessionTicket")
    r.done("NewSessionTicket")
    return NewSessionTicket(lifetime, age_add, nonce, ticket, exts)
