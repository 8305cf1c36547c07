"""TLS client certificates as a bond client's credential (instead of a bearer token).

The server (``client_ca``) asks every client for a certificate (RFC 8446 §4.3.2
CertificateRequest) and the TLS layer verifies it against that CA — chain,
validity period, key usage — with cryptography's X.509 verifier before the
handshake completes (§4.4.2): no certificate, a foreign CA or an expired one
fails the handshake with the TLS alert that says so.  A verified certificate
then names its ``[[client]]``: by ``cert_sha256`` (the DER's SHA-256) when the
entry gives one, else by the entry's ``name`` equal to the certificate's
subject CN or one of its DNS names.

The files are checked when the configuration is built, so a wrong path, a key
that does not belong to the certificate or an expired certificate is one line
naming the key, not a failed handshake later.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from tquic.bond.links_config import BondConfigError
from tquic.crypto.tls.certs import CredentialError, check_credentials

# TLS alerts (RFC 8446 §6.2) that mean "your certificate was not accepted".
CERTIFICATE_ALERTS = {
    42: "bad_certificate", 43: "unsupported_certificate", 44: "certificate_revoked",
    45: "certificate_expired", 46: "certificate_unknown", 48: "unknown_ca",
    49: "access_denied", 116: "certificate_required",
}


def check_client_credentials(cert: str, key: str) -> None:
    """``cert`` (PEM, leaf first) and ``key`` (PEM, unencrypted) belong together and the
    certificate is valid now; else BondConfigError naming ``cert`` or ``key``."""
    check_key_pair(cert, key)


def check_key_pair(cert: str, key: str, names: tuple[str, str] = ("cert", "key")) -> None:
    """The files ``cert`` and ``key`` can serve a handshake (a server's pair too);
    else BondConfigError naming the config key (``names``) of the file at fault."""
    data: list[bytes] = []
    for path, name in zip((cert, key), names, strict=True):
        try:
            data.append(Path(path).read_bytes())
        except OSError as exc:
            raise BondConfigError(name, f"cannot read {path}: {exc.strerror}") from None
    try:
        check_credentials(data[0], data[1])
    except CredentialError as exc:
        name, path = (names[0], cert) if exc.which == "certificate" else (names[1], key)
        raise BondConfigError(name, f"{path}: {exc}") from None


def check_ca_file(path: str, key: str) -> None:
    """``path`` holds at least one PEM certificate (the CA that signs client certificates)."""
    _load_certificates(path, key)


def certificate_sha256(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def certificate_names(cert: x509.Certificate) -> tuple[str, ...]:
    """The subject CN and the DNS names of the subjectAltName, in that order."""
    names = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return tuple(names)
    names.extend(n for n in san.get_values_for_type(x509.DNSName) if n not in names)
    return tuple(names)


def _load_certificates(path: str, key: str) -> list[x509.Certificate]:
    try:
        chain = x509.load_pem_x509_certificates(Path(path).read_bytes())
    except OSError as exc:
        raise BondConfigError(key, f"cannot read {path}: {exc.strerror}") from None
    except ValueError:
        raise BondConfigError(key, f"{path}: no PEM certificate in it") from None
    return chain
