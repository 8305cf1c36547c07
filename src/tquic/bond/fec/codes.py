"""The erasure codes: XOR parity and systematic Reed-Solomon (zfec), on padded symbols.

A block holds k source packets of unequal length.  Each becomes a *symbol* of
the block's common length L: a 2-byte big-endian length prefix, the packet,
then zero padding.  Repairs are computed over the symbols, so a recovered
symbol says by itself how long its packet was, and a decoder can check the
padding is zero (a cheap guard against a wrong decode; the CRC of the repair
header is the main one, see wire.py).

Both codes are systematic: sources travel as they are, repairs are extra.
XOR (m = 1) rebuilds one loss per block; Reed-Solomon over GF(2^8) (zfec's
Vandermonde code, k + m <= 256) rebuilds any m.  No per-byte Python loop:
XOR goes through big ints, RS through zfec's C code.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from functools import lru_cache

import zfec

MAX_PAYLOAD = 0xFFFF
"""Longest packet a symbol holds (the length prefix is 16 bits)."""
MAX_SYMBOLS = 256
"""zfec's limit on k + m (GF(2^8))."""
PREFIX = 2


class Code(enum.IntEnum):
    """Which code made a repair (its value is on the wire, wire.py)."""

    XOR = 0
    RS = 1


class CodeError(ValueError):
    """Parameters or symbols a code cannot work with; the message says which."""


def check_params(code: Code, k: int, m: int) -> None:
    """Raise CodeError unless (code, k, m) is a block this module can encode."""
    if k < 1:
        raise CodeError(f"k must be >= 1, got {k}")
    if m < 0:
        raise CodeError(f"m must be >= 0, got {m}")
    if k + m > MAX_SYMBOLS:
        raise CodeError(f"k + m must be <= {MAX_SYMBOLS}, got {k + m}")
    if code is Code.XOR and m > 1:
        raise CodeError(f"XOR parity makes 1 repair per block, got m={m}")


def symbol(payload: bytes, length: int) -> bytes:
    """The padded symbol of ``payload`` in a block of symbol length ``length``."""
    n = len(payload)
    if n > MAX_PAYLOAD:
        raise CodeError(f"packet of {n} bytes exceeds {MAX_PAYLOAD}")
    if n + PREFIX > length:
        raise CodeError(f"packet of {n} bytes does not fit a symbol of {length}")
    return n.to_bytes(2, "big") + payload + bytes(length - n - PREFIX)


def symbol_length(payloads: Sequence[bytes]) -> int:
    return PREFIX + max(len(p) for p in payloads)


def unpad(sym: bytes) -> bytes | None:
    """The packet inside a symbol, or None if the prefix or padding is inconsistent."""
    if len(sym) < PREFIX:
        return None
    n = int.from_bytes(sym[:PREFIX], "big")
    end = PREFIX + n
    if end > len(sym) or sym.count(0, end) != len(sym) - end:
        return None
    return sym[PREFIX:end]


def _xor(symbols: Sequence[bytes], length: int) -> bytes:
    acc = 0
    for s in symbols:
        acc ^= int.from_bytes(s, "big")
    return acc.to_bytes(length, "big")


@lru_cache(maxsize=128)
def _rs_encoder(k: int, n: int) -> zfec.Encoder:
    return zfec.Encoder(k, n)


@lru_cache(maxsize=128)
def _rs_decoder(k: int, n: int) -> zfec.Decoder:
    return zfec.Decoder(k, n)


def encode(code: Code, payloads: Sequence[bytes], m: int) -> tuple[int, list[bytes]]:
    """(symbol length, the m repair symbols) of a block of source ``payloads``."""
    k = len(payloads)
    check_params(code, k, m)
    length = symbol_length(payloads)
    if m == 0:
        return length, []
    symbols = tuple(symbol(p, length) for p in payloads)
    if code is Code.XOR:
        return length, [_xor(symbols, length)]
    repairs = _rs_encoder(k, k + m).encode(symbols, tuple(range(k, k + m)))
    return length, [bytes(r) for r in repairs]


def decode(code: Code, k: int, m: int, length: int, sources: Mapping[int, bytes],
           repairs: Mapping[int, bytes]) -> dict[int, bytes] | None:
    """The missing source *symbols* (index -> padded symbol), or None if too few arrived.

    ``sources`` maps index (0..k-1) to the packets received (unpadded);
    ``repairs`` maps repair index (k..k+m-1) to repair symbols of ``length``.
    """
    check_params(code, k, m)
    missing = [i for i in range(k) if i not in sources]
    if not missing:
        return {}
    if len(missing) > len(repairs):
        return None
    if code is Code.XOR:
        parity = repairs[k]
        rebuilt = _xor([parity, *(symbol(p, length) for p in sources.values())], length)
        return {missing[0]: rebuilt}
    nums = sorted(sources)[:k]
    blocks = [symbol(sources[i], length) for i in nums]
    for j in sorted(repairs):
        if len(nums) == k:
            break
        nums.append(j)
        blocks.append(repairs[j])
    out = _rs_decoder(k, k + m).decode(blocks, nums)
    return {i: bytes(out[i]) for i in missing}
