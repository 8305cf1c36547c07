"""Generating and loading certificates and keys.

``generate_self_signed`` makes the certificate the CLI and quick tests use;
``generate_ca`` + ``issue_certificate`` make a CA and a leaf signed by it, the
shape real deployments have and the one the chain verifier is tested with.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterable
from typing import Literal

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tquic.crypto.tls.signatures import PrivateKey

__all__ = [
    "CredentialError",
    "KeyType",
    "certificate_to_pem",
    "check_credentials",
    "generate_ca",
    "generate_private_key",
    "generate_self_signed",
    "issue_certificate",
    "load_certificate_chain",
    "load_certificates",
    "load_private_key",
    "private_key_to_pem",
]

KeyType = Literal["ec", "ec384", "rsa", "ed25519"]


def generate_private_key(key_type: str = "ec", rsa_bits: int = 2048) -> PrivateKey:
    """A fresh key: "ec" (P-256), "ec384" (P-384), "rsa" or "ed25519"."""
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ec384":
        return ec.generate_private_key(ec.SECP384R1())
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"key_type must be ec, ec384, rsa or ed25519, not {key_type!r}")


def _sig_hash(key: PrivateKey) -> hashes.SHA256 | hashes.SHA384 | None:
    # Ed25519 signs without a separate hash.
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size > 256:
        return hashes.SHA384()
    return hashes.SHA256()


def _san(hostnames: Iterable[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for h in hostnames:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    return x509.SubjectAlternativeName(names)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def _random_serial() -> int:
    return x509.random_serial_number()


def generate_ca(
    common_name: str = "tquic test CA",
    key_type: str = "ec",
    days: int = 3650,
    *,
    issuer: tuple[x509.Certificate, PrivateKey] | None = None,
) -> tuple[x509.Certificate, PrivateKey]:
    """A CA certificate and its key: self-signed (a root), or an intermediate signed by ``issuer``."""
    key = generate_private_key(key_type)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    signer_name, signer_key = (name, key) if issuer is None else (issuer[0].subject, issuer[1])
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(signer_name)
        .public_key(key.public_key())
        .serial_number(_random_serial())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()),
            critical=False,
        )
    cert = builder.sign(signer_key, _sig_hash(signer_key))
    return cert, key


def issue_certificate(
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    hostnames: Iterable[str] = ("localhost", "127.0.0.1", "::1"),
    key_type: str = "ec",
    *,
    key: PrivateKey | None = None,
    not_valid_before: datetime.datetime | None = None,
    not_valid_after: datetime.datetime | None = None,
    common_name: str | None = None,
) -> tuple[x509.Certificate, PrivateKey]:
    """A leaf certificate for ``hostnames`` (DNS names and IP addresses) signed by the CA."""
    hostnames = tuple(hostnames)
    if key is None:
        key = generate_private_key(key_type)
    now = _now()
    cn = common_name or (hostnames[0] if hostnames else "tquic")
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(_random_serial())
        .not_valid_before(not_valid_before or now - datetime.timedelta(days=1))
        .not_valid_after(not_valid_after or now + datetime.timedelta(days=365))
        .add_extension(_san(hostnames), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, _sig_hash(ca_key))
    )
    return cert, key


def generate_self_signed(
    hostnames: Iterable[str] = ("localhost", "127.0.0.1", "::1"),
    key_type: str = "ec",
    days: int = 365,
) -> tuple[bytes, bytes]:
    """A self-signed certificate for ``hostnames``: (certificate PEM, PKCS#8 key PEM)."""
    hostnames = tuple(hostnames)
    key = generate_private_key(key_type)
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0] if hostnames else "tquic")]
    )
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(_random_serial())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(_san(hostnames), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
        )
        .sign(key, _sig_hash(key))
    )
    return certificate_to_pem(cert), private_key_to_pem(key)


def certificate_to_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def private_key_to_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_certificates(data: bytes) -> tuple[x509.Certificate, ...]:
    """Every certificate in PEM data (or one DER certificate)."""
    if b"-----BEGIN" in data:
        certs = tuple(x509.load_pem_x509_certificates(data))
    else:
        certs = (x509.load_der_x509_certificate(data),)
    return certs


def load_certificate_chain(path: str) -> tuple[x509.Certificate, ...]:
    """The certificates of a PEM file, leaf first."""
    with open(path, "rb") as f:
        return load_certificates(f.read())


def load_private_key(path: str, password: bytes | None = None) -> PrivateKey:
    with open(path, "rb") as f:
        data = f.read()
    key = (
        serialization.load_pem_private_key(data, password)
        if b"-----BEGIN" in data
        else serialization.load_der_private_key(data, password)
    )
    if not isinstance(
        key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    ):
        raise ValueError(f"{path}: unsupported key type {type(key).__name__}")
    return key


class CredentialError(ValueError):
    """A certificate and key that cannot serve a handshake; ``which`` is "certificate"
    or "private_key", the message says what is wrong and what to do."""

    def __init__(self, which: Literal["certificate", "private_key"], message: str) -> None:
        super().__init__(message)
        self.which: Literal["certificate", "private_key"] = which


def check_credentials(certificate: bytes, private_key: bytes,
                      now: datetime.datetime | None = None) -> tuple[x509.Certificate, ...]:
    """The chain of ``certificate`` (PEM, leaf first) if ``private_key`` (PEM,
    unencrypted) is the leaf's key and the leaf is valid at ``now``; else
    CredentialError.  Checked when a server starts, so a swapped, mismatched or expired
    pair is one clear error instead of every handshake failing later (RFC 8446 §4.4.3:
    the CertificateVerify signature must verify with the leaf's public key)."""
    if b"-----BEGIN CERTIFICATE-----" not in certificate:
        hint = (" (it holds a private key: are the certificate and key swapped?)"
                if b"PRIVATE KEY-----" in certificate else "")
        raise CredentialError("certificate", f"no PEM certificate in it{hint}")
    try:
        chain = tuple(x509.load_pem_x509_certificates(certificate))
    except ValueError as exc:
        raise CredentialError("certificate", f"not a valid PEM certificate ({exc})") from None
    try:
        key = serialization.load_pem_private_key(private_key, password=None)
    except TypeError:
        raise CredentialError("private_key", "the key is encrypted: give it without a "
                                             "password (openssl pkey -in KEY -out KEY2)") from None
    except UnsupportedAlgorithm as exc:
        raise CredentialError("private_key", f"unsupported key type ({exc})") from None
    except ValueError:
        hint = (" (it holds a certificate: are the certificate and key swapped?)"
                if b"-----BEGIN CERTIFICATE-----" in private_key else "")
        raise CredentialError("private_key", f"not a PEM private key{hint}") from None
    leaf = chain[0]
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if (key.public_key().public_bytes(serialization.Encoding.DER, spki)
            != leaf.public_key().public_bytes(serialization.Encoding.DER, spki)):
        raise CredentialError("private_key", "not the key of the certificate (the first "
                                             "certificate in the file is the leaf)")
    now = now or datetime.datetime.now(datetime.UTC)
    if leaf.not_valid_after_utc < now:
        raise CredentialError("certificate", f"expired on {leaf.not_valid_after_utc:%Y-%m-%d}; "
                                             "renew it (tquic certs writes a self-signed one)")
    if leaf.not_valid_before_utc > now:
        raise CredentialError("certificate", "valid only from "
                                             f"{leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
    return chain
