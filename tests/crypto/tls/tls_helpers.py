"""In-memory handshake driver shared by the TLS tests and the benchmark."""

from __future__ import annotations

import dataclasses
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tquic.crypto.tls import Epoch, TlsClient, TlsConfig, TlsServer, TrafficSecret
from tquic.crypto.tls.certs import certificate_to_pem, generate_ca, issue_certificate
from tquic.crypto.tls.signatures import PrivateKey


def pump(client: TlsClient, server: TlsServer, max_rounds: int = 10) -> None:
    """Move handshake bytes both ways until nobody has anything to say."""
    for _ in range(max_rounds):
        moved = False
        for epoch, data in client.pop_output():
            server.receive(epoch, data)
            moved = True
        for epoch, data in server.pop_output():
            client.receive(epoch, data)
            moved = True
        if not moved:
            return
    raise AssertionError("handshake did not settle")


def secrets_by_key(secrets: list[TrafficSecret]) -> dict[tuple[Epoch, bool], bytes]:
    return {(s.epoch, s.is_write): s.secret for s in secrets}


@dataclasses.dataclass(frozen=True)
class Pki:
    ca: x509.Certificate
    ca_key: PrivateKey
    ca_pem: bytes
    leaves: dict[str, tuple[x509.Certificate, PrivateKey]]


def make_pki() -> Pki:
    ca, ca_key = generate_ca()
    leaves = {
        kind: issue_certificate(ca, ca_key, key_type=kind)
        for kind in ("ec", "ec384", "rsa", "ed25519")
    }
    rsa_cert, rsa_key = leaves["rsa"]
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):  # pragma: no cover
        raise TypeError("test CA is EC")
    leaves["rsa-pss"] = (with_rsassa_pss_spki(rsa_cert, ca_key), rsa_key)
    return Pki(ca, ca_key, certificate_to_pem(ca), leaves)


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def _tlv(data: bytes, pos: int) -> tuple[int, int]:
    """(content start, end) of the DER element at ``pos``."""
    length = data[pos + 1]
    start = pos + 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(data[start : start + n], "big")
        start += n
    return start, start + length


_RSA_ENCRYPTION_ALG = bytes.fromhex("300d06092a864886f70d0101010500")
_RSASSA_PSS_ALG = bytes.fromhex("300b06092a864886f70d01010a")


def with_rsassa_pss_spki(
    cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey
) -> x509.Certificate:
    """Re-issue an RSA certificate with an id-RSASSA-PSS SubjectPublicKeyInfo.

    ``cryptography`` cannot build such certificates, so the TBS is edited in
    DER and signed again; this is what makes rsa_pss_pss_* testable.
    """
    der = cert.public_bytes(serialization.Encoding.DER)
    cs, _ = _tlv(der, 0)
    ts, te = _tlv(der, cs)
    tbs = der[ts:te]
    alg_at = tbs.index(_RSA_ENCRYPTION_ALG)
    for header in (4, 3, 2):
        spki_at = alg_at - header
        if tbs[spki_at] == 0x30 and _tlv(tbs, spki_at)[0] == alg_at:
            break
    spki_end = _tlv(tbs, spki_at)[1]
    spki_body = _RSASSA_PSS_ALG + tbs[alg_at + len(_RSA_ENCRYPTION_ALG) : spki_end]
    new_tbs_body = tbs[:spki_at] + b"\x30" + _der_len(len(spki_body)) + spki_body + tbs[spki_end:]
    new_tbs = b"\x30" + _der_len(len(new_tbs_body)) + new_tbs_body
    alg_end = _tlv(der, te)[1]
    sig = ca_key.sign(new_tbs, ec.ECDSA(hashes.SHA256()))
    body = new_tbs + der[te:alg_end] + b"\x03" + _der_len(len(sig) + 1) + b"\x00" + sig
    return x509.load_der_x509_certificate(b"\x30" + _der_len(len(body)) + body)


def server_config(pki: Pki, kind: str = "ec", **kw: Any) -> TlsConfig:
    cert, key = pki.leaves[kind]
    kw.setdefault("alpn_protocols", ("h3",))
    kw.setdefault("certificate_chain", (cert,))
    kw.setdefault("private_key", key)
    return TlsConfig(is_client=False, **kw)


def client_config(pki: Pki, **kw: Any) -> TlsConfig:
    kw.setdefault("alpn_protocols", ("h3",))
    kw.setdefault("server_name", "localhost")
    kw.setdefault("cadata", pki.ca_pem)
    return TlsConfig(is_client=True, **kw)
