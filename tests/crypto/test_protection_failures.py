"""A packet that does not authenticate raises DecryptionError, and nothing else.

RFC 9001 §5.5 / §9.5: tampered ciphertext, tampered headers, wrong keys and
truncated packets are all dropped; the engine only has to catch DecryptionError.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tquic.crypto.keys import QUIC_V1, QUIC_V2, CipherSuite, initial_secrets
from tquic.crypto.protection import DecryptionError, PacketProtection
from tquic.wire.packet import decode_packet_number

AES128 = CipherSuite.AES_128_GCM_SHA256
AES256 = CipherSuite.AES_256_GCM_SHA384
CHACHA = CipherSuite.CHACHA20_POLY1305_SHA256
SUITES = [AES128, AES256, CHACHA]
DCID = bytes.fromhex("8394c8f03e515708")


def _pair(suite: CipherSuite, version: int = QUIC_V1) -> tuple[PacketProtection, PacketProtection]:
    secret = bytes(range(7, 55 if suite == AES256 else 39))
    return (
        PacketProtection.from_secret(suite, secret, version),
        PacketProtection.from_secret(suite, secret, version),
    )


def _short_packet(sender: PacketProtection, pn: int = 0x1234) -> tuple[bytes, bytes, bytes]:
    header = bytes.fromhex("41") + b"ABCDEFGH" + (pn & 0xFFFF).to_bytes(2, "big")
    payload = bytes.fromhex("0f00") + b"stream data " * 20
    return header, payload, sender.protect(header, payload, pn)


def _long_packet(sender: PacketProtection, pn: int = 2) -> tuple[bytes, bytes, bytes]:
    header = bytes.fromhex("c300000001088394c8f03e5157080000449e") + pn.to_bytes(4, "big")
    payload = bytes.fromhex("060040f1") + bytes(1158)
    return header, payload, sender.protect(header, payload, pn)


@pytest.mark.parametrize("suite", SUITES)
def test_every_tampered_ciphertext_byte_is_rejected(suite: CipherSuite) -> None:
    sender, receiver = _pair(suite)
    header, payload, packet = _short_packet(sender)
    assert receiver.unprotect(packet, 9, 0x1233) == (header, payload, 0x1234)
    for i in range(len(header), len(packet)):
        tampered = bytearray(packet)
        tampered[i] ^= 0x01 << (i % 8)
        with pytest.raises(DecryptionError):
            receiver.unprotect(bytes(tampered), 9, 0x1233)
    assert receiver.decryption_failures > 0


@pytest.mark.parametrize("suite", SUITES)
def test_every_tampered_header_bit_is_rejected(suite: CipherSuite) -> None:
    sender, receiver = _pair(suite)
    header, _, packet = _short_packet(sender)
    for i in range(len(header)):
        for bit in range(8):
            tampered = bytearray(packet)
            tampered[i] ^= 1 << bit
            with pytest.raises(DecryptionError):
                receiver.unprotect(bytes(tampered), 9, 0x1233)


def test_every_tampered_long_header_byte_is_rejected() -> None:
    client, _ = initial_secrets(QUIC_V1, DCID)
    sender = PacketProtection.from_secret(AES128, client, QUIC_V1)
    receiver = PacketProtection.from_secret(AES128, client, QUIC_V1)
    header, _, packet = _long_packet(sender)
    for i in range(len(header)):
        tampered = bytearray(packet)
        tampered[i] ^= 0x04
        with pytest.raises(DecryptionError):
            receiver.unprotect(bytes(tampered), 18, 1)


@pytest.mark.parametrize("suite", SUITES)
def test_truncated_packets_of_every_length_are_rejected(suite: CipherSuite) -> None:
    sender, receiver = _pair(suite)
    _, payload, packet = _short_packet(sender)
    for length in range(len(packet)):
        with pytest.raises(DecryptionError):
            receiver.unprotect(packet[:length], 9, 0x1233)
    assert receiver.unprotect(packet, 9, 0x1233)[1] == payload


def test_truncated_initial_packets_of_every_length_are_rejected() -> None:
    client, _ = initial_secrets(QUIC_V2, DCID)
    sender = PacketProtection.from_secret(AES128, client, QUIC_V2)
    receiver = PacketProtection.from_secret(AES128, client, QUIC_V2)
    _, payload, packet = _long_packet(sender)
    for length in range(len(packet)):
        with pytest.raises(DecryptionError):
            receiver.unprotect(packet[:length], 18, -1)
    assert receiver.unprotect(packet, 18, -1)[1] == payload


def test_wrong_keys_are_rejected() -> None:
    client, server = initial_secrets(QUIC_V1, DCID)
    sender = PacketProtection.from_secret(AES128, client, QUIC_V1)
    _, _, packet = _long_packet(sender)
    wrong = [
        PacketProtection.from_secret(AES128, server, QUIC_V1),  # the other direction
        PacketProtection.from_secret(AES128, client, QUIC_V2),  # the other version's labels
        PacketProtection.from_secret(AES128, initial_secrets(QUIC_V1, b"other")[0], QUIC_V1),
        PacketProtection.from_secret(CHACHA, client, QUIC_V1),  # the other AEAD
        PacketProtection.from_secret(AES128, client, QUIC_V1).next_generation(),
    ]
    for receiver in wrong:
        with pytest.raises(DecryptionError):
            receiver.unprotect(packet, 18, -1)


def test_wrong_packet_number_guess_is_rejected() -> None:
    sender, receiver = _pair(AES128)
    _, _, packet = _short_packet(sender, pn=0x1234)
    # With largest_pn far away the same 16 truncated bits decode to another number.
    with pytest.raises(DecryptionError):
        receiver.unprotect(packet, 9, 0x5_0000)


def test_bad_packet_number_offsets_are_rejected() -> None:
    sender, receiver = _pair(CHACHA)
    _, _, packet = _short_packet(sender)
    for pn_offset in (-100, -1, 0, len(packet) - 19, len(packet), 10**6):
        with pytest.raises(DecryptionError):
            receiver.unprotect(packet, pn_offset, 0)


def test_chacha_unprotect_accepts_a_memoryview() -> None:
    sender, receiver = _pair(CHACHA)
    header, payload, packet = _short_packet(sender)
    assert receiver.unprotect(memoryview(b"xx" + packet)[2:], 9, 0x1233) == (
        header,
        payload,
        0x1234,
    )


_RECEIVERS = {
    (suite, version): _pair(suite, version)[1] for suite in SUITES for version in (QUIC_V1, QUIC_V2)
}


@settings(max_examples=400, deadline=None)
@given(
    data=st.binary(max_size=120),
    pn_offset=st.integers(min_value=-3, max_value=130),
    largest_pn=st.integers(min_value=-1, max_value=(1 << 62) - 1),
    path_id=st.integers(min_value=0, max_value=(1 << 32) - 1),
    key=st.sampled_from(sorted(_RECEIVERS)),
)
def test_random_bytes_never_raise_anything_but_decryption_error(
    data: bytes, pn_offset: int, largest_pn: int, path_id: int, key: tuple[CipherSuite, int]
) -> None:
    receiver = _RECEIVERS[key]
    with pytest.raises(DecryptionError):
        receiver.unprotect(data, pn_offset, largest_pn, path_id)


@settings(max_examples=200, deadline=None)
@given(
    suite=st.sampled_from(SUITES),
    version=st.sampled_from([QUIC_V1, QUIC_V2]),
    pn=st.integers(min_value=0, max_value=(1 << 62) - 1),
    pn_len=st.integers(min_value=1, max_value=4),
    long_header=st.booleans(),
    dcid=st.binary(max_size=20),
    payload=st.binary(min_size=3, max_size=300),
    path_id=st.integers(min_value=0, max_value=(1 << 32) - 1),
    flip=st.integers(min_value=0),
)
def test_round_trip_and_single_bit_flip(
    suite: CipherSuite,
    version: int,
    pn: int,
    pn_len: int,
    long_header: bool,
    dcid: bytes,
    payload: bytes,
    path_id: int,
    flip: int,
) -> None:
    sender = _RECEIVERS[(suite, version)]
    receiver = _pair(suite, version)[1]
    truncated = pn & ((1 << (8 * pn_len)) - 1)
    first = (0xC0 if long_header else 0x40) | (pn_len - 1)
    prefix = bytes((first,)) + dcid
    header = prefix + truncated.to_bytes(pn_len, "big")
    packet = sender.protect(header, payload, pn, path_id)
    assert receiver.unprotect(packet, len(prefix), max(pn - 1, -1), path_id) == (
        header,
        payload,
        pn,
    )
    # The two public halves of unprotect agree with it.
    assert receiver.remove_header_protection(packet, len(prefix)) == (header, truncated, pn_len)
    assert receiver.decrypt_payload(packet, header, pn, path_id) == payload
    tampered = bytearray(packet)
    tampered[flip % len(packet)] ^= 1 << (flip % 8)
    with pytest.raises(DecryptionError):
        receiver.unprotect(bytes(tampered), len(prefix), max(pn - 1, -1), path_id)


@settings(max_examples=200, deadline=None)
@given(
    largest=st.integers(min_value=-1, max_value=(1 << 62) - 2),
    pn_len=st.integers(min_value=1, max_value=4),
    distance=st.integers(min_value=-(1 << 31), max_value=1 << 31),
)
def test_packet_number_recovery_matches_rfc9000_a3(largest: int, pn_len: int, distance: int) -> None:
    # unprotect inlines RFC 9000 Appendix A.3; it must agree with the wire's
    # decode_packet_number, including far from the expected packet number.
    half_window = 1 << (8 * pn_len - 1)
    pn = min(max(largest + 1 + distance % half_window - half_window // 2, 0), (1 << 62) - 1)
    sender = _RECEIVERS[(AES128, QUIC_V1)]
    truncated = pn & ((1 << (8 * pn_len)) - 1)
    header = bytes((0x40 | (pn_len - 1),)) + truncated.to_bytes(pn_len, "big")
    packet = sender.protect(header, b"\x01" * 20, pn)
    expected = decode_packet_number(truncated, 8 * pn_len, largest)
    assert expected == pn
    assert _pair(AES128)[1].unprotect(packet, 1, largest)[2] == expected
