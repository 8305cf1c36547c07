"""A server's certificate and key are checked when it starts (tquic.crypto.tls.certs
check_credentials, used by ``serve`` and the CLI): a swapped, mismatched, encrypted or
out-of-date pair is one error naming the file at fault, before any client tries."""

from __future__ import annotations

import asyncio
import datetime
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from tquic.core.config import ConfigurationError, QuicConfiguration
from tquic.crypto.tls.certs import (
    CredentialError,
    certificate_to_pem,
    check_credentials,
    generate_ca,
    generate_self_signed,
    issue_certificate,
    private_key_to_pem,
)
from tquic.io.api import serve

NOW = datetime.datetime.now(datetime.UTC)


def _problem(cert: bytes, key: bytes, now: datetime.datetime | None = None) -> tuple[str, str]:
    with pytest.raises(CredentialError) as info:
        check_credentials(cert, key, now)
    return info.value.which, str(info.value)


def test_a_matching_valid_pair_gives_its_chain() -> None:
    ca, ca_key = generate_ca()
    leaf, leaf_key = issue_certificate(ca, ca_key)
    chain = certificate_to_pem(leaf) + certificate_to_pem(ca)
    assert check_credentials(chain, private_key_to_pem(leaf_key)) == (leaf, ca)


def test_swapped_files_say_so() -> None:
    cert, key = generate_self_signed()
    which, text = _problem(key, cert)
    assert which == "certificate" and "swapped" in text
    which, text = _problem(cert, cert)
    assert which == "private_key" and "swapped" in text


def test_the_key_of_another_certificate_is_refused() -> None:
    cert, _ = generate_self_signed()
    _, other_key = generate_self_signed()
    which, text = _problem(cert, other_key)
    assert which == "private_key" and "not the key of the certificate" in text


def test_an_encrypted_key_asks_for_it_without_a_password() -> None:
    ca, ca_key = generate_ca()
    leaf, leaf_key = issue_certificate(ca, ca_key)
    encrypted = leaf_key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.BestAvailableEncryption(b"secret"))
    which, text = _problem(certificate_to_pem(leaf), encrypted)
    assert which == "private_key" and "encrypted" in text


def test_expired_and_not_yet_valid_certificates_are_refused() -> None:
    ca, ca_key = generate_ca()
    leaf, leaf_key = issue_certificate(ca, ca_key)
    cert, key = certificate_to_pem(leaf), private_key_to_pem(leaf_key)
    which, text = _problem(cert, key, NOW + datetime.timedelta(days=4000))
    assert which == "certificate" and "expired on" in text
    which, text = _problem(cert, key, NOW - datetime.timedelta(days=30))
    assert which == "certificate" and "valid only from" in text


def test_garbage_is_no_certificate() -> None:
    _, key = generate_self_signed()
    assert _problem(b"hello", key) == ("certificate", "no PEM certificate in it")


def test_serve_refuses_a_mismatched_pair_before_binding() -> None:
    cert, _ = generate_self_signed()
    _, other_key = generate_self_signed()
    config = QuicConfiguration(is_client=False, certificate=cert, private_key=other_key)

    async def main() -> None:
        with pytest.raises(ConfigurationError) as info:
            await serve("127.0.0.1", 0, config)
        assert info.value.field_name == "private_key"

    asyncio.run(asyncio.wait_for(main(), 10))


def test_tquic_server_with_swapped_files_is_one_line_and_exit_1(tmp_path: Path) -> None:
    cert, key = generate_self_signed()
    (tmp_path / "cert.pem").write_bytes(cert)
    (tmp_path / "key.pem").write_bytes(key)
    for extra in ((), ("--workers", "2")):
        done = subprocess.run(
            [sys.executable, "-m", "tquic", "server", "--listen", "127.0.0.1:0",
             "--cert", str(tmp_path / "key.pem"), "--key", str(tmp_path / "cert.pem"), *extra],
            capture_output=True, text=True, timeout=30, check=False)
        assert done.returncode == 1, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "--cert" in lines[0] and "swapped" in lines[0], done.stderr

