"""Shared fixtures for the endpoint tests: a certificate and tquic configurations."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tquic.core.config import QuicConfiguration


@dataclasses.dataclass(frozen=True)
class Certs:
    cert: bytes
    key: bytes
    cert_path: Path
    key_path: Path


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    from tquic.crypto.tls.certs import generate_self_signed

    cert, key = generate_self_signed()
    directory = tmp_path_factory.mktemp("certs")
    (directory / "cert.pem").write_bytes(cert)
    (directory / "key.pem").write_bytes(key)
    return Certs(cert, key, directory / "cert.pem", directory / "key.pem")


@pytest.fixture
def server_config(certs: Certs) -> QuicConfiguration:
    return QuicConfiguration(is_client=False, alpn_protocols=("hq-interop",),
                             certificate=certs.cert, private_key=certs.key,
                             max_datagram_frame_size=65535)


@pytest.fixture
def client_config(certs: Certs) -> QuicConfiguration:
    return QuicConfiguration(is_client=True, alpn_protocols=("hq-interop",),
                             cafile=str(certs.cert_path), server_name="localhost",
                             max_datagram_frame_size=65535)
