"""Key schedule (RFC 9846 §7.1) against RFC 8448 §3 "Simple 1-RTT Handshake".

The ClientHello/ServerHello bytes, X25519 keys and the secrets below are the
published RFC 8448 §3 values.  The application and resumption secrets need
the server's Certificate/CertificateVerify/Finished bytes, which are not
reproduced here; those are checked against an independent HKDF
(cryptography's HKDFExpand) instead.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from tquic.crypto.keys import CipherSuite, hkdf_expand_label
from tquic.crypto.tls.key_schedule import (
    KeySchedule,
    Transcript,
    finished_verify_data,
    resumption_psk,
)
from tquic.crypto.tls.messages import parse_client_hello, parse_server_hello


def h(s: str) -> bytes:
    return bytes.fromhex("".join(s.split()))


# RFC 8448 §3
CLIENT_PRIVATE = h("49af42ba7f7994852d713ef2784bcbcaa7911de26adc5642cb634540e7ea5005")
CLIENT_PUBLIC = h("99381de560e4bd43d23d8e435a7dbafeb3c06e51c13cae4d5413691e529aaf2c")
SERVER_PRIVATE = h("b1580eeadf6dd589b8ef4f2d5652578cc810e9980191ec8d058308cea216a21e")
SERVER_PUBLIC = h("c9828876112095fe66762bdbf7c672e156d6cc253b833df1dd69b1b04e751f0f")
SHARED = h("8bd4054fb55b9d63fdfbacf9f04b9f0d35e6d63f537563efd46272900f89492d")
CLIENT_HELLO = h(
    """01 00 00 c0 03 03 cb 34 ec b1 e7 81 63 ba 1c 38 c6 da cb 19 6a 6d ff a2 1a 8d 99
    12 ec 18 a2 ef 62 83 02 4d ec e7 00 00 06 13 01 13 03 13 02 01 00 00 91 00 00 00 0b
    00 09 00 00 06 73 65 72 76 65 72 ff 01 00 01 00 00 0a 00 14 00 12 00 1d 00 17 00 18
    00 19 01 00 01 01 01 02 01 03 01 04 00 23 00 00 00 33 00 26 00 24 00 1d 00 20 99 38
    1d e5 60 e4 bd 43 d2 3d 8e 43 5a 7d ba fe b3 c0 6e 51 c1 3c ae 4d 54 13 69 1e 52 9a
    af 2c 00 2b 00 03 02 03 04 00 0d 00 20 00 1e 04 03 05 03 06 03 02 03 08 04 08 05 08
    06 04 01 05 01 06 01 02 01 04 02 05 02 06 02 02 02 00 2d 00 02 01 01 00 1c 00 02 40
    01"""
)
SERVER_HELLO = h(
    """02 00 00 56 03 03 a6 af 06 a4 12 18 60 dc 5e 6e 60 24 9c d3 4c 95 93 0c 8a c5 cb 14
    34 da c1 55 77 2e d3 e2 69 28 00 13 01 00 00 2e 00 33 00 24 00 1d 00 20 c9 82 88 76
    11 20 95 fe 66 76 2b db f7 c6 72 e1 56 d6 cc 25 3b 83 3d f1 dd 69 b1 b0 4e 75 1f 0f
    00 2b 00 02 03 04"""
)
EARLY_SECRET = h("33ad0a1c607ec03b09e6cd9893680ce210adf300aa1f2660e1b22e10f170f92a")
HANDSHAKE_SECRET = h("1dc826e93606aa6fdc0aadc12f741b01046aa6b99f691ed221a9f0ca043fbeac")
CLIENT_HS_TRAFFIC = h("b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21")
SERVER_HS_TRAFFIC = h("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38")
MAIN_SECRET = h("18df06843d13a08bf2a449844c5f8a478001bc4d4c627984d5a41da8d0402919")
SERVER_HS_KEY = h("3fce516009c21727d0f2e4e86ee403bc")
SERVER_HS_IV = h("5d313eb2671276ee13000b30")


def test_rfc8448_x25519_keys_and_shared_secret() -> None:
    c = x25519.X25519PrivateKey.from_private_bytes(CLIENT_PRIVATE)
    s = x25519.X25519PrivateKey.from_private_bytes(SERVER_PRIVATE)
    assert c.public_key().public_bytes_raw() == CLIENT_PUBLIC
    assert s.public_key().public_bytes_raw() == SERVER_PUBLIC
    assert c.exchange(s.public_key()) == SHARED


def test_rfc8448_hellos_parse() -> None:
    ch = parse_client_hello(CLIENT_HELLO[4:])
    sh = parse_server_hello(SERVER_HELLO[4:])
    assert ch.cipher_suites == (0x1301, 0x1303, 0x1302)
    assert sh.cipher_suite == 0x1301 and not sh.is_hello_retry_request


def test_rfc8448_simple_1rtt_secrets() -> None:
    ks = KeySchedule(CipherSuite.AES_128_GCM_SHA256)
    assert ks.early_secret == EARLY_SECRET
    ks.enter_handshake(SHARED)
    assert ks.handshake_secret == HANDSHAKE_SECRET
    t = Transcript()
    t.add(CLIENT_HELLO)
    t.add(SERVER_HELLO)
    c_hs, s_hs = ks.handshake_traffic_secrets(t.digest("sha256"))
    assert c_hs == CLIENT_HS_TRAFFIC
    assert s_hs == SERVER_HS_TRAFFIC
    # RFC 8448 §3 "derive write traffic keys for handshake data" (TLS labels).
    assert hkdf_expand_label("sha256", s_hs, b"key", b"", 16) == SERVER_HS_KEY
    assert hkdf_expand_label("sha256", s_hs, b"iv", b"", 12) == SERVER_HS_IV
    ks.enter_main()
    assert ks.main_secret == MAIN_SECRET


def _independent_expand_label(secret: bytes, label: bytes, context: bytes, length: int) -> bytes:
    full = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + bytes([len(context)]) + context
    return HKDFExpand(hashes.SHA384(), length, info).derive(secret)


def test_sha384_application_and_resumption_secrets_match_an_independent_hkdf() -> None:
    ks = KeySchedule(CipherSuite.AES_256_GCM_SHA384)
    ks.enter_handshake(SHARED)
    ks.enter_main()
    th = hashlib.sha384(b"some transcript").digest()
    c_ap, s_ap = ks.application_traffic_secrets(th)
    assert c_ap == _independent_expand_label(ks.main_secret, b"c ap traffic", th, 48)
    assert s_ap == _independent_expand_label(ks.main_secret, b"s ap traffic", th, 48)
    res = ks.resumption_secret(th)
    assert res == _independent_expand_label(ks.main_secret, b"res master", th, 48)
    psk = resumption_psk("sha384", res, b"\x00\x01")
    assert psk == _independent_expand_label(res, b"resumption", b"\x00\x01", 48)


def test_finished_is_hmac_over_transcript_with_finished_key() -> None:
    base = bytes(range(32))
    th = hashlib.sha256(b"x").digest()
    key = hkdf_expand_label("sha256", base, b"finished", b"", 32)
    assert finished_verify_data("sha256", base, th) == hmac.digest(key, th, "sha256")


def test_hello_retry_request_transcript_uses_message_hash() -> None:
    t = Transcript()
    t.add(CLIENT_HELLO)
    t.replace_with_message_hash("sha256")
    digest = hashlib.sha256(CLIENT_HELLO).digest()
    assert t.digest("sha256") == hashlib.sha256(b"\xfe\x00\x00\x20" + digest).digest()


def test_transcript_hashes_stay_right_as_messages_are_added() -> None:
    # The running hashes are fed only what was added since the last digest; asked in
    # any order, with two hash functions and with ``extra``, they equal a fresh hash
    # of everything so far, and ``extra`` does not enter the transcript.
    t = Transcript()
    seen = b""
    for n, message in enumerate((CLIENT_HELLO, b"\x02" * 90, b"", b"\x08" * 700, b"\x14" * 36)):
        t.add(message)
        seen += message
        names = ("sha256", "sha384") if n % 2 else ("sha384", "sha256")
        for name in names:
            assert t.digest(name) == hashlib.new(name, seen).digest()
            assert t.digest(name, b"tail") == hashlib.new(name, seen + b"tail").digest()
    t.replace_with_message_hash("sha256")
    restart = b"\xfe\x00\x00\x20" + hashlib.sha256(seen).digest()
    assert t.digest("sha256") == hashlib.sha256(restart).digest()
    t.add(b"more")
    assert t.digest("sha384") == hashlib.sha384(restart + b"more").digest()
