"""Fuzzing: any bytes give a TlsAlert (never another exception, never internal_error)."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tls_helpers import Pki, client_config, make_pki, server_config

from tquic.crypto.tls import AlertDescription, Epoch, TicketStore, TlsAlert, TlsClient, TlsServer
from tquic.crypto.tls import extensions as ext
from tquic.crypto.tls import messages as m

PKI: Pki = make_pki()

PARSERS: list[Callable[[bytes], object]] = [
    m.parse_client_hello,
    m.parse_server_hello,
    m.parse_encrypted_extensions,
    m.parse_certificate_request,
    m.parse_certificate,
    m.parse_certificate_verify,
    lambda b: m.parse_finished(b, 32),
    m.parse_new_session_ticket,
    ext.parse_server_name,
    ext.parse_alpn,
    ext.parse_supported_versions_ch,
    lambda b: ext.parse_u16_list(b, "x"),
    ext.parse_key_share_ch,
    ext.parse_key_share_sh,
    ext.parse_psk_modes,
    ext.parse_offered_psks,
    ext.parse_max_early_data,
    ext.parse_cookie,
]
# TLS_FUZZ_EXAMPLES raises the effort for a long local run.
EXAMPLES = int(os.environ.get("TLS_FUZZ_EXAMPLES", "100"))
SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
FLIGHT_SETTINGS = settings(
    max_examples=max(EXAMPLES // 2, 10), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _no_internal_error(fn: Callable[[], object]) -> None:
    try:
        fn()
    except TlsAlert as alert:
        assert alert.description != AlertDescription.internal_error, alert.reason


@pytest.mark.parametrize("parser", PARSERS)
@SETTINGS
@given(data=st.binary(max_size=300))
def test_every_parser_raises_only_tls_alerts(
    parser: Callable[[bytes], object], data: bytes
) -> None:
    _no_internal_error(lambda: parser(data))


@SETTINGS
@given(epoch=st.sampled_from(list(Epoch)), chunks=st.lists(st.binary(max_size=200), max_size=4))
def test_server_receive_of_arbitrary_bytes(epoch: Epoch, chunks: list[bytes]) -> None:
    server = TlsServer(server_config(PKI), b"s", TicketStore())

    def run() -> None:
        for c in chunks:
            server.receive(epoch, c)

    _no_internal_error(run)


@SETTINGS
@given(epoch=st.sampled_from(list(Epoch)), chunks=st.lists(st.binary(max_size=200), max_size=4))
def test_client_receive_of_arbitrary_bytes(epoch: Epoch, chunks: list[bytes]) -> None:
    client = TlsClient(client_config(PKI), b"c")
    client.start()

    def run() -> None:
        for c in chunks:
            client.receive(epoch, c)

    _no_internal_error(run)


def _client_hello() -> bytes:
    client = TlsClient(client_config(PKI), b"c")
    client.start()
    ((_, ch),) = client.pop_output()
    return ch


CLIENT_HELLO = _client_hello()


def _mutate(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for pos, value in edits:
        out[pos % len(out)] = value
    return bytes(out)


@SETTINGS
@given(
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4)
)
def test_server_on_mutated_client_hello(edits: list[tuple[int, int]]) -> None:
    server = TlsServer(server_config(PKI), b"s", TicketStore())
    _no_internal_error(lambda: server.receive(Epoch.INITIAL, _mutate(CLIENT_HELLO, edits)))


def _server_flight() -> tuple[TlsClient, dict[Epoch, bytes]]:
    client = TlsClient(client_config(PKI, verify_peer=False, server_name=None, cadata=None), b"c")
    server = TlsServer(server_config(PKI), b"s")
    client.start()
    for epoch, data in client.pop_output():
        server.receive(epoch, data)
    return client, dict(server.pop_output())


@FLIGHT_SETTINGS
@given(
    target=st.sampled_from([Epoch.INITIAL, Epoch.HANDSHAKE]),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=3),
)
def test_client_on_mutated_server_flight(target: Epoch, edits: list[tuple[int, int]]) -> None:
    client, flight = _server_flight()
    flight[target] = _mutate(flight[target], edits)

    def run() -> None:
        client.receive(Epoch.INITIAL, flight[Epoch.INITIAL])
        client.receive(Epoch.HANDSHAKE, flight[Epoch.HANDSHAKE])

    _no_internal_error(run)


_exts = st.lists(
    st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=20)), max_size=5, unique_by=lambda e: e[0]
).map(tuple)


@SETTINGS
@given(
    random=st.binary(min_size=32, max_size=32),
    session_id=st.binary(max_size=32),
    suites=st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=5).map(tuple),
    exts=_exts.filter(lambda e: sum(4 + len(d) for _, d in e) >= 8),
)
def test_client_hello_round_trip(
    random: bytes, session_id: bytes, suites: tuple[int, ...], exts: ext.Extensions
) -> None:
    ch = m.ClientHello(0x0303, random, session_id, suites, b"\x00", exts)
    assert m.parse_client_hello(ch.encode()[4:]) == ch


@SETTINGS
@given(
    lifetime=st.integers(0, 2**32 - 1),
    age_add=st.integers(0, 2**32 - 1),
    nonce=st.binary(max_size=255),
    ticket=st.binary(min_size=1, max_size=300),
    exts=_exts,
)
def test_new_session_ticket_round_trip(
    lifetime: int, age_add: int, nonce: bytes, ticket: bytes, exts: ext.Extensions
) -> None:
    nst = m.NewSessionTicket(lifetime, age_add, nonce, ticket, exts)
    assert m.parse_new_session_ticket(nst.encode()[4:]) == nst


@SETTINGS
@given(
    context=st.binary(max_size=255),
    certs=st.lists(st.tuples(st.binary(min_size=1, max_size=50), _exts), max_size=3),
    algorithm=st.integers(0, 0xFFFF),
    signature=st.binary(max_size=300),
)
def test_certificate_and_verify_round_trip(
    context: bytes,
    certs: list[tuple[bytes, ext.Extensions]],
    algorithm: int,
    signature: bytes,
) -> None:
    msg = m.Certificate(context, tuple(m.CertificateEntry(d, e) for d, e in certs))
    assert m.parse_certificate(msg.encode()[4:]) == msg
    cv = m.CertificateVerify(algorithm, signature)
    assert m.parse_certificate_verify(cv.encode()[4:]) == cv
    ee = m.EncryptedExtensions(certs[0][1] if certs else ())
    assert m.parse_encrypted_extensions(ee.encode()[4:]) == ee


def _client_second_flight() -> tuple[TlsServer, bytes]:
    cert, key = PKI.leaves["ec"]
    client = TlsClient(client_config(PKI, certificate_chain=(cert,), private_key=key), b"c")
    server = TlsServer(server_config(PKI, require_client_cert=True, cadata=PKI.ca_pem), b"s")
    client.start()
    for epoch, data in client.pop_output():
        server.receive(epoch, data)
    for epoch, data in server.pop_output():
        client.receive(epoch, data)
    ((_, flight),) = client.pop_output()
    return server, flight


@FLIGHT_SETTINGS
@given(
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=3)
)
def test_server_on_mutated_client_certificate_flight(edits: list[tuple[int, int]]) -> None:
    server, flight = _client_second_flight()
    _no_internal_error(lambda: server.receive(Epoch.HANDSHAKE, _mutate(flight, edits)))


def _reference_extensions(data: bytes) -> tuple[tuple[int, bytes], ...]:
    """The extension block read field by field with the codec's Reader (RFC 9846 §4.2)."""
    from tquic.crypto.tls.codec import Reader

    block = Reader(data).sub(2, "x extensions")
    out: list[tuple[int, bytes]] = []
    while block.remaining:
        ext_type = block.u16()
        body = block.vector(2, "extension_data")
        if ext_type in {t for t, _ in out}:
            raise TlsAlert(AlertDescription.illegal_parameter, "duplicate")
        out.append((ext_type, body))
    return tuple(out)


@settings(max_examples=max(EXAMPLES, 300), suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 6), st.binary(max_size=6)), max_size=6),
       st.binary(max_size=4), st.integers(-3, 3))
def test_extension_blocks_parse_as_the_reader_does(
        exts: list[tuple[int, bytes]], tail: bytes, skew: int) -> None:
    # parse_extensions reads with slices (fast path of every handshake): the same
    # extensions as reading each field with the Reader, and a decode_error or an
    # illegal_parameter (duplicates) exactly where the Reader has one.
    from tquic.crypto.tls.codec import Reader
    from tquic.crypto.tls.codec import vec16 as v16

    body = b"".join(t.to_bytes(2, "big") + v16(d) for t, d in exts) + tail
    data = max(0, len(body) + skew).to_bytes(2, "big") + body
    try:
        expected: object = _reference_extensions(data)
    except TlsAlert as exc:
        expected = exc.description
    try:
        got: object = ext.parse_extensions(Reader(data), "x")
    except TlsAlert as exc:
        got = exc.description
    assert got == expected
