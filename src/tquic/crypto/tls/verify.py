"""Certificate chain verification (RFC 9846 §4.4.2.4; RFC 5280 / CA/B rules).

Path building, validity periods, basic constraints, key usage and host-name
matching (DNS and IP subjectAltNames) are done by ``cryptography.x509.verification``;
this module only loads trust anchors and turns its errors into the alert
RFC 9846 §6.2 names.
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
import os
import warnings

from cryptography import x509
from cryptography.x509 import verification as xv

from tquic.crypto.tls.alerts import AlertDescription, TlsAlert
from tquic.crypto.tls.certs import load_certificates
from tquic.crypto.tls.messages import Certificate

__all__ = [
    "SYSTEM_CA_FILES",
    "load_peer_chain",
    "load_trust_store",
    "verify_client_chain",
    "verify_server_chain",
]

SYSTEM_CA_FILES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL
    "/etc/ssl/cert.pem",  # macOS, BSD
)


@functools.lru_cache(maxsize=16)
def _store_from(cafile: str | None, cadata: bytes | None) -> xv.Store:
    certs: list[x509.Certificate] = []
    if cafile is None and cadata is None:
        for path in SYSTEM_CA_FILES:
            if os.path.isfile(path):
                cafile = path
                break
    # System bundles hold a few old roots that newer cryptography warns about
    # (e.g. non-positive serial numbers); they are still valid anchors.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if cafile is not None:
            with open(cafile, "rb") as f:
                certs.extend(load_certificates(f.read()))
        if cadata is not None:
            certs.extend(load_certificates(cadata))
    return xv.Store(certs)


def load_trust_store(cafile: str | None, cadata: bytes | None) -> xv.Store:
    """Trust anchors from cafile/cadata, or the system bundle when neither is given."""
    try:
        return _store_from(cafile, cadata)
    except (OSError, ValueError) as exc:
        raise TlsAlert(
            AlertDescription.internal_error, f"cannot load trust anchors: {exc}"
        ) from None


def _alert_for(
    exc: xv.VerificationError, chain: tuple[x509.Certificate, ...], when: datetime.datetime
) -> TlsAlert:
    text = str(exc)
    if "not valid at validation time" in text:
        # Expired, or not yet valid (then the certificate is simply bad).
        try:
            early = any(c.not_valid_before_utc.replace(tzinfo=None) > when for c in chain)
        except Exception:  # a certificate too broken to have dates
            early = True
        desc = AlertDescription.bad_certificate if early else AlertDescription.certificate_expired
    elif "subjectAltName" in text:
        desc = AlertDescription.bad_certificate
    elif "candidates exhausted" in text or "issuer" in text:
        desc = AlertDescription.unknown_ca
    else:
        desc = AlertDescription.bad_certificate
    return TlsAlert(desc, f"certificate verification failed: {text}")


def _subject(server_name: str) -> x509.DNSName | x509.IPAddress:
    try:
        return x509.IPAddress(ipaddress.ip_address(server_name))
    except ValueError:
        return x509.DNSName(server_name)


def verify_server_chain(
    chain: tuple[x509.Certificate, ...],
    server_name: str,
    store: xv.Store,
    now: float,
) -> None:
    """Verify the server's chain for ``server_name`` (DNS name or IP address) at ``now``."""
    when = datetime.datetime.fromtimestamp(now, datetime.UTC).replace(tzinfo=None)
    try:
        verifier = (
            xv.PolicyBuilder().store(store).time(when).build_server_verifier(_subject(server_name))
        )
        verifier.verify(chain[0], list(chain[1:]))
    except xv.VerificationError as exc:
        raise _alert_for(exc, chain, when) from None
    except Exception as exc:  # hostile DER surfaces lazily as any cryptography error
        raise TlsAlert(AlertDescription.bad_certificate, f"bad certificate: {exc}") from None


def verify_client_chain(chain: tuple[x509.Certificate, ...], store: xv.Store, now: float) -> None:
    """Verify a client's chain (no host name) at ``now``."""
    when = datetime.datetime.fromtimestamp(now, datetime.UTC).replace(tzinfo=None)
    try:
        verifier = xv.PolicyBuilder().store(store).time(when).build_client_verifier()
        verifier.verify(chain[0], list(chain[1:]))
    except xv.VerificationError as exc:
        raise _alert_for(exc, chain, when) from None
    except Exception as exc:  # hostile DER surfaces lazily as any cryptography error
        raise TlsAlert(AlertDescription.bad_certificate, f"bad certificate: {exc}") from None


def load_peer_chain(message: Certificate) -> tuple[x509.Certificate, ...]:
    """The certificates of a non-empty Certificate message (RFC 9846 §4.4.2)."""
    chain: list[x509.Certificate] = []
    for entry in message.entries:
        if entry.extensions:
            # We request neither OCSP nor SCTs (RFC 9846 §4.4.2.1).
            raise TlsAlert(
                AlertDescription.unsupported_extension, "unsolicited CertificateEntry extension"
            )
        try:
            cert = x509.load_der_x509_certificate(entry.cert_data)
            cert.version  # noqa: B018 - parsed lazily; fail here, not later
        except Exception:
            raise TlsAlert(AlertDescription.bad_certificate, "certificate does not parse") from None
        chain.append(cert)
    return tuple(chain)
