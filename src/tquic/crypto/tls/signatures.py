"""Signature schemes for CertificateVerify (RFC 9846 §4.2.3, §4.4.3)."""

from __future__ import annotations

from enum import IntEnum

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ObjectIdentifier, PublicKeyAlgorithmOID

from tquic.crypto.tls.alerts import AlertDescription, TlsAlert

__all__ = [
    "DEFAULT_SIGNATURE_SCHEMES",
    "PrivateKey",
    "PublicKey",
    "SignatureScheme",
    "certificate_public_key",
    "certificate_verify_content",
    "choose_scheme",
    "scheme_fits_key",
    "sign",
    "verify_signature",
]

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


class SignatureScheme(IntEnum):
    """RFC 9846 §4.2.3 (the TLS 1.3 CertificateVerify ones)."""

    ecdsa_secp256r1_sha256 = 0x0403
    ecdsa_secp384r1_sha384 = 0x0503
    ecdsa_secp521r1_sha512 = 0x0603
    rsa_pss_rsae_sha256 = 0x0804
    rsa_pss_rsae_sha384 = 0x0805
    rsa_pss_rsae_sha512 = 0x0806
    ed25519 = 0x0807
    rsa_pss_pss_sha256 = 0x0809
    rsa_pss_pss_sha384 = 0x080A
    rsa_pss_pss_sha512 = 0x080B


DEFAULT_SIGNATURE_SCHEMES: tuple[SignatureScheme, ...] = (
    SignatureScheme.ecdsa_secp256r1_sha256,
    SignatureScheme.ed25519,
    SignatureScheme.rsa_pss_rsae_sha256,
    SignatureScheme.ecdsa_secp384r1_sha384,
    SignatureScheme.rsa_pss_rsae_sha384,
    SignatureScheme.rsa_pss_rsae_sha512,
    SignatureScheme.rsa_pss_pss_sha256,
    SignatureScheme.rsa_pss_pss_sha384,
    SignatureScheme.rsa_pss_pss_sha512,
    SignatureScheme.ecdsa_secp521r1_sha512,
)

_HASH: dict[SignatureScheme, type[hashes.HashAlgorithm]] = {
    SignatureScheme.ecdsa_secp256r1_sha256: hashes.SHA256,
    SignatureScheme.ecdsa_secp384r1_sha384: hashes.SHA384,
    SignatureScheme.ecdsa_secp521r1_sha512: hashes.SHA512,
    SignatureScheme.rsa_pss_rsae_sha256: hashes.SHA256,
    SignatureScheme.rsa_pss_rsae_sha384: hashes.SHA384,
    SignatureScheme.rsa_pss_rsae_sha512: hashes.SHA512,
    SignatureScheme.rsa_pss_pss_sha256: hashes.SHA256,
    SignatureScheme.rsa_pss_pss_sha384: hashes.SHA384,
    SignatureScheme.rsa_pss_pss_sha512: hashes.SHA512,
}
# RFC 9846 §4.2.3: in TLS 1.3 the ECDSA scheme also names the curve.
_CURVE = {
    SignatureScheme.ecdsa_secp256r1_sha256: "secp256r1",
    SignatureScheme.ecdsa_secp384r1_sha384: "secp384r1",
    SignatureScheme.ecdsa_secp521r1_sha512: "secp521r1",
}
_RSAE = {
    SignatureScheme.rsa_pss_rsae_sha256,
    SignatureScheme.rsa_pss_rsae_sha384,
    SignatureScheme.rsa_pss_rsae_sha512,
}
_PSS = {
    SignatureScheme.rsa_pss_pss_sha256,
    SignatureScheme.rsa_pss_pss_sha384,
    SignatureScheme.rsa_pss_pss_sha512,
}

SERVER_CONTEXT = b"TLS 1.3, server CertificateVerify"
CLIENT_CONTEXT = b"TLS 1.3, client CertificateVerify"


def certificate_verify_content(is_server: bool, transcript_hash: bytes) -> bytes:
    """64 spaces, the context string, a zero byte, the transcript hash (RFC 9846 §4.4.3)."""
    return (
        b"\x20" * 64 + (SERVER_CONTEXT if is_server else CLIENT_CONTEXT) + b"\x00" + transcript_hash
    )


def scheme_fits_key(
    scheme: int, key: PublicKey | PrivateKey, key_oid: ObjectIdentifier | None
) -> bool:
    """Whether ``scheme`` can be used with ``key`` (``key_oid``: the SPKI algorithm OID)."""
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        return _CURVE.get(SignatureScheme(scheme)) == key.curve.name if scheme in _CURVE else False
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        # RFC 9846 §4.2.3: rsae schemes for rsaEncryption keys, pss schemes for
        # keys whose SPKI is id-RSASSA-PSS.
        is_pss_key = key_oid == PublicKeyAlgorithmOID.RSASSA_PSS
        return scheme in (_PSS if is_pss_key else _RSAE)
    return scheme == SignatureScheme.ed25519


def choose_scheme(
    key: PrivateKey,
    key_oid: ObjectIdentifier | None,
    peer_schemes: tuple[int, ...],
    our_schemes: tuple[int, ...],
) -> SignatureScheme | None:
    """Our first scheme that the peer accepts and that fits our key."""
    for s in our_schemes:
        if s in peer_schemes and scheme_fits_key(s, key, key_oid):
            return SignatureScheme(s)
    return None


def _pss(scheme: SignatureScheme) -> padding.PSS:
    # RFC 9846 §4.2.3: MGF1 with the same hash, salt length = digest length.
    h = _HASH[scheme]()
    return padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size)


def sign(key: PrivateKey, scheme: SignatureScheme, data: bytes) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(_HASH[scheme]()))
    return key.sign(data, _pss(scheme), _HASH[scheme]())


def verify_signature(
    key: PublicKey,
    key_oid: ObjectIdentifier | None,
    scheme: int,
    offered: tuple[int, ...],
    data: bytes,
    signature: bytes,
) -> None:
    """Check a CertificateVerify signature; raise the RFC 9846 §4.4.3 alerts."""
    if scheme not in offered or scheme not in SignatureScheme.__members__.values():
        raise TlsAlert(
            AlertDescription.illegal_parameter, f"signature scheme {scheme:#06x} not offered"
        )
    if not scheme_fits_key(scheme, key, key_oid):
        raise TlsAlert(
            AlertDescription.illegal_parameter, f"scheme {scheme:#06x} does not fit the key"
        )
    s = SignatureScheme(scheme)
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(_HASH[s]()))
        else:
            key.verify(signature, data, _pss(s), _HASH[s]())
    except (InvalidSignature, ValueError):
        # RFC 9846 §4.4.3: a signature that does not verify is decrypt_error.
        raise TlsAlert(
            AlertDescription.decrypt_error, "CertificateVerify signature invalid"
        ) from None


def certificate_public_key(cert: x509.Certificate) -> tuple[PublicKey, ObjectIdentifier]:
    """The leaf's key and SPKI algorithm, or unsupported_certificate for a key we cannot use.

    ``cryptography`` parses certificates lazily, so hostile bytes can surface
    here as any of its exceptions; all of them mean the same to us.
    """
    try:
        key = cert.public_key()
        oid = cert.public_key_algorithm_oid
    except Exception:
        raise TlsAlert(
            AlertDescription.unsupported_certificate, "certificate key does not load"
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        raise TlsAlert(
            AlertDescription.unsupported_certificate, f"unsupported key type {type(key).__name__}"
        )
    return key, oid
