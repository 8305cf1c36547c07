"""Full in-memory handshakes between our TLS client and server (RFC 9846 §2, RFC 9001 §4)."""

from __future__ import annotations

from tls_helpers import Pki, client_config, pump, secrets_by_key, server_config

from tquic.crypto.keys import CipherSuite
from tquic.crypto.tls import Epoch, NamedGroup, TlsClient, TlsServer


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
    assert client.handshake_complete and not server.handshake_complete
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
