"""Packet headers: long and short forms, packet numbers, Version Negotiation, Retry.

Everything here works on the *unprotected-by-header* view of the bytes:
header protection (RFC 9001 §5.4) still covers the low bits of the first byte
and the packet number when :func:`parse_header` runs, so a :class:`Header`
carries ``pn_offset`` and leaves the packet number to the crypto layer.

Sources: RFC 9000 §17 (formats), §12.2 (coalescing), §17.1 and Appendix A.2/A.3
(packet numbers); RFC 8999 (version-independent invariants); RFC 9001 §5.8
(Retry integrity); RFC 9369 §3.2 and §3.3.3 (QUIC v2 type bits, Retry key).

Bad input raises :class:`~tquic.wire.errors.QuicDecodeError` with
PROTOCOL_VIOLATION; the endpoint drops such a datagram (RFC 9000 §12.2 and
§17.2 say "discard", never "close").
"""

from __future__ import annotations

import hmac
import os
import struct
from dataclasses import dataclass
from enum import IntEnum

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tquic.wire.errors import QuicDecodeError, TransportErrorCode
from tquic.wire.version import QUIC_V1, QUIC_V2, VERSION_NEGOTIATION

MAX_CID_LENGTH = 20  # RFC 9000 §17.2: v1 (and v2) connection IDs are at most 20 bytes
RETRY_INTEGRITY_TAG_SIZE = 16  # RFC 9001 §5.8: AEAD_AES_128_GCM tag
PACKET_NUMBER_MAX = (1 << 62) - 1  # RFC 9000 §12.3

_unpack_u32 = struct.Struct("!I").unpack_from
_pack_u32 = struct.Struct("!I").pack
_pack_u16 = struct.Struct("!H").pack


class PacketType(IntEnum):
    """Packet types, independent of the version's type-bit encoding (RFC 9369 §3.2)."""

    INITIAL = 0
    ZERO_RTT = 1
    HANDSHAKE = 2
    RETRY = 3
    ONE_RTT = 4
    VERSION_NEGOTIATION = 5
    # A long header of a version we do not speak: only the RFC 8999 invariant
    # fields (version, DCID, SCID) are meaningful; a server answers it with
    # Version Negotiation (RFC 9000 §6.1).
    UNKNOWN_VERSION = 6


# Long Packet Type bits (first byte & 0x30) >> 4, per version.
# RFC 9000 §17.2 Table 5 for v1; RFC 9369 §3.2 for v2.
_TYPES_BY_BITS: dict[int, tuple[PacketType, PacketType, PacketType, PacketType]] = {
    QUIC_V1: (PacketType.INITIAL, PacketType.ZERO_RTT, PacketType.HANDSHAKE, PacketType.RETRY),
    QUIC_V2: (PacketType.RETRY, PacketType.INITIAL, PacketType.ZERO_RTT, PacketType.HANDSHAKE),
}
_BITS_BY_TYPE: dict[int, dict[PacketType, int]] = {
    version: {ptype: bits for bits, ptype in enumerate(types)}
    for version, types in _TYPES_BY_BITS.items()
}

# RFC 9001 §5.8 (v1) and RFC 9369 §3.3.3 (v2): fixed AES-128-GCM key and nonce
# for the Retry Integrity Tag.  They are HKDF-Expand-Label outputs of published
# secrets; tests re-derive them.
RETRY_SECRETS: dict[int, bytes] = {
    QUIC_V1: bytes.fromhex("d9c9943e6101fd200021506bcc02814c73030f25c79d71ce876eca876e6fca8e"),
    QUIC_V2: bytes.fromhex("c4dd2484d681aefa4ff4d69c2c20299984a765a5d3c31982f38fc74162155e9f"),
}
RETRY_KEYS: dict[int, tuple[bytes, bytes]] = {
    QUIC_V1: (
        bytes.fromhex("be0c690b9f66575a1d766b54e368c84e"),
        bytes.fromhex("461599d35d632bf2239825bb"),
    ),
    QUIC_V2: (
        bytes.fromhex("8fb4b01b56ac48e260fbcbcead7ccc92"),
        bytes.fromhex("d86969bc2d7c6d9990efb04a"),
    ),
}
_retry_aead: dict[int, AESGCM] = {}


@dataclass(slots=True)
class Header:
    """One packet's header as found in a datagram (header protection still applied).

    ``pn_offset`` is where the (protected) packet number starts; for Retry,
    Version Negotiation and unknown versions, which have none, it equals
    ``packet_end``.  ``packet_end`` is the offset just past this packet:
    ``pn_offset + Length`` for Initial/0-RTT/Handshake, the end of the datagram
    otherwise.
    """

    is_long: bool
    version: int | None
    packet_type: PacketType
    dcid: bytes
    scid: bytes
    token: bytes
    pn_offset: int
    packet_end: int
    supported_versions: tuple[int, ...] = ()
    retry_integrity_tag: bytes = b""
    first_byte: int = 0


# Headers are built for every packet received: a plain slots dataclass, since a
# frozen one pays an object.__setattr__ call per field (3x the cost of the whole
# construction here).  Nothing modifies a Header once parsed.
_header = Header


def _violation(reason: str) -> QuicDecodeError:
    return QuicDecodeError(TransportErrorCode.PROTOCOL_VIOLATION, reason)


def _read_varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """RFC 9000 §16 varint at ``pos``; returns (value, position after it)."""
    if pos >= end:
        raise _violation("header truncated before a varint")
    first = data[pos]
    size = 1 << (first >> 6)
    if pos + size > end:
        raise _violation("header truncated inside a varint")
    if size == 1:
        return first, pos + 1
    return int.from_bytes(data[pos : pos + size], "big") & ((1 << (8 * size - 2)) - 1), pos + size


def initial_token(data: bytes, pos: int) -> bytes:
    """The Token field of a v1/v2 Initial whose Token Length starts at ``pos`` (RFC 9000
    §17.2.2): all a server needs to decide on Retry, read without parsing the rest
    (the engine parses the packet if a connection is made)."""
    length, start = _read_varint(data, pos, len(data))
    if start + length > len(data):
        raise _violation("token beyond the datagram")
    return data[start:start + length]


def parse_header(
    data: bytes,
    offset: int,
    host_cid_length: int,
    *,
    allow_cleared_fixed_bit: bool = False,
) -> Header:
    """Parse the header of the packet that starts at ``offset`` in a datagram.

    ``host_cid_length`` is the length of our own connection IDs, needed to
    find the end of a short header's DCID (RFC 9000 §17.3, RFC 8999 §5.2).
    ``allow_cleared_fixed_bit`` accepts a zero Fixed Bit, for a connection on
    which we advertised grease_quic_bit (RFC 9287 §3).
    """
    end = len(data)
    if offset < 0 or offset >= end:
        raise _violation("no packet at this offset")
    first = data[offset]
    if not first & 0x80:
        # Short header (RFC 9000 §17.3.1).
        if not first & 0x40 and not allow_cleared_fixed_bit:
            raise _violation("short header with the Fixed Bit cleared")
        pn_offset = offset + 1 + host_cid_length
        if pn_offset >= end:
            raise _violation("short header truncated")
        return _header(
            False, None, PacketType.ONE_RTT, data[offset + 1 : pn_offset], b"", b"",
            pn_offset, end, (), b"", first,
        )

    # Long header: invariant part (RFC 8999 §5.1).
    if offset + 7 > end:
        raise _violation("long header truncated")
    version = int(_unpack_u32(data, offset + 1)[0])
    types = _TYPES_BY_BITS.get(version)
    dcid_len = data[offset + 5]
    if types is not None and dcid_len > MAX_CID_LENGTH:
        # RFC 9000 §17.2: a v1 long header with a longer CID MUST be dropped.
        raise _violation(f"destination connection ID of {dcid_len} bytes")
    pos = offset + 6 + dcid_len
    if pos >= end:
        raise _violation("long header truncated in the destination connection ID")
    dcid = data[offset + 6 : pos]
    scid_len = data[pos]
    if types is not None and scid_len > MAX_CID_LENGTH:
        raise _violation(f"source connection ID of {scid_len} bytes")
    pos += 1
    scid_end = pos + scid_len
    if scid_end > end:
        raise _violation("long header truncated in the source connection ID")
    scid = data[pos:scid_end]
    pos = scid_end

    if version == VERSION_NEGOTIATION:
        # RFC 9000 §17.2.1: the rest of the datagram is a list of 32-bit versions;
        # the low 7 bits of the first byte are unused, the Fixed Bit included.
        rest = end - pos
        if rest % 4:
            raise _violation("version negotiation list is not a whole number of versions")
        versions = struct.unpack_from(f"!{rest // 4}I", data, pos)
        return _header(
            True, VERSION_NEGOTIATION, PacketType.VERSION_NEGOTIATION, dcid, scid, b"",
            end, end, versions, b"", first,
        )
    if types is None:
        return _header(True, version, PacketType.UNKNOWN_VERSION, dcid, scid, b"", end, end,
                      (), b"", first)
    if not first & 0x40 and not allow_cleared_fixed_bit:
        raise _violation("long header with the Fixed Bit cleared")

    packet_type = types[(first >> 4) & 0x03]
    if packet_type is PacketType.RETRY:
        # RFC 9000 §17.2.5: token runs up to the 16-byte integrity tag.
        tag_start = end - RETRY_INTEGRITY_TAG_SIZE
        if tag_start < pos:
            raise _violation("retry packet shorter than its integrity tag")
        return _header(
            True, version, packet_type, dcid, scid, data[pos:tag_start], end, end, (),
            data[tag_start:end], first,
        )
    token = b""
    if packet_type is PacketType.INITIAL:
        # RFC 9000 §17.2.2: Token Length (i), Token (..).
        token_len, pos = _read_varint(data, pos, end)
        if pos + token_len > end:
            raise _violation("initial packet truncated in the token")
        token = data[pos : pos + token_len]
        pos += token_len
    length, pn_offset = _read_varint(data, pos, end)
    packet_end = pn_offset + length
    if packet_end > end:
        raise _violation(f"long header Length {length} runs past the datagram")
    return _header(True, version, packet_type, dcid, scid, token, pn_offset, packet_end, (),
                  b"", first)


# Packet types after which nothing else can follow in the same datagram: they
# have no Length field (RFC 9000 §12.2, §17.2.1, §17.2.5).
_NO_LENGTH = frozenset(
    (PacketType.VERSION_NEGOTIATION, PacketType.RETRY, PacketType.UNKNOWN_VERSION)
)


def split_datagram(
    data: bytes, host_cid_length: int, *, allow_cleared_fixed_bit: bool = False
) -> list[Header]:
    """Headers of every packet coalesced in ``data`` (RFC 9000 §12.2).

    The first packet must parse (else QuicDecodeError).  Parsing stops quietly
    at trailing bytes that do not form a packet, at a packet whose DCID
    differs from the first one ("Receivers SHOULD ignore any subsequent
    packets with a different Destination Connection ID"), and at a packet
    type that cannot be coalesced.
    """
    first = parse_header(data, 0, host_cid_length,
                         allow_cleared_fixed_bit=allow_cleared_fixed_bit)
    headers = [first]
    pos = first.packet_end
    end = len(data)
    while pos < end:
        try:
            header = parse_header(data, pos, host_cid_length,
                                  allow_cleared_fixed_bit=allow_cleared_fixed_bit)
        except QuicDecodeError:
            break
        if header.dcid != first.dcid or header.packet_type in _NO_LENGTH:
            break
        headers.append(header)
        pos = header.packet_end
    return headers


# --- encoding -----------------------------------------------------------------


def _check_cid(name: str, cid: bytes) -> None:
    if len(cid) > MAX_CID_LENGTH:
        raise ValueError(f"{name} of {len(cid)} bytes exceeds {MAX_CID_LENGTH}")


def _length_field(value: int) -> bytes:
    # The Length field of a long header is a varint; we always spend at least 2
    # bytes so a packet builder knows the header size before it knows the
    # payload size.  Non-minimal varints are valid outside frame types (RFC 9000 §16).
    if value < 0x4000:
        return _pack_u16(value | 0x4000)
    if value < 0x40000000:
        return _pack_u32(value | 0x80000000)
    raise ValueError(f"long header Length {value} is too large for one datagram")


def _encode_short_varint(value: int) -> bytes:
    if value < 0x40:
        return bytes((value,))
    if value < 0x4000:
        return _pack_u16(value | 0x4000)
    if value < 0x40000000:
        return _pack_u32(value | 0x80000000)
    return (value | 0xC000000000000000).to_bytes(8, "big")


def long_header_size(dcid_length: int, scid_length: int, token_length: int | None,
                     length_value: int, pn_length: int) -> int:
    """Bytes of a header built by :func:`encode_long_header`, packet number included.

    ``token_length`` is None for packet types without a token (0-RTT, Handshake).
    """
    size = 7 + dcid_length + scid_length + pn_length
    size += 2 if length_value < 0x4000 else 4
    if token_length is not None:
        size += len(_encode_short_varint(token_length)) + token_length
    return size


def _truncate_pn(pn: int, pn_length: int) -> bytes:
    if not 1 <= pn_length <= 4:
        raise ValueError(f"packet number length must be 1..4, got {pn_length}")
    return (pn & ((1 << (8 * pn_length)) - 1)).to_bytes(pn_length, "big")


def encode_long_header(
    version: int,
    packet_type: PacketType,
    dcid: bytes,
    scid: bytes,
    token: bytes,
    payload_length: int,
    pn: int,
    pn_length: int,
    *,
    fixed_bit: bool = True,
) -> bytes:
    """An unprotected Initial, 0-RTT or Handshake header, packet number included.

    ``payload_length`` counts the bytes after the packet number (the AEAD
    ciphertext with its tag); the Length field is ``pn_length + payload_length``
    (RFC 9000 §17.2).  ``token`` is written only for Initial packets.
    Reserved bits are zero (RFC 9000 §17.2).  ``fixed_bit=False`` greases the
    QUIC bit, allowed once the peer sent grease_quic_bit (RFC 9287 §3).
    """
    bits = _BITS_BY_TYPE.get(version)
    if bits is None:
        raise ValueError(f"cannot build packets for version {version:#x}")
    if packet_type not in (PacketType.INITIAL, PacketType.ZERO_RTT, PacketType.HANDSHAKE):
        raise ValueError(f"{packet_type.name} has no long header with a packet number")
    _check_cid("dcid", dcid)
    _check_cid("scid", scid)
    pn_bytes = _truncate_pn(pn, pn_length)
    first = (0xC0 if fixed_bit else 0x80) | (bits[packet_type] << 4) | (pn_length - 1)
    parts = [
        bytes((first,)),
        _pack_u32(version),
        bytes((len(dcid),)), dcid,
        bytes((len(scid),)), scid,
    ]
    if packet_type is PacketType.INITIAL:
        parts.append(_encode_short_varint(len(token)))
        parts.append(token)
    parts.append(_length_field(pn_length + payload_length))
    parts.append(pn_bytes)
    return b"".join(parts)


def encode_short_header(
    dcid: bytes, pn: int, pn_length: int, key_phase: bool, spin: bool = False,
    *, fixed_bit: bool = True,
) -> bytes:
    """An unprotected 1-RTT header (RFC 9000 §17.3.1); reserved bits are zero.

    ``fixed_bit=False`` greases the QUIC bit (RFC 9287 §3, peer sent grease_quic_bit).
    """
    first = (0x40 if fixed_bit else 0x00) | (pn_length - 1)
    if spin:
        first |= 0x20
    if key_phase:
        first |= 0x04
    return bytes((first,)) + dcid + _truncate_pn(pn, pn_length)


# --- packet numbers (RFC 9000 §17.1, Appendix A.2, A.3) -------------------------


def encode_packet_number(full_pn: int, largest_acked: int | None) -> tuple[int, int]:
    """(truncated packet number, length in bytes) for sending ``full_pn``.

    The encoding covers more than twice the number of unacknowledged packet
    numbers (RFC 9000 §17.1, Appendix A.2).  Lengths are capped at 4 bytes,
    the longest the header can carry.
    """
    num_unacked = full_pn + 1 if largest_acked is None else full_pn - largest_acked
    if num_unacked < 1:
        raise ValueError(f"packet number {full_pn} is not above largest acked {largest_acked}")
    # At least one bit more than log2(num_unacked): bit_length() + 1 bits.
    length = min(4, (num_unacked.bit_length() + 8) // 8)
    return full_pn & ((1 << (8 * length)) - 1), length


def decode_packet_number(truncated: int, pn_nbits: int, largest_pn: int) -> int:
    """The full packet number closest to ``largest_pn + 1`` (RFC 9000 Appendix A.3).

    ``pn_nbits`` is 8, 16, 24 or 32; pass ``largest_pn = -1`` when nothing has
    been received yet in this packet number space.
    """
    expected = largest_pn + 1
    pn_win = 1 << pn_nbits
    pn_hwin = pn_win >> 1
    pn_mask = pn_win - 1
    candidate = (expected & ~pn_mask) | truncated
    if candidate <= expected - pn_hwin and candidate < (1 << 62) - pn_win:
        return candidate + pn_win
    if candidate > expected + pn_hwin and candidate >= pn_win:
        return candidate - pn_win
    return candidate


# --- Version Negotiation (RFC 9000 §17.2.1, RFC 8999 §6) -------------------------


def encode_version_negotiation(
    dcid: bytes, scid: bytes, versions: tuple[int, ...] | list[int], *,
    unused_bits: int | None = None,
) -> bytes:
    """A Version Negotiation packet.

    ``dcid`` / ``scid`` are the client's SCID / DCID echoed back (RFC 9000
    §17.2.1).  The seven unused bits are random with 0x40 set, as §17.2.1
    recommends, unless ``unused_bits`` is given.
    """
    if len(dcid) > 255 or len(scid) > 255:
        raise ValueError("connection IDs in Version Negotiation are at most 255 bytes")
    if unused_bits is None:
        unused_bits = os.urandom(1)[0] | 0x40
    return b"".join((
        bytes((0x80 | (unused_bits & 0x7F),)),
        _pack_u32(VERSION_NEGOTIATION),
        bytes((len(dcid),)), dcid,
        bytes((len(scid),)), scid,
        struct.pack(f"!{len(versions)}I", *versions),
    ))


# --- Retry (RFC 9000 §17.2.5, RFC 9001 §5.8, RFC 9369 §3.3.3) ---------------------


def _retry_tag(version: int, body: bytes, original_dcid: bytes) -> bytes:
    aead = _retry_aead.get(version)
    if aead is None:
        keys = RETRY_KEYS.get(version)
        if keys is None:
            raise ValueError(f"no Retry integrity key for version {version:#x}")
        aead = _retry_aead[version] = AESGCM(keys[0])
    nonce = RETRY_KEYS[version][1]
    # Retry Pseudo-Packet: ODCID Length (8), ODCID, then the Retry packet
    # without its tag, as associated data of an empty plaintext.
    pseudo = bytes((len(original_dcid),)) + original_dcid + body
    return aead.encrypt(nonce, b"", pseudo)


def encode_retry(
    version: int,
    dcid: bytes,
    scid: bytes,
    original_dcid: bytes,
    token: bytes,
    *,
    unused_bits: int = 0x0F,
) -> bytes:
    """A Retry packet with its integrity tag.

    ``dcid`` is the client's SCID, ``scid`` the server's new CID,
    ``original_dcid`` the DCID of the client's Initial.  The four unused bits
    are arbitrary (RFC 9000 §17.2.5); the default matches RFC 9001 A.4.
    """
    bits = _BITS_BY_TYPE.get(version)
    if bits is None:
        raise ValueError(f"cannot build packets for version {version:#x}")
    _check_cid("dcid", dcid)
    _check_cid("scid", scid)
    _check_cid("original_dcid", original_dcid)
    body = b"".join((
        bytes((0xC0 | (bits[PacketType.RETRY] << 4) | (unused_bits & 0x0F),)),
        _pack_u32(version),
        bytes((len(dcid),)), dcid,
        bytes((len(scid),)), scid,
        token,
    ))
    return body + _retry_tag(version, body, original_dcid)


def verify_retry_integrity(version: int, packet: bytes, original_dcid: bytes) -> bool:
    """True when the Retry packet's tag matches ``original_dcid`` (RFC 9001 §5.8)."""
    if version not in RETRY_KEYS or len(packet) < RETRY_INTEGRITY_TAG_SIZE:
        return False
    if len(original_dcid) > 255:
        return False
    body = packet[:-RETRY_INTEGRITY_TAG_SIZE]
    expected = _retry_tag(version, body, original_dcid)
    return hmac.compare_digest(expected, packet[-RETRY_INTEGRITY_TAG_SIZE:])
