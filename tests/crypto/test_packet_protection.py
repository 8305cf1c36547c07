"""Packet protection, byte for byte against the RFC examples.

RFC 9001 Appendix A.2 (client Initial), A.3 (server Initial), A.5 (ChaCha20-Poly1305
short header); RFC 9369 Appendix A.2, A.3, A.5 (QUIC v2); the nonce example of
draft-ietf-quic-multipath "Nonce Calculation"; key update (RFC 9001 §6).
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tquic.crypto.keys import QUIC_V1, QUIC_V2, CipherSuite, initial_secrets, packet_keys
from tquic.crypto.protection import (
    AEAD_LIMITS,
    DecryptionError,
    PacketProtection,
    compute_nonce,
    initial_protections,
)
from tquic.wire.errors import QuicError, TransportErrorCode

DCID = bytes.fromhex("8394c8f03e515708")
AES128 = CipherSuite.AES_128_GCM_SHA256
AES256 = CipherSuite.AES_256_GCM_SHA384
CHACHA = CipherSuite.CHACHA20_POLY1305_SHA256
CHACHA_SECRET = bytes.fromhex("9ac312a7f877468ebe69422748ad00a15443f18203a07d6060f688f30f21632b")

V1_CLIENT_CRYPTO_FRAME = bytes.fromhex(
    "060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e868"
    "04fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578"
    "616d706c652e636f6dff01000100000a00080006001d00170018001000070005"
    "04616c706e000500050100000000003300260024001d00209370b2c9caa47fba"
    "baf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b000302030400"
    "0d0010000e0403050306030203080408050806002d00020101001c0002400100"
    "3900320408ffffffffffffffff05048000ffff07048000ffff08011001048000"
    "75300901100f088394c8f03e51570806048000ffff"
)
V1_CLIENT_PROTECTED = bytes.fromhex(
    "c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11"
    "d242b123dc9bd8bab936b47d92ec356c0bab7df5976d27cd449f63300099f399"
    "1c260ec4c60d17b31f8429157bb35a1282a643a8d2262cad67500cadb8e7378c"
    "8eb7539ec4d4905fed1bee1fc8aafba17c750e2c7ace01e6005f80fcb7df6212"
    "30c83711b39343fa028cea7f7fb5ff89eac2308249a02252155e2347b63d58c5"
    "457afd84d05dfffdb20392844ae812154682e9cf012f9021a6f0be17ddd0c208"
    "4dce25ff9b06cde535d0f920a2db1bf362c23e596d11a4f5a6cf3948838a3aec"
    "4e15daf8500a6ef69ec4e3feb6b1d98e610ac8b7ec3faf6ad760b7bad1db4ba3"
    "485e8a94dc250ae3fdb41ed15fb6a8e5eba0fc3dd60bc8e30c5c4287e53805db"
    "059ae0648db2f64264ed5e39be2e20d82df566da8dd5998ccabdae053060ae6c"
    "7b4378e846d29f37ed7b4ea9ec5d82e7961b7f25a9323851f681d582363aa5f8"
    "9937f5a67258bf63ad6f1a0b1d96dbd4faddfcefc5266ba6611722395c906556"
    "be52afe3f565636ad1b17d508b73d8743eeb524be22b3dcbc2c7468d54119c74"
    "68449a13d8e3b95811a198f3491de3e7fe942b330407abf82a4ed7c1b311663a"
    "c69890f4157015853d91e923037c227a33cdd5ec281ca3f79c44546b9d90ca00"
    "f064c99e3dd97911d39fe9c5d0b23a229a234cb36186c4819e8b9c5927726632"
    "291d6a418211cc2962e20fe47feb3edf330f2c603a9d48c0fcb5699dbfe58964"
    "25c5bac4aee82e57a85aaf4e2513e4f05796b07ba2ee47d80506f8d2c25e50fd"
    "14de71e6c418559302f939b0e1abd576f279c4b2e0feb85c1f28ff18f58891ff"
    "ef132eef2fa09346aee33c28eb130ff28f5b766953334113211996d20011a198"
    "e3fc433f9f2541010ae17c1bf202580f6047472fb36857fe843b19f5984009dd"
    "c324044e847a4f4a0ab34f719595de37252d6235365e9b84392b061085349d73"
    "203a4a13e96f5432ec0fd4a1ee65accdd5e3904df54c1da510b0ff20dcc0c77f"
    "cb2c0e0eb605cb0504db87632cf3d8b4dae6e705769d1de354270123cb11450e"
    "fc60ac47683d7b8d0f811365565fd98c4c8eb936bcab8d069fc33bd801b03ade"
    "a2e1fbc5aa463d08ca19896d2bf59a071b851e6c239052172f296bfb5e724047"
    "90a2181014f3b94a4e97d117b438130368cc39dbb2d198065ae3986547926cd2"
    "162f40a29f0c3c8745c0f50fba3852e566d44575c29d39a03f0cda721984b6f4"
    "40591f355e12d439ff150aab7613499dbd49adabc8676eef023b15b65bfc5ca0"
    "6948109f23f350db82123535eb8a7433bdabcb909271a6ecbcb58b936a88cd4e"
    "8f2e6ff5800175f113253d8fa9ca8885c2f552e657dc603f252e1a8e308f76f0"
    "be79e2fb8f5d5fbbe2e30ecadd220723c8c0aea8078cdfcb3868263ff8f09400"
    "54da48781893a7e49ad5aff4af300cd804a6b6279ab3ff3afb64491c85194aab"
    "760d58a606654f9f4400e8b38591356fbf6425aca26dc85244259ff2b19c41b9"
    "f96f3ca9ec1dde434da7d2d392b905ddf3d1f9af93d1af5950bd493f5aa731b4"
    "056df31bd267b6b90a079831aaf579be0a39013137aac6d404f518cfd4684064"
    "7e78bfe706ca4cf5e9c5453e9f7cfd2b8b4c8d169a44e55c88d4a9a7f9474241"
    "e221af44860018ab0856972e194cd934"
)
SERVER_PAYLOAD = bytes.fromhex(
    "02000000000600405a020000560303eefce7f7b37ba1d1632e96677825ddf739"
    "88cfc79825df566dc5430b9a045a1200130100002e00330024001d00209d3c94"
    "0d89690b84d08a60993c144eca684d1081287c834d5311bcf32bb9da1a002b00"
    "020304"
)
V1_SERVER_PROTECTED = bytes.fromhex(
    "cf000000010008f067a5502a4262b5004075c0d95a482cd0991cd25b0aac406a"
    "5816b6394100f37a1c69797554780bb38cc5a99f5ede4cf73c3ec2493a1839b3"
    "dbcba3f6ea46c5b7684df3548e7ddeb9c3bf9c73cc3f3bded74b562bfb19fb84"
    "022f8ef4cdd93795d77d06edbb7aaf2f58891850abbdca3d20398c276456cbc4"
    "2158407dd074ee"
)
V2_CLIENT_PROTECTED = bytes.fromhex(
    "d76b3343cf088394c8f03e5157080000449ea0c95e82ffe67b6abcdb4298b485"
    "dd04de806071bf03dceebfa162e75d6c96058bdbfb127cdfcbf903388e99ad04"
    "9f9a3dd4425ae4d0992cfff18ecf0fdb5a842d09747052f17ac2053d21f57c5d"
    "250f2c4f0e0202b70785b7946e992e58a59ac52dea6774d4f03b55545243cf1a"
    "12834e3f249a78d395e0d18f4d766004f1a2674802a747eaa901c3f10cda5500"
    "cb9122faa9f1df66c392079a1b40f0de1c6054196a11cbea40afb6ef5253cd68"
    "18f6625efce3b6def6ba7e4b37a40f7732e093daa7d52190935b8da58976ff33"
    "12ae50b187c1433c0f028edcc4c2838b6a9bfc226ca4b4530e7a4ccee1bfa2a3"
    "d396ae5a3fb512384b2fdd851f784a65e03f2c4fbe11a53c7777c023462239dd"
    "6f7521a3f6c7d5dd3ec9b3f233773d4b46d23cc375eb198c63301c21801f6520"
    "bcfb7966fc49b393f0061d974a2706df8c4a9449f11d7f3d2dcbb90c6b877045"
    "636e7c0c0fe4eb0f697545460c806910d2c355f1d253bc9d2452aaa549e27a1f"
    "ac7cf4ed77f322e8fa894b6a83810a34b361901751a6f5eb65a0326e07de7c12"
    "16ccce2d0193f958bb3850a833f7ae432b65bc5a53975c155aa4bcb4f7b2c4e5"
    "4df16efaf6ddea94e2c50b4cd1dfe06017e0e9d02900cffe1935e0491d77ffb4"
    "fdf85290fdd893d577b1131a610ef6a5c32b2ee0293617a37cbb08b847741c3b"
    "8017c25ca9052ca1079d8b78aebd47876d330a30f6a8c6d61dd1ab5589329de7"
    "14d19d61370f8149748c72f132f0fc99f34d766c6938597040d8f9e2bb522ff9"
    "9c63a344d6a2ae8aa8e51b7b90a4a806105fcbca31506c446151adfeceb51b91"
    "abfe43960977c87471cf9ad4074d30e10d6a7f03c63bd5d4317f68ff325ba3bd"
    "80bf4dc8b52a0ba031758022eb025cdd770b44d6d6cf0670f4e990b22347a7db"
    "848265e3e5eb72dfe8299ad7481a408322cac55786e52f633b2fb6b614eaed18"
    "d703dd84045a274ae8bfa73379661388d6991fe39b0d93debb41700b41f90a15"
    "c4d526250235ddcd6776fc77bc97e7a417ebcb31600d01e57f32162a8560cacc"
    "7e27a096d37a1a86952ec71bd89a3e9a30a2a26162984d7740f81193e8238e61"
    "f6b5b984d4d3dfa033c1bb7e4f0037febf406d91c0dccf32acf423cfa1e70710"
    "10d3f270121b493ce85054ef58bada42310138fe081adb04e2bd901f2f13458b"
    "3d6758158197107c14ebb193230cd1157380aa79cae1374a7c1e5bbcb80ee23e"
    "06ebfde206bfb0fcbc0edc4ebec309661bdd908d532eb0c6adc38b7ca7331dce"
    "8dfce39ab71e7c32d318d136b6100671a1ae6a6600e3899f31f0eed19e3417d1"
    "34b90c9058f8632c798d4490da4987307cba922d61c39805d072b589bd52fdf1"
    "e86215c2d54e6670e07383a27bbffb5addf47d66aa85a0c6f9f32e59d85a44dd"
    "5d3b22dc2be80919b490437ae4f36a0ae55edf1d0b5cb4e9a3ecabee93dfc6e3"
    "8d209d0fa6536d27a5d6fbb17641cde27525d61093f1b28072d111b2b4ae5f89"
    "d5974ee12e5cf7d5da4d6a31123041f33e61407e76cffcdcfd7e19ba58cf4b53"
    "6f4c4938ae79324dc402894b44faf8afbab35282ab659d13c93f70412e85cb19"
    "9a37ddec600545473cfb5a05e08d0b209973b2172b4d21fb69745a262ccde96b"
    "a18b2faa745b6fe189cf772a9f84cbfc"
)
V2_SERVER_PROTECTED = bytes.fromhex(
    "dc6b3343cf0008f067a5502a4262b5004075d92faaf16f05d8a4398c47089698"
    "baeea26b91eb761d9b89237bbf87263017915358230035f7fd3945d88965cf17"
    "f9af6e16886c61bfc703106fbaf3cb4cfa52382dd16a393e42757507698075b2"
    "c984c707f0a0812d8cd5a6881eaf21ceda98f4bd23f6fe1a3e2c43edd9ce7ca8"
    "4bed8521e2e140"
)

# RFC 9001 A.2: the CRYPTO frame plus PADDING up to a 1162-byte payload.
CLIENT_PAYLOAD = V1_CLIENT_CRYPTO_FRAME + bytes(1162 - len(V1_CLIENT_CRYPTO_FRAME))
V1_CLIENT_HEADER = bytes.fromhex("c300000001088394c8f03e5157080000449e00000002")
V1_SERVER_HEADER = bytes.fromhex("c1000000010008f067a5502a4262b50040750001")
V2_CLIENT_HEADER = bytes.fromhex("d36b3343cf088394c8f03e5157080000449e00000002")
V2_SERVER_HEADER = bytes.fromhex("d16b3343cf0008f067a5502a4262b50040750001")


def _initial(version: int, client: bool) -> PacketProtection:
    client_secret, server_secret = initial_secrets(version, DCID)
    return PacketProtection.from_secret(AES128, client_secret if client else server_secret, version)


@pytest.mark.parametrize(
    ("version", "is_client", "header", "payload", "pn", "protected"),
    [
        (QUIC_V1, True, V1_CLIENT_HEADER, CLIENT_PAYLOAD, 2, V1_CLIENT_PROTECTED),
        (QUIC_V1, False, V1_SERVER_HEADER, SERVER_PAYLOAD, 1, V1_SERVER_PROTECTED),
        (QUIC_V2, True, V2_CLIENT_HEADER, CLIENT_PAYLOAD, 2, V2_CLIENT_PROTECTED),
        (QUIC_V2, False, V2_SERVER_HEADER, SERVER_PAYLOAD, 1, V2_SERVER_PROTECTED),
    ],
    ids=["rfc9001-a2-client", "rfc9001-a3-server", "rfc9369-a2-client", "rfc9369-a3-server"],
)
def test_initial_packet_protects_to_the_rfc_bytes_and_back(
    version: int, is_client: bool, header: bytes, payload: bytes, pn: int, protected: bytes
) -> None:
    assert len(CLIENT_PAYLOAD) == 1162
    sender = _initial(version, is_client)
    assert sender.protect(header, payload, pn) == protected
    receiver = _initial(version, is_client)
    pn_offset = len(header) - ((header[0] & 3) + 1)
    plain_header, plaintext, full_pn = receiver.unprotect(protected, pn_offset, largest_pn=-1)
    assert (plain_header, plaintext, full_pn) == (header, payload, pn)


def test_rfc9001_a2_sample_and_mask() -> None:
    sender = _initial(QUIC_V1, True)
    mask = sender.header_protection.mask(bytes.fromhex("d1b1c98dd7689fb8ec11d242b123dc9b"))
    assert mask[:5] == bytes.fromhex("437b9aec36")


def test_rfc9001_a3_sample_and_mask() -> None:
    sender = _initial(QUIC_V1, False)
    mask = sender.header_protection.mask(bytes.fromhex("2cd0991cd25b0aac406a5816b6394100"))
    assert mask[:5] == bytes.fromhex("2ec0d8356a")


def test_rfc9369_a2_and_a3_masks() -> None:
    client = _initial(QUIC_V2, True)
    server = _initial(QUIC_V2, False)
    sample_c = bytes.fromhex("ffe67b6abcdb4298b485dd04de806071")
    sample_s = bytes.fromhex("6f05d8a4398c47089698baeea26b91eb")
    assert client.header_protection.mask(sample_c)[:5] == bytes.fromhex("94a0c95e80")
    assert server.header_protection.mask(sample_s)[:5] == bytes.fromhex("4dd92e91ea")


@pytest.mark.parametrize(
    ("version", "nonce", "mask", "packet"),
    [
        (
            QUIC_V1,
            "e0459b3474bdd0e46d417eb0",
            "aefefe7d03",
            "4cfe4189655e5cd55c41f69080575d7999c25a5bfb",
        ),
        (
            QUIC_V2,
            "a6b5bc6ab7dafce328ff4a29",
            "97580e32bf",
            "5558b1c60ae7b6b932bc27d786f4bc2bb20f2162ba",
        ),
    ],
    ids=["rfc9001-a5", "rfc9369-a5"],
)
def test_chacha20_short_header_packet_matches_the_rfc(
    version: int, nonce: str, mask: str, packet: str
) -> None:
    pn = 654360564
    sender = PacketProtection.from_secret(CHACHA, CHACHA_SECRET, version)
    assert sender.nonce(pn) == bytes.fromhex(nonce)
    protected = sender.protect(bytes.fromhex("4200bff4"), b"\x01", pn)
    assert protected == bytes.fromhex(packet)
    assert sender.header_protection.mask(protected[5:21])[:5] == bytes.fromhex(mask)
    receiver = PacketProtection.from_secret(CHACHA, CHACHA_SECRET, version)
    header, plaintext, full_pn = receiver.unprotect(protected, 1, largest_pn=pn - 1)
    assert (header, plaintext, full_pn) == (bytes.fromhex("4200bff4"), b"\x01", pn)


def test_multipath_nonce_example() -> None:
    # draft-ietf-quic-multipath "Nonce Calculation" example.
    iv = bytes.fromhex("6b26114b9cba2b63a9e8dd4f")
    assert compute_nonce(iv, 54321, 3) == bytes.fromhex("6b2611489cba2b63a9e8097e")
    # Path ID 0 is RFC 9001 §5.3: IV XOR the left-padded packet number.
    assert compute_nonce(iv, 54321, 0) == (int.from_bytes(iv, "big") ^ 54321).to_bytes(12, "big")


def test_protect_uses_the_path_id_in_the_nonce() -> None:
    sender = PacketProtection.from_secret(AES128, bytes(range(32)), QUIC_V1)
    header = bytes.fromhex("41") + bytes(8) + bytes.fromhex("d431")
    payload = b"multipath payload"
    packet = sender.protect(header, payload, 54321, path_id=3)
    # Decrypt by hand with the nonce of the draft's formula.
    aead = AESGCM(sender.key)
    ciphertext = packet[len(header) :]
    assert aead.decrypt(compute_nonce(sender.iv, 54321, 3), ciphertext, header) == payload
    receiver = PacketProtection.from_secret(AES128, bytes(range(32)), QUIC_V1)
    assert receiver.unprotect(packet, 9, 54320, path_id=3)[1] == payload
    with pytest.raises(DecryptionError):
        receiver.unprotect(packet, 9, 54320, path_id=0)
    with pytest.raises(DecryptionError):
        receiver.unprotect(packet, 9, 54320, path_id=4)


@pytest.mark.parametrize("suite", [AES128, AES256, CHACHA])
@pytest.mark.parametrize("version", [QUIC_V1, QUIC_V2])
def test_key_update_changes_key_and_iv_but_not_hp(suite: CipherSuite, version: int) -> None:
    secret = bytes(range(48 if suite == AES256 else 32))
    gen0 = PacketProtection.from_secret(suite, secret, version)
    gen1 = gen0.next_generation()
    gen2 = gen1.next_generation()
    assert len({gen0.secret, gen1.secret, gen2.secret}) == 3
    assert len({gen0.key, gen1.key, gen2.key}) == 3
    assert len({gen0.iv, gen1.iv, gen2.iv}) == 3
    assert gen0.hp_key == gen1.hp_key == gen2.hp_key == packet_keys(suite, secret, version)[2]
    # The new keys are those packet_keys derives from the new secret.
    assert packet_keys(suite, gen1.secret, version)[:2] == (gen1.key, gen1.iv)

    receiver1 = PacketProtection.from_secret(suite, secret, version).next_generation()
    header = bytes.fromhex("45") + b"cidcidci" + bytes.fromhex("0007")  # key phase 1
    packet = gen1.protect(header, b"after the key update", 7)
    assert receiver1.unprotect(packet, 9, 6) == (header, b"after the key update", 7)
    # The header is readable with any generation (same hp key), the payload is not.
    assert gen0.remove_header_protection(packet, 9)[0] == header
    with pytest.raises(DecryptionError):
        gen0.decrypt_payload(packet, header, 7)
    with pytest.raises(DecryptionError):
        gen2.unprotect(packet, 9, 6)


def test_key_update_v1_and_v2_differ() -> None:
    v1 = PacketProtection.from_secret(AES128, bytes(32), QUIC_V1).next_generation()
    v2 = PacketProtection.from_secret(AES128, bytes(32), QUIC_V2).next_generation()
    assert v1.secret != v2.secret


@pytest.mark.parametrize("suite", [AES128, AES256, CHACHA])
@pytest.mark.parametrize("pn_len", [1, 2, 3, 4])
def test_round_trip_every_suite_and_packet_number_length(suite: CipherSuite, pn_len: int) -> None:
    secret = bytes(range(1, 49 if suite == AES256 else 33))
    sender = PacketProtection.from_secret(suite, secret, QUIC_V1)
    receiver = PacketProtection.from_secret(suite, secret, QUIC_V1)
    pn = 0x3F_1234_5678 + pn_len
    truncated = pn & ((1 << (8 * pn_len)) - 1)
    for first, dcid in ((0x40, b"12345678"), (0xC0, b"\x08" + b"12345678" + b"\x00")):
        header = bytes((first | (pn_len - 1),)) + dcid + truncated.to_bytes(pn_len, "big")
        payload = b"\x01" * 3 + b"data" * 5
        packet = sender.protect(header, payload, pn)
        assert len(packet) == len(header) + len(payload) + 16
        assert packet[1 : len(dcid) + 1] == dcid  # only the first byte and the pn are masked
        got = receiver.unprotect(packet, 1 + len(dcid), pn - 1)
        assert got == (header, payload, pn)


def test_smallest_payload_that_leaves_a_sample() -> None:
    pp = PacketProtection.from_secret(AES128, bytes(32), QUIC_V1)
    # RFC 9001 §5.4.2: pn length + payload must be at least 4 bytes.
    pp.protect(bytes.fromhex("40") + bytes.fromhex("01"), b"\x01\x00\x00", 1)
    with pytest.raises(ValueError):
        pp.protect(bytes.fromhex("40") + bytes.fromhex("01"), b"\x01\x00", 1)
    with pytest.raises(ValueError):
        pp.protect(bytes.fromhex("4000"), b"\x01" * 20, 1 << 62)
    with pytest.raises(ValueError):
        pp.protect(bytes.fromhex("4000"), b"\x01" * 20, 0, path_id=1 << 32)


def test_confidentiality_limit_stops_protection() -> None:
    pp = PacketProtection.from_secret(AES128, bytes(32), QUIC_V1)
    assert pp.confidentiality_limit == AEAD_LIMITS[AES128].confidentiality == 1 << 23
    header, payload = bytes.fromhex("4000"), b"\x01" * 20
    pp.protect(header, payload, 0)
    assert (pp.packets_protected, pp.remaining_packets) == (1, (1 << 23) - 1)
    pp.packets_protected = pp.confidentiality_limit
    with pytest.raises(QuicError) as info:
        pp.protect(header, payload, 1)
    assert info.value.error_code == TransportErrorCode.AEAD_LIMIT_REACHED
    assert AEAD_LIMITS[CHACHA].integrity == 1 << 36


def test_failed_authentication_is_counted() -> None:
    sender = PacketProtection.from_secret(CHACHA, CHACHA_SECRET, QUIC_V1)
    receiver = PacketProtection.from_secret(CHACHA, CHACHA_SECRET, QUIC_V1)
    packet = bytearray(sender.protect(bytes.fromhex("4000"), b"\x01" * 20, 0))
    packet[-1] ^= 1
    for expected in (1, 2):
        with pytest.raises(DecryptionError):
            receiver.unprotect(bytes(packet), 1, -1)
        assert receiver.decryption_failures == expected


def test_initial_protections_pair_client_and_server() -> None:
    client_send, client_recv = initial_protections(QUIC_V1, DCID, is_client=True)
    server_send, server_recv = initial_protections(QUIC_V1, DCID, is_client=False)
    assert client_send.protect(V1_CLIENT_HEADER, CLIENT_PAYLOAD, 2) == V1_CLIENT_PROTECTED
    assert server_recv.unprotect(V1_CLIENT_PROTECTED, 18, -1)[1] == CLIENT_PAYLOAD
    assert server_send.protect(V1_SERVER_HEADER, SERVER_PAYLOAD, 1) == V1_SERVER_PROTECTED
    assert client_recv.unprotect(V1_SERVER_PROTECTED, 18, -1)[1] == SERVER_PAYLOAD


def test_unprotect_accepts_a_memoryview_of_a_coalesced_datagram() -> None:
    datagram = V1_SERVER_PROTECTED + b"\x00" * 40  # trailing bytes of another packet
    view = memoryview(datagram)[: len(V1_SERVER_PROTECTED)]
    _, payload, pn = _initial(QUIC_V1, False).unprotect(view, 18, -1)
    assert (payload, pn) == (SERVER_PAYLOAD, 1)
