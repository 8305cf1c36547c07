"""TlsConfig validation, certificate helpers and the ticket store."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import given, settings
from hypothesis import strategies as st
from tls_helpers import Pki, client_config, pump, server_config

from tquic.crypto.keys import CipherSuite
from tquic.crypto.tls import Epoch, SessionTicket, TicketStore, TlsClient, TlsConfig, TlsServer
from tquic.crypto.tls.certs import (
    generate_self_signed,
    load_certificate_chain,
    load_private_key,
)
from tquic.crypto.tls.extensions import ExtensionType
from tquic.crypto.tls.messages import parse_client_hello
from tquic.crypto.tls.tickets import TicketState

# -- TlsConfig -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes,field",
    [
        ({"alpn_protocols": ()}, "alpn_protocols"),
        ({"alpn_protocols": ("",)}, "alpn_protocols"),
        ({"alpn_protocols": ("x" * 256,)}, "alpn_protocols"),
        ({"server_name": "bad name!"}, "server_name"),
        ({"server_name": None}, "server_name"),
        ({"cipher_suites": ()}, "cipher_suites"),
        ({"groups": (0x1234,)}, "groups"),
        ({"signature_algorithms": ()}, "signature_algorithms"),
        ({"ticket_lifetime": 604801}, "ticket_lifetime"),
        ({"max_early_data": 16384}, "max_early_data"),
        ({"cafile": "/nonexistent/ca.pem"}, "cafile"),
        ({"require_client_cert": True}, "require_client_cert"),
    ],
)
def test_client_config_rejects_bad_fields(pki: Pki, changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        client_config(pki, **changes)


def test_server_config_needs_a_matching_key(pki: Pki) -> None:
    cert, _ = pki.leaves["ec"]
    _, other_key = pki.leaves["ec384"]
    with pytest.raises(ValueError, match="certificate_chain"):
        TlsConfig(is_client=False, alpn_protocols=("h3",))
    with pytest.raises(ValueError, match="private_key"):
        TlsConfig(
            is_client=False,
            alpn_protocols=("h3",),
            certificate_chain=(cert,),
            private_key=other_key,
        )
    with pytest.raises(ValueError, match="session_ticket"):
        dataclasses.replace(server_config(pki), session_ticket=object())  # type: ignore[arg-type]


def test_client_and_server_refuse_the_wrong_config(pki: Pki) -> None:
    with pytest.raises(ValueError):
        TlsClient(server_config(pki), b"")
    with pytest.raises(ValueError):
        TlsServer(client_config(pki), b"")


# -- certificates ----------------------------------------------------------------------


@pytest.mark.parametrize("key_type", ["ec", "rsa", "ed25519"])
def test_generate_self_signed_covers_localhost_and_loopback(tmp_path: Path, key_type: str) -> None:
    cert_pem, key_pem = generate_self_signed(key_type=key_type)
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(key_pem)
    (cert,) = load_certificate_chain(str(tmp_path / "cert.pem"))
    key = load_private_key(str(tmp_path / "key.pem"))
    assert cert.public_key() == key.public_key()
    expected = {
        "ec": ec.EllipticCurvePrivateKey,
        "rsa": rsa.RSAPrivateKey,
        "ed25519": ed25519.Ed25519PrivateKey,
    }
    assert isinstance(key, expected[key_type])
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    # Usable as a server credential, and verifiable when pinned.
    server = TlsServer(
        TlsConfig(
            is_client=False, alpn_protocols=("h3",), certificate_chain=(cert,), private_key=key
        ),
        b"s",
    )
    client = TlsClient(
        TlsConfig(is_client=True, alpn_protocols=("h3",), server_name="127.0.0.1", cadata=cert_pem),
        b"c",
    )
    client.start()
    pump(client, server)
    assert client.handshake_complete


def test_generate_self_signed_rejects_unknown_key_type() -> None:
    with pytest.raises(ValueError, match="key_type"):
        generate_self_signed(key_type="dsa")


T = time.time()  # certificates must be valid at the test clock


# -- tickets ---------------------------------------------------------------------------


def _state(**kw: Any) -> TicketState:
    base: dict[str, Any] = {
        "cipher_suite": CipherSuite.AES_128_GCM_SHA256,
        "psk": b"\x01" * 32,
        "issued_at": 1000.0,
        "ticket_age_add": 12345,
        "lifetime": 3600,
        "alpn_protocol": "h3",
        "max_early_data": 0xFFFFFFFF,
        "server_name": "localhost",
        "app_data": b"x",
    }
    base.update(kw)
    return TicketState(**base)


def test_ticket_round_trips_and_tampering_is_ignored() -> None:
    store = TicketStore()
    ticket = store.seal(_state())
    assert store.open(ticket) == _state()
    assert store.open(ticket[:-1] + bytes([ticket[-1] ^ 1])) is None
    assert store.open(b"short") is None
    assert TicketStore().open(ticket) is None  # another key


def test_ticket_age_freshness_window() -> None:
    store = TicketStore(freshness_window=10)
    state = _state()
    # Client says 5 s old (obfuscated), server thinks 5 s: fresh.
    assert store.is_fresh(state, (5000 + 12345) % 2**32, 1005.0)
    assert not store.is_fresh(state, (5000 + 12345) % 2**32, 1030.0)


def test_early_data_claimed_once_and_cache_bounded() -> None:
    store = TicketStore(max_replay_entries=2, freshness_window=1)
    assert store.claim_early_data(b"a", now=0)
    assert not store.claim_early_data(b"a", now=0.5)
    assert store.claim_early_data(b"b", now=0.5)
    assert not store.claim_early_data(b"c", now=0.6)  # full: refuse, do not forget
    assert store.claim_early_data(b"c", now=5)  # old entries expired


def test_ticket_store_validates_its_arguments() -> None:
    with pytest.raises(ValueError):
        TicketStore(key=b"short")
    with pytest.raises(ValueError):
        TicketStore(freshness_window=0)


def _ticket(pki: Pki, store: TicketStore, clock: float) -> Any:
    client = TlsClient(client_config(pki, enable_early_data=True, clock=lambda: clock), b"c")
    server = TlsServer(server_config(pki, enable_early_data=True, clock=lambda: clock), b"s", store)
    client.start()
    pump(client, server)
    server.send_session_ticket()
    pump(client, server)
    return client.new_session_tickets[0]


def test_zero_rtt_rejected_when_ticket_age_does_not_match(pki: Pki) -> None:
    store = TicketStore(freshness_window=10)
    ticket = _ticket(pki, store, T)
    # The client's clock says 1 s passed, the server's says 60 s: a replay suspect.
    client = TlsClient(
        client_config(pki, session_ticket=ticket, enable_early_data=True, clock=lambda: T + 1),
        b"c",
    )
    server = TlsServer(
        server_config(pki, enable_early_data=True, clock=lambda: T + 60), b"s", store
    )
    client.start()
    pump(client, server)
    assert client.session_resumed and not client.early_data_accepted


def test_zero_rtt_rejected_when_alpn_changes(pki: Pki) -> None:
    store = TicketStore()
    ticket = _ticket(pki, store, T)
    client = TlsClient(
        client_config(
            pki,
            alpn_protocols=("h3", "hq"),
            session_ticket=ticket,
            enable_early_data=True,
            clock=lambda: T + 1,
        ),
        b"c",
    )
    server = TlsServer(
        server_config(
            pki, alpn_protocols=("hq", "h3"), enable_early_data=True, clock=lambda: T + 1
        ),
        b"s",
        store,
    )
    client.start()
    pump(client, server)
    assert client.alpn_protocol == "hq"
    assert client.session_resumed and not client.early_data_accepted


def test_early_data_check_hook_can_refuse(pki: Pki) -> None:
    store = TicketStore()
    ticket = _ticket(pki, store, T)
    client = TlsClient(
        client_config(pki, session_ticket=ticket, enable_early_data=True, clock=lambda: T + 1),
        b"c",
    )
    server = TlsServer(server_config(pki, enable_early_data=True, clock=lambda: T + 1), b"s", store)
    seen: list[bytes] = []

    def refuse(app_data: bytes) -> bool:
        seen.append(app_data)
        return False

    server.early_data_check = refuse
    client.start()
    pump(client, server)
    assert seen == [b""] and not server.early_data_accepted


def test_unknown_client_hello_extensions_are_ignored(pki: Pki) -> None:
    client = TlsClient(client_config(pki), b"c")
    client.start()
    ((_, ch),) = client.pop_output()
    parsed = parse_client_hello(ch[4:])
    grease = ((0x0A0A, b""), (0xFAFA, b"\x00"))
    edited = dataclasses.replace(parsed, extensions=grease + parsed.extensions).encode()
    server = TlsServer(server_config(pki), b"s")
    server.receive(Epoch.INITIAL, edited)
    assert server.pop_output()  # the server answers
    assert ExtensionType.quic_transport_parameters in dict(parsed.extensions)


def test_session_ticket_survives_serialization_and_still_resumes(pki: Pki) -> None:
    store = TicketStore()
    ticket = _ticket(pki, store, T)
    copy = SessionTicket.from_bytes(ticket.to_bytes())
    assert copy == ticket
    client = TlsClient(
        client_config(pki, session_ticket=copy, enable_early_data=True, clock=lambda: T + 1), b"c"
    )
    server = TlsServer(server_config(pki, enable_early_data=True, clock=lambda: T + 1), b"s", store)
    client.start()
    pump(client, server)
    assert client.session_resumed and client.early_data_accepted


@given(data=st.binary(max_size=200))
@settings(max_examples=200, deadline=None)
def test_session_ticket_from_bytes_raises_only_value_error(data: bytes) -> None:
    try:
        ticket = SessionTicket.from_bytes(data)
    except ValueError:
        return
    assert ticket.to_bytes() == data
