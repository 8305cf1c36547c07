"""The FEC framing carried on the tunnel's negotiated FEC context ID.

A CONNECT-IP HTTP Datagram is ``Context ID (varint) | payload`` (RFC 9484 §6,
RFC 9297 §2.1); context 0 is a plain IP packet.  The bond negotiates extra
context IDs for its extensions, so a peer that did not take part in the
negotiation never receives these payloads (RFC 9484 §6: an endpoint that gets
an unknown context ID drops the datagram).  This module is the payload after
the context ID.  Every field is fixed size, network byte order:

    first byte:  kind (2 high bits: 0 source, 1 repair, 2 feedback) | stream (6 bits)

    source    = first(1) block(2) index(1) packet...
    repair    = first(1) block(2) index(1) k(1) m(1) code(1) crc32(4) symbol...
    feedback  = first(1) block(2) count-1(1) bitmap(ceil(count/8))

``stream`` separates independent encoders on one tunnel (one per traffic class
that uses FEC).  ``block`` wraps at 2^16 and is compared in serial-number
arithmetic (RFC 1982 §3.2).  ``index`` is 0..k-1 for sources and k..k+m-1 for
repairs; a repair stores k - 1 and m - 1 so that k = m = 256 cannot be written
(k + m <= 256 in GF(2^8)).  The CRC-32 covers the repair's other header fields and its symbol:
the tunnel's AEAD already rejects corrupted datagrams, so this guards against a
broken or hostile peer — a repair that fails it is dropped and counted, and a
decode never uses it (never wrong bytes).  ``feedback`` goes the other way: bit
i of the bitmap (LSB first within each byte) says symbol i of the block arrived;
the sender turns it into per-path loss samples (loss.py).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from tquic.bond.fec.codes import MAX_SYMBOLS, Code

SOURCE, REPAIR, FEEDBACK = 0, 1, 2
MAX_STREAMS = 64
SOURCE_HEADER = 4
REPAIR_HEADER = 11
FEEDBACK_HEADER = 4

_SRC = struct.Struct("!BHB")
_REP = struct.Struct("!BHBBBBI")
_FB = struct.Struct("!BHB")


class FecWireError(ValueError):
    """A FEC payload is malformed (truncated, bad field, bad CRC); the message says which."""


@dataclass(frozen=True, slots=True)
class SourceFrame:
    stream: int
    block: int
    index: int
    packet: bytes


@dataclass(frozen=True, slots=True)
class RepairFrame:
    stream: int
    block: int
    index: int
    k: int
    m: int
    code: Code
    symbol: bytes


@dataclass(frozen=True, slots=True)
class FeedbackFrame:
    stream: int
    block: int
    received: tuple[bool, ...]


Frame = SourceFrame | RepairFrame | FeedbackFrame


def encode_source(stream: int, block: int, index: int, packet: bytes) -> bytes:
    return _SRC.pack(stream, block & 0xFFFF, index) + packet


def encode_repair(stream: int, block: int, index: int, k: int, m: int, code: Code,
                  symbol: bytes) -> bytes:
    first = (REPAIR << 6) | stream
    head = struct.pack("!BHBBBB", first, block & 0xFFFF, index, k - 1, m - 1, code)
    crc = zlib.crc32(symbol, zlib.crc32(head))
    return head + crc.to_bytes(4, "big") + symbol


def encode_feedback(stream: int, block: int, received: tuple[bool, ...]) -> bytes:
    bits = 0
    for i, ok in enumerate(received):
        if ok:
            bits |= 1 << i
    n = len(received)
    if not 1 <= n <= MAX_SYMBOLS:
        raise ValueError(f"feedback covers 1..{MAX_SYMBOLS} symbols, got {n}")
    return _FB.pack((FEEDBACK << 6) | stream, block & 0xFFFF, n - 1) + bits.to_bytes(
        (n + 7) // 8, "little")


def parse(data: bytes) -> Frame:
    """One FEC payload as a frame; FecWireError names what is wrong."""
    if len(data) < 1:
        raise FecWireError("empty FEC payload")
    kind, stream = data[0] >> 6, data[0] & 0x3F
    if kind == SOURCE:
        if len(data) < SOURCE_HEADER:
            raise FecWireError(f"source truncated: {len(data)} < {SOURCE_HEADER} header bytes")
        _, block, index = _SRC.unpack_from(data)
        return SourceFrame(stream, block, index, data[SOURCE_HEADER:])
    if kind == REPAIR:
        if len(data) <= REPAIR_HEADER:
            raise FecWireError(f"repair truncated: {len(data)} bytes, header is {REPAIR_HEADER}")
        _, block, index, k1, m1, code, crc = _REP.unpack_from(data)
        symbol = data[REPAIR_HEADER:]
        if zlib.crc32(symbol, zlib.crc32(data[:7])) != crc:
            raise FecWireError("repair CRC mismatch (corrupt or truncated)")
        k, m = k1 + 1, m1 + 1
        if code not in (Code.XOR, Code.RS):
            raise FecWireError(f"repair code {code} unknown (0 XOR, 1 RS)")
        if k + m > MAX_SYMBOLS or not k <= index < k + m or (code == Code.XOR and m != 1):
            raise FecWireError(f"repair index {index} / k={k} / m={m} inconsistent")
        if len(symbol) < 2:
            raise FecWireError("repair symbol shorter than its length prefix")
        return RepairFrame(stream, block, index, k, m, Code(code), symbol)
    if kind == FEEDBACK:
        if len(data) < FEEDBACK_HEADER:
            raise FecWireError(f"feedback truncated: {len(data)} < {FEEDBACK_HEADER}")
        _, block, n1 = _FB.unpack_from(data)
        n = n1 + 1
        need = FEEDBACK_HEADER + (n + 7) // 8
        if len(data) != need:
            raise FecWireError(f"feedback of {n} symbols must be {need} bytes, got {len(data)}")
        bits = int.from_bytes(data[FEEDBACK_HEADER:], "little")
        return FeedbackFrame(stream, block, tuple(bool(bits >> i & 1) for i in range(n)))
    raise FecWireError(f"unknown FEC payload kind {kind}")


def serial_newer(a: int, b: int) -> bool:
    """True if 16-bit block number ``a`` is after ``b`` (RFC 1982 §3.2)."""
    d = (a - b) & 0xFFFF
    return 0 < d < 0x8000
