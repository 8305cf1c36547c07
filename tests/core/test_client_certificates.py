"""TLS client certificates through QuicConfiguration (RFC 8446 §4.3.2, §4.4.2): a server
with ``require_client_cert`` asks for one, verifies it against ``cafile`` and exposes
it as ``peer_certificate``; no certificate, an unknown CA or an expired one fails the
handshake with the TLS alert's CRYPTO_ERROR (RFC 9001 §4.8)."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from engine_pairs import make_pair, terminated

from tquic.core.config import ConfigurationError, QuicConfiguration
from tquic.crypto.tls.alerts import AlertDescription
from tquic.crypto.tls.certs import (
    certificate_to_pem,
    generate_ca,
    issue_certificate,
    private_key_to_pem,
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes | str]:
    directory = tmp_path_factory.mktemp("mtls")
    ca, ca_key = generate_ca("bond clients CA")
    rogue, rogue_key = generate_ca("someone else")
    server, server_key = issue_certificate(ca, ca_key, ("localhost",))
    site, site_key = issue_certificate(ca, ca_key, ("site1",), common_name="site1")
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=10)
    old, old_key = issue_certificate(ca, ca_key, ("site2",), not_valid_before=past,
                                     not_valid_after=past + datetime.timedelta(days=1))
    stranger, stranger_key = issue_certificate(rogue, rogue_key, ("site3",))
    (directory / "ca.pem").write_bytes(certificate_to_pem(ca))
    out: dict[str, bytes | str] = {"cafile": str(directory / "ca.pem")}
    for name, cert, key in (("server", server, server_key), ("site", site, site_key),
                            ("expired", old, old_key), ("stranger", stranger, stranger_key)):
        out[name] = certificate_to_pem(cert)
        out[name + "_key"] = private_key_to_pem(key)
    return out


def _run(pki: dict[str, bytes | str], client: str | None) -> tuple[object, object]:
    server_config = QuicConfiguration(
        is_client=False, alpn_protocols=("hq",), certificate=pki["server"],  # type: ignore[arg-type]
        private_key=pki["server_key"], cafile=pki["cafile"],  # type: ignore[arg-type]
        require_client_cert=True)
    extra = {} if client is None else {"certificate": pki[client],
                                       "private_key": pki[client + "_key"]}
    client_config = QuicConfiguration(is_client=True, alpn_protocols=("hq",),
                                      verify_peer=False, **extra)  # type: ignore[arg-type]
    loop = make_pair(client_config, server_config)
    loop.run_until(lambda: (loop.client.handshake_complete and loop.server.handshake_complete)
                   or terminated(loop.client_events) is not None, timeout=5)
    return loop.server, terminated(loop.client_events)


def test_a_client_certificate_from_the_ca_is_verified_and_visible(pki: dict[str, bytes | str],
                                                                  ) -> None:
    server, closed = _run(pki, "site")
    assert closed is None
    cert = server.peer_certificate  # type: ignore[attr-defined]
    assert cert is not None and cert.subject.rfc4514_string() == "CN=site1"


@pytest.mark.parametrize(("client", "alert"), [
    (None, AlertDescription.certificate_required),
    ("expired", AlertDescription.certificate_expired),
    ("stranger", AlertDescription.unknown_ca),
])
def test_a_missing_expired_or_foreign_certificate_fails_the_handshake(
        pki: dict[str, bytes | str], client: str | None, alert: AlertDescription) -> None:
    server, closed = _run(pki, client)
    assert closed is not None, "the handshake must fail"
    assert closed.error_code == 0x100 + alert, closed  # type: ignore[attr-defined]
    assert not server.handshake_complete  # type: ignore[attr-defined]


def test_configuration_errors_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="require_client_cert"):
        QuicConfiguration(is_client=True, require_client_cert=True)
    from engine_certs import cert_pem

    cert, key = cert_pem()
    with pytest.raises(ConfigurationError, match="cafile"):
        QuicConfiguration(is_client=False, certificate=cert, private_key=key,
                          require_client_cert=True)
