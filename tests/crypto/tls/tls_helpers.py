"""In-memory handshake driver shared by the TLS tests and the benchmark."""

from __future__ import annotations

import dataclasses
from typing import Any

from cryptography import x509

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
    return Pki(ca, ca_key, certificate_to_pem(ca), leaves)


def server_config(pki: Pki, kind: str = "ec", **kw: Any) -> TlsConfig:
    cert, key = pki.leaves[kind]
    kw.setdefault("alpn_protocols", ("h3",))
    return TlsConfig(is_client=False, certificate_chain=(cert,), private_key=key, **kw)


def client_config(pki: Pki, **kw: Any) -> TlsConfig:
    kw.setdefault("alpn_protocols", ("h3",))
    kw.setdefault("server_name", "localhost")
    kw.setdefault("cadata", pki.ca_pem)
    return TlsConfig(is_client=True, **kw)
