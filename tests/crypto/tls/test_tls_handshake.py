"""Full in-memory handshakes between our TLS client and server (RFC 9846 §2, RFC 9001 §4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from tls_helpers import Pki, client_config, pump, secrets_by_key, server_config

from tquic.crypto.keys import CipherSuite
from tquic.crypto.tls import (
    AlertDescription,
    Epoch,
    NamedGroup,
    SessionTicket,
    SignatureScheme,
    TicketStore,
    TlsAlert,
    TlsClient,
    TlsConfig,
    TlsServer,
)
from tquic.crypto.tls.certs import generate_self_signed
from tquic.crypto.tls.messages import HRR_RANDOM


def test_basic_handshake_x25519_aes128_ecdsa_p256_gives_matching_secrets(pki: Pki) -> None:
    client = TlsClient(
        client_config(
            pki, cipher_suites=(CipherSuite.AES_128_GCM_SHA256,), groups=(NamedGroup.x25519,)
        ),
        b"client-tp",
    )
    server = TlsServer(server_config(pki, "ec"), b"server-tp")
    client.start()
    pump(client, server)
    assert client.handshake_complete and server.handshake_complete
    assert client.alpn_protocol == server.alpn_protocol == "h3"
    assert client.peer_transport_parameters == b"server-tp"
    assert server.peer_transport_parameters == b"client-tp"
    assert client.cipher_suite == server.cipher_suite == CipherSuite.AES_128_GCM_SHA256
    assert client.peer_certificate == pki.leaves["ec"][0]
    assert not client.session_resumed and not client.early_data_accepted
    cs = secrets_by_key(client.pop_secrets())
    ss = secrets_by_key(server.pop_secrets())
    # Every client write secret is the server's read secret and vice versa.
    assert set(cs) == {(e, w) for e in (Epoch.HANDSHAKE, Epoch.ONE_RTT) for w in (True, False)}
    for (epoch, is_write), secret in cs.items():
        assert ss[(epoch, not is_write)] == secret
    assert cs[(Epoch.ONE_RTT, True)] != cs[(Epoch.ONE_RTT, False)]


def test_messages_go_out_in_the_right_epochs(pki: Pki) -> None:
    client = TlsClient(client_config(pki), b"tp")
    server = TlsServer(server_config(pki), b"tp")
    client.start()
    first = client.pop_output()
    assert [e for e, _ in first] == [Epoch.INITIAL]
    assert first[0][1][0] == 1  # ClientHello
    server.receive(Epoch.INITIAL, first[0][1])
    out = server.pop_output()
    assert [e for e, _ in out] == [Epoch.INITIAL, Epoch.HANDSHAKE]
    assert out[0][1][0] == 2  # ServerHello
    # Server: handshake read+write, then 1-RTT write only (read after client Finished).
    got = [(s.epoch, s.is_write) for s in server.pop_secrets()]
    assert got == [(Epoch.HANDSHAKE, True), (Epoch.HANDSHAKE, False), (Epoch.ONE_RTT, True)]
    for epoch, data in out:
        client.receive(epoch, data)
    fin = client.pop_output()
    assert [e for e, _ in fin] == [Epoch.HANDSHAKE]
    assert (client.handshake_complete, server.handshake_complete) == (True, False)
    server.receive(Epoch.HANDSHAKE, fin[0][1])
    assert server.handshake_complete
    assert [(s.epoch, s.is_write) for s in server.pop_secrets()] == [(Epoch.ONE_RTT, False)]


def test_fragmented_and_coalesced_delivery(pki: Pki) -> None:
    client = TlsClient(client_config(pki), b"tp")
    server = TlsServer(server_config(pki), b"tp")
    client.start()
    ((_, ch),) = client.pop_output()
    for i in range(len(ch)):  # one byte at a time
        server.receive(Epoch.INITIAL, ch[i : i + 1])
    for epoch, data in server.pop_output():
        client.receive(epoch, data)  # several messages per call
    pump(client, server)
    assert client.handshake_complete and server.handshake_complete


SIGNATURES: list[tuple[str, SignatureScheme]] = [
    ("ec", SignatureScheme.ecdsa_secp256r1_sha256),
    ("ec384", SignatureScheme.ecdsa_secp384r1_sha384),
    ("rsa", SignatureScheme.rsa_pss_rsae_sha256),
    ("rsa", SignatureScheme.rsa_pss_rsae_sha384),
    ("rsa", SignatureScheme.rsa_pss_rsae_sha512),
    ("rsa-pss", SignatureScheme.rsa_pss_pss_sha256),
    ("rsa-pss", SignatureScheme.rsa_pss_pss_sha384),
    ("rsa-pss", SignatureScheme.rsa_pss_pss_sha512),
    ("ed25519", SignatureScheme.ed25519),
]


@pytest.mark.parametrize("suite", list(CipherSuite), ids=lambda s: s.name)
@pytest.mark.parametrize("group", list(NamedGroup), ids=lambda g: g.name)
@pytest.mark.parametrize("kind,scheme", SIGNATURES, ids=lambda v: getattr(v, "name", v))
def test_every_suite_group_and_signature_completes(
    pki: Pki, suite: CipherSuite, group: NamedGroup, kind: str, scheme: SignatureScheme
) -> None:
    client = TlsClient(
        client_config(pki, cipher_suites=(suite,), groups=(group,), signature_algorithms=(scheme,)),
        b"c",
    )
    server = TlsServer(server_config(pki, kind), b"s")
    client.start()
    pump(client, server)
    assert client.handshake_complete and server.handshake_complete
    assert client.cipher_suite == server.cipher_suite == suite
    hash_len = 48 if suite == CipherSuite.AES_256_GCM_SHA384 else 32
    cs = secrets_by_key(client.pop_secrets())
    ss = secrets_by_key(server.pop_secrets())
    for (epoch, is_write), secret in cs.items():
        assert len(secret) == hash_len
        assert ss[(epoch, not is_write)] == secret


def test_hello_retry_request_when_the_key_share_does_not_fit(pki: Pki) -> None:
    # The client sends an x25519 share; the server only takes P-384.
    client = TlsClient(client_config(pki), b"c")
    server = TlsServer(server_config(pki, groups=(NamedGroup.secp384r1,)), b"s")
    client.start()
    ((_, ch1),) = client.pop_output()
    server.receive(Epoch.INITIAL, ch1)
    ((epoch, hrr),) = server.pop_output()
    assert epoch == Epoch.INITIAL and hrr[6:38] == HRR_RANDOM
    assert server.pop_secrets() == []
    client.receive(Epoch.INITIAL, hrr)
    pump(client, server)
    assert client.handshake_complete and server.handshake_complete
    assert (
        secrets_by_key(client.pop_secrets())[(Epoch.ONE_RTT, True)]
        == secrets_by_key(server.pop_secrets())[(Epoch.ONE_RTT, False)]
    )


def _full_then_ticket(pki: Pki, **server_kw: Any) -> tuple[TicketStore, SessionTicket]:
    store = TicketStore()
    client = TlsClient(client_config(pki, enable_early_data=True), b"c")
    server = TlsServer(server_config(pki, **server_kw), b"s", store)
    server.ticket_app_data = b"app-state"
    client.start()
    pump(client, server)
    assert server.send_session_ticket()
    pump(client, server)
    assert len(client.new_session_tickets) == 1
    return store, client.new_session_tickets[0]


def test_resumption_with_psk_dhe_skips_certificates(pki: Pki) -> None:
    store, ticket = _full_then_ticket(pki)
    assert not ticket.allows_early_data
    assert ticket.peer_transport_parameters == b"s"
    client = TlsClient(client_config(pki, session_ticket=ticket), b"c")
    server = TlsServer(server_config(pki), b"s", store)
    client.start()
    pump(client, server)
    assert client.session_resumed and server.session_resumed
    assert client.peer_certificate is None
    assert server.resumed_app_data == b"app-state"
    assert not client.early_data_accepted
    assert (
        secrets_by_key(client.pop_secrets())[(Epoch.ONE_RTT, True)]
        == secrets_by_key(server.pop_secrets())[(Epoch.ONE_RTT, False)]
    )


def test_zero_rtt_accepted_gives_both_sides_the_early_secret(pki: Pki) -> None:
    store, ticket = _full_then_ticket(pki, enable_early_data=True)
    assert ticket.allows_early_data
    client = TlsClient(client_config(pki, session_ticket=ticket, enable_early_data=True), b"c")
    server = TlsServer(server_config(pki, enable_early_data=True), b"s", store)
    client.start()
    early = client.pop_secrets()
    assert [(s.epoch, s.is_write) for s in early] == [(Epoch.ZERO_RTT, True)]
    ((_, ch),) = client.pop_output()
    server.receive(Epoch.INITIAL, ch)
    srv = secrets_by_key(server.pop_secrets())
    assert srv[(Epoch.ZERO_RTT, False)] == early[0].secret
    pump(client, server)
    assert client.early_data_accepted and server.early_data_accepted


def test_zero_rtt_replay_of_the_same_ticket_is_rejected_but_resumes(pki: Pki) -> None:
    store, ticket = _full_then_ticket(pki, enable_early_data=True)
    for expect_early in (True, False):
        client = TlsClient(client_config(pki, session_ticket=ticket, enable_early_data=True), b"c")
        server = TlsServer(server_config(pki, enable_early_data=True), b"s", store)
        client.start()
        pump(client, server)
        assert client.session_resumed
        assert client.early_data_accepted is expect_early
        assert server.early_data_accepted is expect_early
        assert ((Epoch.ZERO_RTT, False) in secrets_by_key(server.pop_secrets())) is expect_early


def test_zero_rtt_rejected_when_server_disables_it(pki: Pki) -> None:
    store, ticket = _full_then_ticket(pki, enable_early_data=True)
    client = TlsClient(client_config(pki, session_ticket=ticket, enable_early_data=True), b"c")
    server = TlsServer(server_config(pki, enable_early_data=False), b"s", store)
    client.start()
    assert client.pop_secrets()[0].epoch == Epoch.ZERO_RTT
    pump(client, server)
    assert client.handshake_complete and client.session_resumed
    assert not client.early_data_accepted and not server.early_data_accepted
    assert all(s.epoch != Epoch.ZERO_RTT for s in server.pop_secrets())


def test_zero_rtt_rejected_after_hello_retry_request(pki: Pki) -> None:
    store, ticket = _full_then_ticket(pki, enable_early_data=True)
    client = TlsClient(client_config(pki, session_ticket=ticket, enable_early_data=True), b"c")
    server = TlsServer(
        server_config(pki, enable_early_data=True, groups=(NamedGroup.secp256r1,)), b"s", store
    )
    client.start()
    pump(client, server)
    assert client.handshake_complete and client.session_resumed
    assert not client.early_data_accepted and not server.early_data_accepted


def test_ticket_from_another_server_key_falls_back_to_full_handshake(pki: Pki) -> None:
    _, ticket = _full_then_ticket(pki)
    client = TlsClient(client_config(pki, session_ticket=ticket), b"c")
    server = TlsServer(server_config(pki), b"s", TicketStore())
    client.start()
    pump(client, server)
    assert client.handshake_complete and not client.session_resumed


def test_expired_ticket_is_not_offered(pki: Pki) -> None:
    store, ticket = _full_then_ticket(pki)
    later = ticket.received_at + 86400 + 1
    client = TlsClient(client_config(pki, session_ticket=ticket, clock=lambda: later), b"c")
    server = TlsServer(server_config(pki, clock=lambda: later), b"s", store)
    client.start()
    pump(client, server)
    assert client.handshake_complete and not client.session_resumed


def test_client_authentication_with_a_ca_signed_certificate(pki: Pki) -> None:
    cert, key = pki.leaves["ed25519"]
    client = TlsClient(client_config(pki, certificate_chain=(cert,), private_key=key), b"c")
    server = TlsServer(server_config(pki, require_client_cert=True, cadata=pki.ca_pem), b"s")
    client.start()
    pump(client, server)
    assert server.handshake_complete and server.peer_certificate == cert


def test_client_without_certificate_is_refused_when_required(pki: Pki) -> None:
    client = TlsClient(client_config(pki), b"c")
    server = TlsServer(server_config(pki, require_client_cert=True, cadata=pki.ca_pem), b"s")
    client.start()
    with pytest.raises(TlsAlert) as info:
        pump(client, server)
    assert info.value.description == AlertDescription.certificate_required


def test_self_signed_certificate_pinned_as_its_own_trust_anchor(pki: Pki) -> None:
    cert_pem, key_pem = generate_self_signed(key_type="ec")
    cert = x509.load_pem_x509_certificate(cert_pem)
    key = serialization.load_pem_private_key(key_pem, None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    server = TlsServer(
        TlsConfig(
            is_client=False, alpn_protocols=("h3",), certificate_chain=(cert,), private_key=key
        ),
        b"s",
    )
    for name in ("localhost", "127.0.0.1", "::1"):
        client = TlsClient(client_config(pki, server_name=name, cadata=cert_pem), b"c")
        server = TlsServer(server._config, b"s")
        client.start()
        pump(client, server)
        assert client.handshake_complete


def test_insecure_mode_accepts_an_untrusted_certificate(pki: Pki) -> None:
    client = TlsClient(client_config(pki, verify_peer=False, server_name=None, cadata=None), b"c")
    server = TlsServer(server_config(pki), b"s")
    client.start()
    pump(client, server)
    assert client.handshake_complete


def test_keylog_lines_match_the_secrets(pki: Pki, tmp_path: Path) -> None:
    lines: list[str] = []
    path = tmp_path / "keys.log"
    client = TlsClient(
        client_config(pki, keylog_callback=lines.append, keylog_file=str(path)), b"c"
    )
    server = TlsServer(server_config(pki), b"s")
    client.start()
    pump(client, server)
    labels = [line.split()[0] for line in lines]
    assert sorted(labels) == sorted(
        [
            "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
            "SERVER_HANDSHAKE_TRAFFIC_SECRET",
            "CLIENT_TRAFFIC_SECRET_0",
            "SERVER_TRAFFIC_SECRET_0",
        ]
    )
    assert path.read_text().splitlines() == lines
    secrets = secrets_by_key(client.pop_secrets())
    by_label = {line.split()[0]: bytes.fromhex(line.split()[2]) for line in lines}
    assert by_label["CLIENT_TRAFFIC_SECRET_0"] == secrets[(Epoch.ONE_RTT, True)]
    assert by_label["SERVER_HANDSHAKE_TRAFFIC_SECRET"] == secrets[(Epoch.HANDSHAKE, False)]


def test_server_requiring_client_certificates_never_resumes(pki: Pki) -> None:
    cert, key = pki.leaves["ec"]
    store = TicketStore()
    cfg = server_config(pki, require_client_cert=True, cadata=pki.ca_pem)
    client = TlsClient(client_config(pki, certificate_chain=(cert,), private_key=key), b"c")
    server = TlsServer(cfg, b"s", store)
    client.start()
    pump(client, server)
    assert server.handshake_complete
    assert not server.send_session_ticket()
    # A ticket from a server that did not authenticate clients gives no way in.
    _, ticket = _full_then_ticket(pki)
    client = TlsClient(client_config(pki, session_ticket=ticket), b"c")
    server = TlsServer(cfg, b"s", store)
    client.start()
    with pytest.raises(TlsAlert) as info:
        pump(client, server)
    assert info.value.description == AlertDescription.certificate_required


def test_tickets_need_a_store_and_a_finished_handshake(pki: Pki) -> None:
    client = TlsClient(client_config(pki), b"c")
    server = TlsServer(server_config(pki), b"s", TicketStore())
    assert not server.send_session_ticket()
    client.start()
    pump(client, server)
    assert TlsServer(server_config(pki), b"s").send_session_ticket() is False
    assert server.send_session_ticket() and server.send_session_ticket()
    out = server.pop_output()
    assert [e for e, _ in out] == [Epoch.ONE_RTT]
    for epoch, data in out:
        client.receive(epoch, data)
    a, b = client.new_session_tickets
    assert a.ticket != b.ticket and a.psk != b.psk  # distinct nonces (RFC 9846 §4.6.1)
