"""Every failure is a TlsAlert with the description RFC 9846 §6 / RFC 9001 §8 name."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable

import pytest
from tls_helpers import Pki, client_config, pump, server_config

from tquic.crypto.keys import CipherSuite
from tquic.crypto.tls import (
    AlertDescription,
    Epoch,
    NamedGroup,
    SignatureScheme,
    TicketStore,
    TlsAlert,
    TlsClient,
    TlsServer,
)
from tquic.crypto.tls.certs import certificate_to_pem, generate_ca, issue_certificate
from tquic.crypto.tls.extensions import (
    ExtensionType,
    encode_alpn,
    encode_key_share_ch,
    parse_key_share_ch,
    parse_offered_psks,
)
from tquic.crypto.tls.kex import KeyExchange
from tquic.crypto.tls.messages import (
    ClientHello,
    EncryptedExtensions,
    NewSessionTicket,
    ServerHello,
    parse_client_hello,
    parse_encrypted_extensions,
    parse_server_hello,
)
from tquic.wire.errors import TransportErrorCode, crypto_error

A = AlertDescription


def split(data: bytes) -> list[bytes]:
    out = []
    while data:
        n = 4 + int.from_bytes(data[1:4], "big")
        out.append(data[:n])
        data = data[n:]
    return out


def client_hello_bytes(pki: Pki, **kw: object) -> bytes:
    client = TlsClient(client_config(pki, **kw), b"c")
    client.start()
    ((_, ch),) = client.pop_output()
    return ch


def mutate_ch(ch: bytes, **changes: object) -> bytes:
    parsed = parse_client_hello(ch[4:])
    return dataclasses.replace(parsed, **changes).encode()  # type: ignore[arg-type]


def edit_exts(
    exts: tuple[tuple[int, bytes], ...],
    drop: tuple[int, ...] = (),
    add: tuple[tuple[int, bytes], ...] = (),
) -> tuple[tuple[int, bytes], ...]:
    kept = tuple((t, d) for t, d in exts if t not in drop)
    psk = tuple((t, d) for t, d in kept if t == ExtensionType.pre_shared_key)
    return tuple((t, d) for t, d in kept if t != ExtensionType.pre_shared_key) + add + psk


def server_alert(pki: Pki, ch: bytes, epoch: Epoch = Epoch.INITIAL, **kw: object) -> TlsAlert:
    server = TlsServer(server_config(pki, **kw), b"s")  # type: ignore[arg-type]
    with pytest.raises(TlsAlert) as info:
        server.receive(epoch, ch)
    # Fail closed: the endpoint stays dead.
    with pytest.raises(TlsAlert):
        server.receive(epoch, b"")
    return info.value


def ch_exts(pki: Pki) -> tuple[bytes, tuple[tuple[int, bytes], ...]]:
    ch = client_hello_bytes(pki)
    return ch, parse_client_hello(ch[4:]).extensions


# -- server side: ClientHello checks ---------------------------------------------------------


def test_tls12_only_client_gets_protocol_version(pki: Pki) -> None:
    ch, exts = ch_exts(pki)
    no_sv = mutate_ch(ch, extensions=edit_exts(exts, drop=(ExtensionType.supported_versions,)))
    assert server_alert(pki, no_sv).description == A.protocol_version
    only12 = mutate_ch(
        ch,
        extensions=edit_exts(
            exts,
            drop=(ExtensionType.supported_versions,),
            add=((ExtensionType.supported_versions, b"\x02\x03\x03"),),
        ),
    )
    alert = server_alert(pki, only12)
    assert alert.description == A.protocol_version
    assert alert.error_code == crypto_error(A.protocol_version) == 0x146


def test_non_empty_legacy_session_id_is_protocol_violation(pki: Pki) -> None:
    alert = server_alert(pki, mutate_ch(client_hello_bytes(pki), legacy_session_id=b"\x01" * 32))
    assert alert.error_code == TransportErrorCode.PROTOCOL_VIOLATION


def test_compression_methods_other_than_null_is_illegal_parameter(pki: Pki) -> None:
    ch = mutate_ch(client_hello_bytes(pki), compression_methods=b"\x00\x01")
    assert server_alert(pki, ch).description == A.illegal_parameter


def test_duplicate_extension_is_illegal_parameter(pki: Pki) -> None:
    ch, exts = ch_exts(pki)
    dup = mutate_ch(ch, extensions=(*exts, exts[0]))
    assert server_alert(pki, dup).description == A.illegal_parameter


def test_missing_transport_parameters_is_missing_extension_0x16d(pki: Pki) -> None:
    ch, exts = ch_exts(pki)
    alert = server_alert(
        pki,
        mutate_ch(ch, extensions=edit_exts(exts, drop=(ExtensionType.quic_transport_parameters,))),
    )
    assert alert.description == A.missing_extension and alert.error_code == 0x16D


@pytest.mark.parametrize(
    "dropped",
    [ExtensionType.signature_algorithms, ExtensionType.supported_groups, ExtensionType.key_share],
    ids=lambda e: e.name,
)
def test_missing_mandatory_extension_is_missing_extension(pki: Pki, dropped: ExtensionType) -> None:
    ch, exts = ch_exts(pki)
    alert = server_alert(pki, mutate_ch(ch, extensions=edit_exts(exts, drop=(dropped,))))
    assert alert.description == A.missing_extension


def test_no_alpn_or_no_common_alpn_is_no_application_protocol_0x178(pki: Pki) -> None:
    ch, exts = ch_exts(pki)
    alpn = ExtensionType.application_layer_protocol_negotiation
    none = mutate_ch(ch, extensions=edit_exts(exts, drop=(alpn,)))
    other = mutate_ch(
        ch, extensions=edit_exts(exts, drop=(alpn,), add=((alpn, encode_alpn(("hq",))),))
    )
    for bad in (none, other):
        alert = server_alert(pki, bad)
        assert alert.description == A.no_application_protocol and alert.error_code == 0x178


def test_no_common_cipher_suite_or_group_is_handshake_failure(pki: Pki) -> None:
    ch = client_hello_bytes(pki, cipher_suites=(CipherSuite.CHACHA20_POLY1305_SHA256,))
    alert = server_alert(pki, ch, cipher_suites=(CipherSuite.AES_128_GCM_SHA256,))
    assert alert.description == A.handshake_failure
    ch = client_hello_bytes(pki, groups=(NamedGroup.x25519,))
    assert server_alert(pki, ch, groups=(NamedGroup.secp256r1,)).description == A.handshake_failure


def test_no_common_signature_algorithm_is_handshake_failure(pki: Pki) -> None:
    ch = client_hello_bytes(pki, signature_algorithms=(SignatureScheme.ed25519,))
    assert server_alert(pki, ch).description == A.handshake_failure


def test_invalid_key_share_point_is_illegal_parameter(pki: Pki) -> None:
    ch, exts = ch_exts(pki)
    bad_share = (
        ExtensionType.key_share,
        (69).to_bytes(2, "big") + b"\x00\x17\x00\x41\x04" + b"\x01" * 64,
    )
    ch = mutate_ch(
        ch, extensions=edit_exts(exts, drop=(ExtensionType.key_share,), add=(bad_share,))
    )
    assert server_alert(pki, ch).description == A.illegal_parameter


def test_truncated_client_hello_is_decode_error(pki: Pki) -> None:
    ch = client_hello_bytes(pki)
    short = ch[:4] + ch[4:-3]
    short = short[:1] + (len(short) - 4).to_bytes(3, "big") + short[4:]
    assert server_alert(pki, short).description == A.decode_error


def test_client_hello_in_handshake_epoch_is_unexpected_message(pki: Pki) -> None:
    alert = server_alert(pki, client_hello_bytes(pki), epoch=Epoch.HANDSHAKE)
    assert alert.description == A.unexpected_message


def test_crypto_data_in_zero_rtt_is_protocol_violation(pki: Pki) -> None:
    alert = server_alert(pki, client_hello_bytes(pki), epoch=Epoch.ZERO_RTT)
    assert alert.error_code == TransportErrorCode.PROTOCOL_VIOLATION


def test_oversized_handshake_buffer_is_crypto_buffer_exceeded(pki: Pki) -> None:
    alert = server_alert(pki, b"\x01\x01\x00\x00" + b"\x00" * 100)
    assert alert.error_code == TransportErrorCode.CRYPTO_BUFFER_EXCEEDED
    alert = server_alert(pki, b"\x01\x00\xff\xff" + b"\x00" * 70000)
    assert alert.error_code == TransportErrorCode.CRYPTO_BUFFER_EXCEEDED


def test_key_update_message_is_unexpected_message(pki: Pki) -> None:
    assert server_alert(pki, b"\x18\x00\x00\x01\x00").description == A.unexpected_message


def test_end_of_early_data_is_unexpected_message(pki: Pki) -> None:
    assert server_alert(pki, b"\x05\x00\x00\x00").description == A.unexpected_message


def test_bad_psk_binder_is_decrypt_error(pki: Pki) -> None:
    store = TicketStore()
    client = TlsClient(client_config(pki), b"c")
    server = TlsServer(server_config(pki), b"s", store)
    client.start()
    pump(client, server)
    server.send_session_ticket()
    pump(client, server)
    ch = client_hello_bytes(pki, session_ticket=client.new_session_tickets[0])
    ch = ch[:-1] + bytes([ch[-1] ^ 1])  # the binder is the last byte of the ClientHello
    s2 = TlsServer(server_config(pki), b"s", store)
    with pytest.raises(TlsAlert) as info:
        s2.receive(Epoch.INITIAL, ch)
    assert info.value.description == A.decrypt_error
    # pre_shared_key that is not last is illegal_parameter.
    parsed = parse_client_hello(ch[4:])
    psk = parsed.extensions[-1]
    parse_offered_psks(psk[1])
    moved = dataclasses.replace(parsed, extensions=(psk, *parsed.extensions[:-1])).encode()
    s3 = TlsServer(server_config(pki), b"s", store)
    with pytest.raises(TlsAlert) as info:
        s3.receive(Epoch.INITIAL, moved)
    assert info.value.description == A.illegal_parameter


def test_second_client_hello_must_echo_cookie_and_drop_early_data(pki: Pki) -> None:
    client = TlsClient(client_config(pki), b"c")
    server = TlsServer(server_config(pki, groups=(NamedGroup.secp256r1,)), b"s")
    client.start()
    ((_, ch1),) = client.pop_output()
    server.receive(Epoch.INITIAL, ch1)
    ((_, hrr),) = server.pop_output()
    client.receive(Epoch.INITIAL, hrr)
    ((_, ch2),) = client.pop_output()
    parsed = parse_client_hello(ch2[4:])
    no_cookie = dataclasses.replace(
        parsed, extensions=edit_exts(parsed.extensions, drop=(ExtensionType.cookie,))
    ).encode()
    with pytest.raises(TlsAlert) as info:
        server.receive(Epoch.INITIAL, no_cookie)
    assert info.value.description == A.illegal_parameter


# -- client side: server flight checks ----------------------------------------------------


def client_alert(
    pki: Pki,
    edit: Callable[[list[bytes], list[bytes]], None],
    client_kw: dict[str, object] | None = None,
    **server_kw: object,
) -> TlsAlert:
    """Run to the server's first flight, let ``edit`` change its messages, feed the client."""
    client = TlsClient(client_config(pki, **(client_kw or {})), b"c")
    server = TlsServer(server_config(pki, **server_kw), b"s")  # type: ignore[arg-type]
    client.start()
    for epoch, data in client.pop_output():
        server.receive(epoch, data)
    out = dict(server.pop_output())
    initial = split(out.get(Epoch.INITIAL, b""))
    handshake = split(out.get(Epoch.HANDSHAKE, b""))
    edit(initial, handshake)
    with pytest.raises(TlsAlert) as info:
        client.receive(Epoch.INITIAL, b"".join(initial))
        client.receive(Epoch.HANDSHAKE, b"".join(handshake))
    return info.value


def edit_sh(**changes: object) -> Callable[[list[bytes], list[bytes]], None]:
    def edit(initial: list[bytes], _: list[bytes]) -> None:
        sh = parse_server_hello(initial[0][4:])
        initial[0] = dataclasses.replace(sh, **changes).encode()  # type: ignore[arg-type]

    return edit


def test_downgrade_sentinel_is_illegal_parameter(pki: Pki) -> None:
    tls12_random = b"\x11" * 24 + bytes.fromhex("444f574e47524401")

    def tls12(initial: list[bytes], _: list[bytes]) -> None:
        sh = parse_server_hello(initial[0][4:])
        exts = tuple(e for e in sh.extensions if e[0] != ExtensionType.supported_versions)
        initial[0] = ServerHello(0x0303, tls12_random, b"", sh.cipher_suite, 0, exts).encode()

    assert client_alert(pki, tls12).description == A.illegal_parameter
    assert client_alert(pki, edit_sh(random=tls12_random)).description == A.illegal_parameter


def test_server_hello_without_tls13_is_protocol_version(pki: Pki) -> None:
    def tls12(initial: list[bytes], _: list[bytes]) -> None:
        sh = parse_server_hello(initial[0][4:])
        exts = tuple(e for e in sh.extensions if e[0] != ExtensionType.supported_versions)
        initial[0] = dataclasses.replace(sh, extensions=exts).encode()

    assert client_alert(pki, tls12).description == A.protocol_version
    assert client_alert(pki, edit_sh(legacy_version=0x0302)).description == A.protocol_version


@pytest.mark.parametrize(
    "changes",
    [
        {"cipher_suite": 0x1304},
        {"compression_method": 1},
        {"legacy_session_id_echo": b"\x01"},
    ],
    ids=["suite-not-offered", "compression", "session-id-echo"],
)
def test_bad_server_hello_fields_are_illegal_parameter(
    pki: Pki, changes: dict[str, object]
) -> None:
    assert client_alert(pki, edit_sh(**changes)).description == A.illegal_parameter


def test_unsolicited_server_hello_extension_is_unsupported_extension(pki: Pki) -> None:
    def add(initial: list[bytes], _: list[bytes]) -> None:
        sh = parse_server_hello(initial[0][4:])
        initial[0] = dataclasses.replace(sh, extensions=(*sh.extensions, (0x1234, b""))).encode()

    assert client_alert(pki, add).description == A.unsupported_extension


def test_alpn_in_server_hello_is_illegal_parameter(pki: Pki) -> None:
    def add(initial: list[bytes], _: list[bytes]) -> None:
        sh = parse_server_hello(initial[0][4:])
        alpn = (ExtensionType.application_layer_protocol_negotiation, encode_alpn(("h3",)))
        initial[0] = dataclasses.replace(sh, extensions=(*sh.extensions, alpn)).encode()

    assert client_alert(pki, add).description == A.illegal_parameter


def edit_ee(
    fn: Callable[[tuple[tuple[int, bytes], ...]], tuple[tuple[int, bytes], ...]],
) -> Callable[[list[bytes], list[bytes]], None]:
    def edit(_: list[bytes], handshake: list[bytes]) -> None:
        ee = parse_encrypted_extensions(handshake[0][4:])
        handshake[0] = EncryptedExtensions(fn(ee.extensions)).encode()

    return edit


def test_encrypted_extensions_checks(pki: Pki) -> None:
    qtp = ExtensionType.quic_transport_parameters
    alpn = ExtensionType.application_layer_protocol_negotiation
    cases: list[
        tuple[Callable[[tuple[tuple[int, bytes], ...]], tuple[tuple[int, bytes], ...]], A]
    ] = [
        (lambda e: tuple(x for x in e if x[0] != qtp), A.missing_extension),
        (lambda e: tuple(x for x in e if x[0] != alpn), A.no_application_protocol),
        (
            lambda e: (*tuple(x for x in e if x[0] != alpn), (alpn, encode_alpn(("hq",)))),
            A.no_application_protocol,
        ),
        (lambda e: (*e, (0x4242, b"")), A.unsupported_extension),
        (lambda e: (*e, (ExtensionType.key_share, b"")), A.illegal_parameter),
        (lambda e: (*e, (ExtensionType.early_data, b"")), A.unsupported_extension),
    ]
    for fn, expected in cases:
        assert client_alert(pki, edit_ee(fn)).description == expected


def test_encrypted_extensions_in_initial_epoch_is_unexpected_message(pki: Pki) -> None:
    def move(initial: list[bytes], handshake: list[bytes]) -> None:
        initial.append(handshake.pop(0))

    assert client_alert(pki, move).description == A.unexpected_message


def test_wrong_server_finished_is_decrypt_error(pki: Pki) -> None:
    def flip(_: list[bytes], handshake: list[bytes]) -> None:
        fin = handshake[-1]
        handshake[-1] = fin[:-1] + bytes([fin[-1] ^ 0x80])

    assert client_alert(pki, flip).description == A.decrypt_error


def test_bad_certificate_verify_signature_is_decrypt_error(pki: Pki) -> None:
    def flip(_: list[bytes], handshake: list[bytes]) -> None:
        cv = handshake[-2]
        handshake[-2] = cv[:-1] + bytes([cv[-1] ^ 0x01])

    for kind in ("ec", "rsa", "ed25519"):
        client = TlsClient(client_config(pki), b"c")
        server = TlsServer(server_config(pki, kind), b"s")
        client.start()
        for epoch, data in client.pop_output():
            server.receive(epoch, data)
        out = dict(server.pop_output())
        hs = split(out[Epoch.HANDSHAKE])
        flip([], hs)
        client.receive(Epoch.INITIAL, out[Epoch.INITIAL])
        with pytest.raises(TlsAlert) as info:
            client.receive(Epoch.HANDSHAKE, b"".join(hs))
        assert info.value.description == A.decrypt_error, kind


def test_empty_server_certificate_is_decode_error(pki: Pki) -> None:
    def empty(_: list[bytes], handshake: list[bytes]) -> None:
        handshake[1] = b"\x0b\x00\x00\x04\x00\x00\x00\x00"

    assert client_alert(pki, empty).description == A.decode_error


def test_garbage_certificate_is_bad_certificate(pki: Pki) -> None:
    def garbage(_: list[bytes], handshake: list[bytes]) -> None:
        handshake[1] = b"\x0b\x00\x00\x0b\x00\x00\x00\x07\x00\x00\x02\x30\x00\x00\x00"

    assert client_alert(pki, garbage).description == A.bad_certificate


# -- certificate verification -------------------------------------------------------------


def test_certificate_for_another_host_is_bad_certificate(pki: Pki) -> None:
    alert = client_alert(pki, lambda i, h: None, {"server_name": "example.com"})
    assert alert.description == A.bad_certificate
    alert = client_alert(pki, lambda i, h: None, {"server_name": "10.1.2.3"})
    assert alert.description == A.bad_certificate


def test_expired_certificate_is_certificate_expired(pki: Pki) -> None:
    now = datetime.datetime.now(datetime.UTC)
    cert, key = issue_certificate(
        pki.ca,
        pki.ca_key,
        not_valid_before=now - datetime.timedelta(days=30),
        not_valid_after=now - datetime.timedelta(days=1),
    )
    alert = client_alert(pki, lambda i, h: None, certificate_chain=(cert,), private_key=key)
    assert alert.description == A.certificate_expired


def test_certificate_from_an_unknown_ca_is_unknown_ca(pki: Pki) -> None:
    other_ca, other_key = generate_ca("someone else")
    alert = client_alert(pki, lambda i, h: None, {"cadata": certificate_to_pem(other_ca)})
    assert alert.description == A.unknown_ca
    # And the system trust store does not know our test CA either.
    alert = client_alert(pki, lambda i, h: None, {"cadata": None})
    assert alert.description == A.unknown_ca
    del other_key


def test_client_certificate_from_an_unknown_ca_is_refused(pki: Pki) -> None:
    other_ca, other_key = generate_ca("someone else")
    cert, key = issue_certificate(other_ca, other_key)
    client = TlsClient(client_config(pki, certificate_chain=(cert,), private_key=key), b"c")
    server = TlsServer(server_config(pki, require_client_cert=True, cadata=pki.ca_pem), b"s")
    client.start()
    with pytest.raises(TlsAlert) as info:
        pump(client, server)
    assert info.value.description == A.unknown_ca


# -- post-handshake -------------------------------------------------------------------------


def test_new_session_ticket_with_wrong_max_early_data_is_protocol_violation(pki: Pki) -> None:
    client = TlsClient(client_config(pki), b"c")
    server = TlsServer(server_config(pki), b"s")
    client.start()
    pump(client, server)
    nst = NewSessionTicket(
        3600, 1, b"\x00", b"ticket", ((ExtensionType.early_data, b"\x00\x00\x40\x00"),)
    )
    with pytest.raises(TlsAlert) as info:
        client.receive(Epoch.ONE_RTT, nst.encode())
    assert info.value.error_code == TransportErrorCode.PROTOCOL_VIOLATION


def test_second_hello_retry_request_is_unexpected_message(pki: Pki) -> None:
    client = TlsClient(client_config(pki), b"c")
    server = TlsServer(server_config(pki, groups=(NamedGroup.secp256r1,)), b"s")
    client.start()
    for epoch, data in client.pop_output():
        server.receive(epoch, data)
    ((_, hrr),) = server.pop_output()
    client.receive(Epoch.INITIAL, hrr)
    with pytest.raises(TlsAlert) as info:
        client.receive(Epoch.INITIAL, hrr)
    assert info.value.description == A.unexpected_message


def test_hello_retry_request_for_a_group_already_sent_is_illegal_parameter(pki: Pki) -> None:
    client = TlsClient(client_config(pki), b"c")
    server = TlsServer(server_config(pki, groups=(NamedGroup.secp256r1,)), b"s")
    client.start()
    for epoch, data in client.pop_output():
        server.receive(epoch, data)
    ((_, hrr),) = server.pop_output()
    parsed = parse_server_hello(hrr[4:])
    exts = tuple(
        (t, NamedGroup.x25519.to_bytes(2, "big") if t == ExtensionType.key_share else d)
        for t, d in parsed.extensions
    )
    with pytest.raises(TlsAlert) as info:
        client.receive(Epoch.INITIAL, dataclasses.replace(parsed, extensions=exts).encode())
    assert info.value.description == A.illegal_parameter


def test_client_hello_round_trip_keeps_every_field() -> None:
    ch = ClientHello(
        0x0303, b"\x01" * 32, b"", (0x1301,), b"\x00", ((43, b"\x02\x03\x04"), (0x39, b""))
    )
    assert parse_client_hello(ch.encode()[4:]) == ch


def test_second_client_hello_with_an_extra_key_share_is_illegal_parameter(pki: Pki) -> None:
    server = TlsServer(server_config(pki, groups=(NamedGroup.secp256r1, NamedGroup.x25519)), b"s")
    # The client's first share is P-384, which the server does not take.
    client = TlsClient(
        client_config(pki, groups=(NamedGroup.secp384r1, NamedGroup.secp256r1, NamedGroup.x25519)),
        b"c",
    )
    client.start()
    ((_, ch1),) = client.pop_output()
    server.receive(Epoch.INITIAL, ch1)
    ((_, hrr),) = server.pop_output()
    client.receive(Epoch.INITIAL, hrr)
    ((_, ch2),) = client.pop_output()
    parsed = parse_client_hello(ch2[4:])
    shares = parse_key_share_ch(dict(parsed.extensions)[ExtensionType.key_share])
    extra = (*shares, (NamedGroup.x25519, KeyExchange(NamedGroup.x25519).public_bytes))
    exts = edit_exts(
        parsed.extensions,
        drop=(ExtensionType.key_share,),
        add=((ExtensionType.key_share, encode_key_share_ch(extra)),),
    )
    with pytest.raises(TlsAlert) as info:
        server.receive(Epoch.INITIAL, dataclasses.replace(parsed, extensions=exts).encode())
    assert info.value.description == A.illegal_parameter


def test_chain_through_an_intermediate_ca(pki: Pki) -> None:
    inter, inter_key = generate_ca("intermediate", issuer=(pki.ca, pki.ca_key))
    leaf, key = issue_certificate(inter, inter_key)
    client = TlsClient(client_config(pki), b"c")
    server = TlsServer(server_config(pki, certificate_chain=(leaf, inter), private_key=key), b"s")
    client.start()
    pump(client, server)
    assert client.handshake_complete
    assert client.peer_certificate_chain == (leaf, inter)
    # Without the intermediate the client cannot build a path.
    alert = client_alert(pki, lambda i, h: None, certificate_chain=(leaf,), private_key=key)
    assert alert.description == A.unknown_ca


def test_not_yet_valid_certificate_is_bad_certificate(pki: Pki) -> None:
    now = datetime.datetime.now(datetime.UTC)
    cert, key = issue_certificate(
        pki.ca,
        pki.ca_key,
        not_valid_before=now + datetime.timedelta(days=1),
        not_valid_after=now + datetime.timedelta(days=30),
    )
    alert = client_alert(pki, lambda i, h: None, certificate_chain=(cert,), private_key=key)
    assert alert.description == A.bad_certificate
