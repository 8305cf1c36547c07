"""TLS client certificates as the bond's per-client credential (tquic.bond.credentials):
the server (client_ca) verifies each client's certificate in the handshake (RFC 8446
§4.3.2, §4.4.2) and the certificate names the client; a client with no certificate,
one from another CA, or one that names no [[client]] is refused with a clear reason;
bad files are one config error naming the key."""

from __future__ import annotations

import asyncio
import datetime
from pathlib import Path

import pytest
from bond_harness import client_cfg, running_client, running_server

from tquic.bond.config import ClientEntry
from tquic.bond.credentials import certificate_sha256
from tquic.bond.links_config import BondConfigError
from tquic.crypto.tls.certs import (
    certificate_to_pem,
    generate_ca,
    issue_certificate,
    private_key_to_pem,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("bondpki")
    ca, ca_key = generate_ca("bond clients CA")
    rogue, rogue_key = generate_ca("another CA")
    server, server_key = issue_certificate(ca, ca_key, ("localhost", "127.0.0.1"))
    (d / "cert.pem").write_bytes(certificate_to_pem(server))
    (d / "key.pem").write_bytes(private_key_to_pem(server_key))
    (d / "ca.pem").write_bytes(certificate_to_pem(ca))
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=10)
    for name, issuer, cn, extra in (
            ("site1", (ca, ca_key), "site1", {}),
            ("nobody", (ca, ca_key), "nobody", {}),
            ("stranger", (rogue, rogue_key), "site1", {}),
            ("expired", (ca, ca_key), "site1", {
                "not_valid_before": past, "not_valid_after": past + datetime.timedelta(days=1)})):
        cert, key = issue_certificate(issuer[0], issuer[1], (cn,), common_name=cn,
                                      **extra)  # type: ignore[arg-type]
        (d / f"{name}.pem").write_bytes(certificate_to_pem(cert))
        (d / f"{name}.key").write_bytes(private_key_to_pem(key))
    return d


def _creds(pki: Path, name: str) -> dict[str, object]:
    return {"cert": str(pki / f"{name}.pem"), "key": str(pki / f"{name}.key")}


def test_a_certificate_from_the_ca_opens_the_tunnel_as_its_client(pki: Path) -> None:
    async def main() -> None:
        async with running_server(pki, token=None, clients=(ClientEntry("site1"),),
                                  client_ca=str(pki / "ca.pem")) as server, running_client(
                server.bond.port, token=None, **_creds(pki, "site1")) as client:
            assert client.bond.connected.is_set()
            assert [c.name for c in server.bond.status().clients] == ["site1"]

    asyncio.run(main())


@pytest.mark.parametrize(("creds", "expected"), [
    (None, "TLS certificate_required"),
    ("stranger", "TLS unknown_ca"),
    ("nobody", "names no [[client]]"),
])
def test_a_client_without_an_acceptable_certificate_is_refused(
        pki: Path, creds: str | None, expected: str) -> None:
    async def main() -> None:
        async with running_server(pki, token=None, clients=(ClientEntry("site1"),),
                                  client_ca=str(pki / "ca.pem")) as server:
            extra = _creds(pki, creds) if creds else {}
            async with running_client(server.bond.port, token=None, wait=False,
                                      **extra) as client:
                assert await asyncio.wait_for(client.task, 15) == 3  # not retried
                refused = client.bond.refused
                assert refused is not None and refused.status == 403
                assert expected in str(refused), str(refused)
            assert server.bond.status().clients == ()

    asyncio.run(main())


def test_a_client_entry_can_pin_its_certificate_by_hash(pki: Path) -> None:
    from cryptography import x509

    digest = certificate_sha256(x509.load_pem_x509_certificate((pki / "nobody.pem").read_bytes()))

    async def main() -> None:
        async with running_server(pki, token=None, clients=(ClientEntry("branch", None, digest),),
                                  client_ca=str(pki / "ca.pem")) as server, running_client(
                server.bond.port, token=None, **_creds(pki, "nobody")):
            assert [c.name for c in server.bond.status().clients] == ["branch"]

    asyncio.run(main())


def test_bad_credential_files_are_one_config_error_naming_the_key(pki: Path) -> None:
    cases = [
        ({"cert": str(pki / "expired.pem"), "key": str(pki / "expired.key")}, "cert", "expired"),
        ({"cert": str(pki / "site1.pem"), "key": str(pki / "nobody.key")}, "key", "not the key"),
        ({"cert": str(pki / "site1.pem")}, "key", "together"),
        ({"cert": str(pki / "missing.pem"), "key": str(pki / "site1.key")}, "cert", "no such"),
        ({"cert": str(pki / "site1.key"), "key": str(pki / "site1.key")}, "cert",
         "no PEM certificate"),
    ]
    for extra, key, text in cases:
        with pytest.raises(BondConfigError) as info:
            client_cfg(4433, ["127.0.0.1"], None, **extra)
        assert info.value.key == key and text in str(info.value), (extra, str(info.value))
