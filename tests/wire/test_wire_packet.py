"""Packet headers: RFC 9000 §17 / Appendix A.2-A.3, RFC 9001 A.2-A.5, RFC 9369 Appendix A."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tquic.crypto.keys import hkdf_expand_label
from tquic.wire.errors import QuicDecodeError, TransportErrorCode
from tquic.wire.packet import (
    RETRY_KEYS,
    RETRY_SECRETS,
    PacketType,
    decode_packet_number,
    encode_long_header,
    encode_packet_number,
    encode_retry,
    encode_short_header,
    encode_version_negotiation,
    initial_token,
    long_header_size,
    parse_header,
    split_datagram,
    verify_retry_integrity,
)
from tquic.wire.version import (
    QUIC_V1,
    QUIC_V2,
    SUPPORTED_VERSIONS,
    grease_version,
    is_grease_version,
    is_supported_version,
)

CLIENT_DCID = bytes.fromhex("8394c8f03e515708")  # RFC 9001 Appendix A / RFC 9369 Appendix A
SERVER_CID = bytes.fromhex("f067a5502a4262b5")

# RFC 9001 A.4 and RFC 9369 Appendix A "Retry".
RETRY_V1 = bytes.fromhex(
    "ff000000010008f067a5502a4262b5746f6b656e04a265ba2eff4d829058fb3f0f2496ba"
)
RETRY_V2 = bytes.fromhex(
    "cf6b3343cf0008f067a5502a4262b5746f6b656ec8646ce8bfe33952d955543665dcc7b6"
)

# RFC 9001 A.3: the protected server Initial (header protection applied).
SERVER_INITIAL_V1 = bytes.fromhex(
    "cf000000010008f067a5502a4262b5004075c0d95a482cd0991cd25b0aac406a"
    "5816b6394100f37a1c69797554780bb38cc5a99f5ede4cf73c3ec2493a1839b3"
    "dbcba3f6ea46c5b7684df3548e7ddeb9c3bf9c73cc3f3bded74b562bfb19fb84"
    "022f8ef4cdd93795d77d06edbb7aaf2f58891850abbdca3d20398c276456cbc4"
    "2158407dd074ee"
)
# RFC 9369 Appendix A "Server Initial".
SERVER_INITIAL_V2 = bytes.fromhex(
    "dc6b3343cf0008f067a5502a4262b5004075d92faaf16f05d8a4398c47089698"
    "baeea26b91eb761d9b89237bbf872630179153582300"
    "35f7fd3945d88965cf17f9af6e16886c61bfc703106fbaf3cb4cfa52382dd16a393e42757507698075b2"
    "c984c707f0a0812d8cd5a6881eaf21ceda98f4bd23f6fe1a3e2c43edd9ce7ca84bed8521e2e140"
)


# --- versions -------------------------------------------------------------------


def test_version_constants_match_rfc9000_and_rfc9369() -> None:
    assert QUIC_V1 == 0x00000001
    assert QUIC_V2 == 0x6B3343CF
    assert SUPPORTED_VERSIONS == (QUIC_V1, QUIC_V2)
    assert is_supported_version(QUIC_V2)
    assert not is_supported_version(0xFF00001D)


def test_grease_versions_follow_the_0x_a_a_a_a_pattern() -> None:
    assert is_grease_version(0x0A0A0A0A)
    assert is_grease_version(0x1A2A3A4A)
    assert not is_grease_version(QUIC_V1)
    assert not is_grease_version(QUIC_V2)
    for _ in range(20):
        assert is_grease_version(grease_version())


# --- packet numbers (RFC 9000 Appendix A.2, A.3) -----------------------------------


def test_rfc9000_a2_packet_number_0xac5c02_uses_16_bits() -> None:
    truncated, length = encode_packet_number(0xAC5C02, 0xABE8B3)
    assert length == 2
    assert truncated == 0x5C02


def test_rfc9000_a2_packet_number_0xace8fe_uses_24_bits() -> None:
    truncated, length = encode_packet_number(0xACE8FE, 0xABE8B3)
    assert length == 3
    assert truncated == 0xACE8FE


def test_rfc9000_a3_0x9b32_after_0xa82f30ea_decodes_to_0xa82f9b32() -> None:
    assert decode_packet_number(0x9B32, 16, 0xA82F30EA) == 0xA82F9B32


def test_packet_number_without_acknowledgment_covers_the_full_number() -> None:
    assert encode_packet_number(0, None) == (0, 1)
    # 127 unacknowledged numbers fit 8 bits with room for twice the range; 128 do
    # not ("more than twice as large a range", RFC 9000 §17.1).
    assert encode_packet_number(126, None) == (126, 1)
    assert encode_packet_number(127, None) == (127, 2)
    assert encode_packet_number(2**40, None)[1] == 4


def test_encode_packet_number_refuses_numbers_at_or_below_largest_acked() -> None:
    with pytest.raises(ValueError):
        encode_packet_number(5, 5)


def test_decode_packet_number_handles_wrap_downwards() -> None:
    # Expected 0x100 with 8 bits; 0xff is the packet just before, not 0x1ff.
    assert decode_packet_number(0xFF, 8, 0xFF) == 0xFF
    assert decode_packet_number(0x01, 8, 0xFF) == 0x101
    assert decode_packet_number(0x00, 8, -1) == 0


@settings(max_examples=300, deadline=None)
@given(
    largest_acked=st.integers(min_value=0, max_value=2**40),
    ahead=st.integers(min_value=1, max_value=2**20),
    received_lag=st.integers(min_value=0, max_value=2**20),
)
def test_encoded_packet_numbers_decode_back_at_the_receiver(
    largest_acked: int, ahead: int, received_lag: int
) -> None:
    """A receiver whose largest received lies between largest_acked and the new number
    recovers the full packet number (RFC 9000 §17.1)."""
    full_pn = largest_acked + ahead
    truncated, length = encode_packet_number(full_pn, largest_acked)
    largest_received = max(largest_acked, full_pn - 1 - received_lag)
    assert decode_packet_number(truncated, 8 * length, largest_received) == full_pn


# --- long and short headers -------------------------------------------------------


def test_rfc9001_a2_client_initial_header_is_reproduced() -> None:
    header = encode_long_header(QUIC_V1, PacketType.INITIAL, CLIENT_DCID, b"", b"",
                                1182 - 4, 2, 4)
    assert header.hex() == "c300000001088394c8f03e5157080000449e00000002"
    assert long_header_size(8, 0, 0, 1182, 4) == len(header)


def test_rfc9001_a3_server_initial_header_is_reproduced() -> None:
    header = encode_long_header(QUIC_V1, PacketType.INITIAL, b"", SERVER_CID, b"",
                                117 - 2, 1, 2)
    assert header.hex() == "c1000000010008f067a5502a4262b50040750001"


def test_rfc9369_server_initial_header_uses_v2_type_bits() -> None:
    header = encode_long_header(QUIC_V2, PacketType.INITIAL, b"", SERVER_CID, b"",
                                117 - 2, 1, 2)
    assert header.hex() == "d16b3343cf0008f067a5502a4262b50040750001"


def test_rfc9369_client_initial_header_is_reproduced() -> None:
    header = encode_long_header(QUIC_V2, PacketType.INITIAL, CLIENT_DCID, b"", b"",
                                1182 - 4, 2, 4)
    assert header.hex() == "d36b3343cf088394c8f03e5157080000449e00000002"


def test_rfc9001_a5_short_header_is_reproduced() -> None:
    assert encode_short_header(b"", 654360564, 3, key_phase=False).hex() == "4200bff4"


def test_short_header_sets_spin_and_key_phase_bits() -> None:
    header = encode_short_header(b"\xaa\xbb", 1, 1, key_phase=True, spin=True)
    assert header == bytes((0x40 | 0x20 | 0x04,)) + b"\xaa\xbb\x01"


@pytest.mark.parametrize(("packet", "version"), [(SERVER_INITIAL_V1, QUIC_V1),
                                                 (SERVER_INITIAL_V2, QUIC_V2)])
def test_protected_rfc_server_initial_parses(packet: bytes, version: int) -> None:
    header = parse_header(packet, 0, 8)
    assert header.is_long
    assert header.version == version
    assert header.packet_type is PacketType.INITIAL
    assert header.dcid == b""
    assert header.scid == SERVER_CID
    assert header.token == b""
    assert header.pn_offset == 18
    assert header.packet_end == 18 + 117 == len(packet)
    assert header.first_byte == packet[0]


@pytest.mark.parametrize("version", [QUIC_V1, QUIC_V2])
@pytest.mark.parametrize("ptype", [PacketType.INITIAL, PacketType.ZERO_RTT,
                                   PacketType.HANDSHAKE])
def test_long_header_round_trips_every_type_and_version(version: int,
                                                        ptype: PacketType) -> None:
    token = b"tok" if ptype is PacketType.INITIAL else b""
    header = encode_long_header(version, ptype, b"D" * 20, b"S" * 5, token, 30, 7, 2)
    packet = header + b"\x00" * 30
    parsed = parse_header(packet, 0, 20)
    assert parsed.packet_type is ptype
    assert parsed.version == version
    assert (parsed.dcid, parsed.scid, parsed.token) == (b"D" * 20, b"S" * 5, token)
    assert parsed.pn_offset == len(header) - 2
    assert parsed.packet_end == len(packet)


def test_long_header_refuses_types_without_a_packet_number() -> None:
    for ptype in (PacketType.RETRY, PacketType.ONE_RTT, PacketType.VERSION_NEGOTIATION):
        with pytest.raises(ValueError):
            encode_long_header(QUIC_V1, ptype, b"", b"", b"", 1, 0, 1)
    with pytest.raises(ValueError):
        encode_long_header(0x0A0A0A0A, PacketType.INITIAL, b"", b"", b"", 1, 0, 1)
    with pytest.raises(ValueError):
        encode_long_header(QUIC_V1, PacketType.INITIAL, b"x" * 21, b"", b"", 1, 0, 1)


def test_short_header_parses_with_the_host_cid_length() -> None:
    packet = encode_short_header(b"12345678", 0x1234, 2, key_phase=False) + b"payload"
    header = parse_header(packet, 0, 8)
    assert not header.is_long
    assert header.version is None
    assert header.packet_type is PacketType.ONE_RTT
    assert header.dcid == b"12345678"
    assert header.pn_offset == 9
    assert header.packet_end == len(packet)


def test_cleared_fixed_bit_is_rejected_unless_grease_quic_bit_was_advertised() -> None:
    # RFC 9287 §3: the QUIC bit may be cleared only toward a peer that sent
    # grease_quic_bit; otherwise RFC 9000 §17.3.1 says discard.
    packet = encode_short_header(b"12345678", 1, 1, key_phase=False, fixed_bit=False)
    packet += bytes(20)
    assert packet[0] & 0x40 == 0
    with pytest.raises(QuicDecodeError) as info:
        parse_header(packet, 0, 8)
    assert info.value.error_code == TransportErrorCode.PROTOCOL_VIOLATION
    assert parse_header(packet, 0, 8, allow_cleared_fixed_bit=True).dcid == b"12345678"
    long_packet = encode_long_header(QUIC_V1, PacketType.HANDSHAKE, b"", b"", b"", 20, 0, 1,
                                     fixed_bit=False) + bytes(20)
    assert long_packet[0] & 0x40 == 0
    with pytest.raises(QuicDecodeError):
        parse_header(long_packet, 0, 0)
    assert parse_header(long_packet, 0, 0, allow_cleared_fixed_bit=True).packet_type \
        is PacketType.HANDSHAKE


def test_v1_connection_id_longer_than_20_bytes_is_rejected() -> None:
    packet = bytes((0xC0,)) + QUIC_V1.to_bytes(4, "big") + bytes((21,)) + bytes(21) + b"\x00"
    with pytest.raises(QuicDecodeError):
        parse_header(packet + bytes(30), 0, 8)


def test_unknown_version_exposes_invariant_fields_with_long_cids() -> None:
    # RFC 8999 §5.1: CIDs of other versions may be up to 255 bytes.
    packet = (bytes((0xC0,)) + (0x0A1A2A3A).to_bytes(4, "big") + bytes((40,)) + b"d" * 40
              + bytes((3,)) + b"sss" + bytes(1200))
    header = parse_header(packet, 0, 8)
    assert header.packet_type is PacketType.UNKNOWN_VERSION
    assert header.version == 0x0A1A2A3A
    assert (header.dcid, header.scid) == (b"d" * 40, b"sss")
    assert header.packet_end == len(packet)


def test_length_past_the_datagram_is_a_protocol_violation() -> None:
    packet = encode_long_header(QUIC_V1, PacketType.HANDSHAKE, b"a", b"b", b"", 100, 0, 1)
    with pytest.raises(QuicDecodeError) as info:
        parse_header(packet + bytes(50), 0, 1)
    assert info.value.error_code == TransportErrorCode.PROTOCOL_VIOLATION


# --- coalescing (RFC 9000 §12.2) ---------------------------------------------------


def _coalesced() -> tuple[bytes, list[int]]:
    dcid = b"C" * 8
    initial = encode_long_header(QUIC_V1, PacketType.INITIAL, dcid, b"s", b"", 40, 0, 1)
    initial += bytes(40)
    handshake = encode_long_header(QUIC_V1, PacketType.HANDSHAKE, dcid, b"s", b"", 30, 0, 1)
    handshake += bytes(30)
    short = encode_short_header(dcid, 0, 1, key_phase=False) + bytes(25)
    return initial + handshake + short, [len(initial), len(handshake), len(short)]


def test_split_datagram_finds_every_coalesced_packet() -> None:
    datagram, sizes = _coalesced()
    headers = split_datagram(datagram, 8)
    assert [h.packet_type for h in headers] == [PacketType.INITIAL, PacketType.HANDSHAKE,
                                                PacketType.ONE_RTT]
    ends = [sizes[0], sizes[0] + sizes[1], len(datagram)]
    assert [h.packet_end for h in headers] == ends


def test_split_datagram_stops_at_trailing_garbage() -> None:
    datagram, sizes = _coalesced()
    first_two = datagram[: sizes[0] + sizes[1]]
    headers = split_datagram(first_two + b"\xc0\x00", 8)
    assert len(headers) == 2


def test_split_datagram_ignores_packets_with_another_dcid() -> None:
    first = encode_long_header(QUIC_V1, PacketType.INITIAL, b"A" * 8, b"", b"", 20, 0, 1)
    second = encode_long_header(QUIC_V1, PacketType.HANDSHAKE, b"B" * 8, b"", b"", 20, 0, 1)
    headers = split_datagram(first + bytes(20) + second + bytes(20), 8)
    assert len(headers) == 1


def test_split_datagram_raises_when_the_first_packet_is_bad() -> None:
    with pytest.raises(QuicDecodeError):
        split_datagram(b"\xc0\x00\x00", 8)
    with pytest.raises(QuicDecodeError):
        split_datagram(b"", 8)


# --- Version Negotiation ----------------------------------------------------------


def test_version_negotiation_round_trips() -> None:
    versions = (QUIC_V1, QUIC_V2, 0x1A2A3A4A)
    packet = encode_version_negotiation(b"client-scid", b"client-dcid", versions)
    assert packet[0] & 0xC0 == 0xC0  # header form, plus 0x40 as §17.2.1 recommends
    assert packet[1:5] == b"\x00\x00\x00\x00"
    header = parse_header(packet, 0, 8)
    assert header.packet_type is PacketType.VERSION_NEGOTIATION
    assert header.version == 0
    assert header.dcid == b"client-scid"
    assert header.scid == b"client-dcid"
    assert header.supported_versions == versions
    assert split_datagram(packet, 8) == [header]


def test_version_negotiation_with_a_partial_version_is_rejected() -> None:
    packet = encode_version_negotiation(b"a", b"b", (QUIC_V1,)) + b"\x00\x01"
    with pytest.raises(QuicDecodeError):
        parse_header(packet, 0, 8)


# --- Retry (RFC 9001 §5.8 / A.4, RFC 9369 §3.3.3 / Appendix A) ----------------------


def test_rfc9001_a4_retry_is_reproduced_byte_for_byte() -> None:
    assert encode_retry(QUIC_V1, b"", SERVER_CID, CLIENT_DCID, b"token") == RETRY_V1


def test_rfc9369_retry_is_reproduced_byte_for_byte() -> None:
    assert encode_retry(QUIC_V2, b"", SERVER_CID, CLIENT_DCID, b"token") == RETRY_V2


@pytest.mark.parametrize(("packet", "version"), [(RETRY_V1, QUIC_V1), (RETRY_V2, QUIC_V2)])
def test_rfc_retry_packets_parse_and_verify(packet: bytes, version: int) -> None:
    header = parse_header(packet, 0, 8)
    assert header.packet_type is PacketType.RETRY
    assert header.version == version
    assert header.scid == SERVER_CID
    assert header.token == b"token"
    assert header.retry_integrity_tag == packet[-16:]
    assert verify_retry_integrity(version, packet, CLIENT_DCID)


@pytest.mark.parametrize(("packet", "version"), [(RETRY_V1, QUIC_V1), (RETRY_V2, QUIC_V2)])
def test_retry_integrity_fails_for_another_odcid_or_a_flipped_bit(packet: bytes,
                                                                  version: int) -> None:
    assert not verify_retry_integrity(version, packet, CLIENT_DCID[:-1] + b"\x00")
    corrupted = bytearray(packet)
    corrupted[10] ^= 1
    assert not verify_retry_integrity(version, bytes(corrupted), CLIENT_DCID)
    other = QUIC_V2 if version == QUIC_V1 else QUIC_V1
    assert not verify_retry_integrity(other, packet, CLIENT_DCID)
    assert not verify_retry_integrity(version, packet[:10], CLIENT_DCID)


@pytest.mark.parametrize(("version", "key_label", "iv_label"),
                         [(QUIC_V1, b"quic key", b"quic iv"),
                          (QUIC_V2, b"quicv2 key", b"quicv2 iv")])
def test_retry_key_and_nonce_derive_from_the_published_secret(version: int, key_label: bytes,
                                                              iv_label: bytes) -> None:
    secret = RETRY_SECRETS[version]
    key, nonce = RETRY_KEYS[version]
    assert hkdf_expand_label("sha256", secret, key_label, b"", 16) == key
    assert hkdf_expand_label("sha256", secret, iv_label, b"", 12) == nonce


def test_retry_shorter_than_its_tag_is_rejected() -> None:
    with pytest.raises(QuicDecodeError):
        parse_header(RETRY_V1[:20], 0, 8)


@pytest.mark.parametrize("tail,token", [
    (b"\x00rest", b""), (b"\x03abcrest", b"abc"), (b"\x40\x02xy", b"xy"),
])
def test_initial_token_reads_the_token_field(tail: bytes, token: bytes) -> None:
    assert initial_token(b"head" + tail, 4) == token


@pytest.mark.parametrize("data", [b"head", b"head\x05abc", b"head\x40"])
def test_initial_token_refuses_a_truncated_initial(data: bytes) -> None:
    with pytest.raises(QuicDecodeError) as info:
        initial_token(data, 4)
    assert info.value.error_code == TransportErrorCode.PROTOCOL_VIOLATION
