"""XOR and Reed-Solomon blocks: every (k, m) the FEC uses rebuilds any <= m lost sources
exactly, and never returns wrong bytes."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tquic.bond.fec import codes
from tquic.bond.fec.codes import Code, CodeError

# The (k, m) pairs the FEC uses: XOR k:1 up to the default block, RS up to 16:4
# (adaptive stays at or below 25 % of 16), the redundant 1:1 copy, and the benchmark's 12:3.
XOR_PAIRS = [(k, 1) for k in range(1, 17)]
RS_PAIRS = [(k, m) for k in range(1, 17) for m in range(1, 5)] + [(12, 3), (32, 8)]


def _block(k: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    # unequal lengths, including empty and one long packet: the padding must be undone
    return [rng.randbytes(rng.choice([0, 1, 40, 200, 1200, 1350])) for _ in range(k)]


def _roundtrip(code: Code, k: int, m: int, lost: tuple[int, ...], seed: int = 0) -> None:
    payloads = _block(k, seed)
    length, repairs = codes.encode(code, payloads, m)
    assert len(repairs) == m and all(len(r) == length for r in repairs)
    symbols = {i: p for i, p in enumerate(payloads)}
    symbols.update({k + j: r for j, r in enumerate(repairs)})
    sources = {i: payloads[i] for i in range(k) if i not in lost}
    reps = {i: symbols[i] for i in range(k, k + m) if i not in lost}
    rebuilt = codes.decode(code, k, m, length, sources, reps)
    assert rebuilt is not None
    assert {i: codes.unpad(s) for i, s in rebuilt.items()} == {
        i: payloads[i] for i in lost if i < k}


@pytest.mark.parametrize(("k", "m"), XOR_PAIRS)
def test_xor_rebuilds_any_single_loss(k: int, m: int) -> None:
    for lost in range(k + m):
        _roundtrip(Code.XOR, k, m, (lost,), seed=k)


@pytest.mark.parametrize(("k", "m"), RS_PAIRS)
def test_rs_rebuilds_up_to_m_losses(k: int, m: int) -> None:
    n = k + m
    rng = random.Random(n)
    # every single position, then a sample of the worst case: exactly m lost
    patterns = [(i,) for i in range(n)] + [tuple(rng.sample(range(n), m)) for _ in range(20)]
    for lost in patterns:
        _roundtrip(Code.RS, k, m, lost, seed=n)


def test_too_many_losses_return_none_not_garbage() -> None:
    payloads = _block(8, 1)
    length, repairs = codes.encode(Code.RS, payloads, 2)
    sources = {i: payloads[i] for i in range(5)}  # 3 sources lost, 2 repairs
    assert codes.decode(Code.RS, 8, 2, length, sources, {8: repairs[0], 9: repairs[1]}) is None
    assert codes.decode(Code.RS, 8, 2, length, dict(enumerate(payloads)), {}) == {}


@settings(max_examples=150, deadline=None)
@given(k=st.integers(1, 20), m=st.integers(1, 6), data=st.data())
def test_random_erasures_recover_iff_at_most_m_lost(k: int, m: int, data: st.DataObject) -> None:
    payloads = data.draw(st.lists(st.binary(max_size=300), min_size=k, max_size=k))
    lost = data.draw(st.sets(st.integers(0, k + m - 1), max_size=k + m))
    length, repairs = codes.encode(Code.RS, payloads, m)
    sources = {i: payloads[i] for i in range(k) if i not in lost}
    reps = {k + j: r for j, r in enumerate(repairs) if k + j not in lost}
    rebuilt = codes.decode(Code.RS, k, m, length, sources, reps)
    missing = [i for i in range(k) if i in lost]
    if len(lost) <= m or not missing:
        assert rebuilt is not None
        assert {i: codes.unpad(s) for i, s in rebuilt.items()} == {i: payloads[i] for i in missing}
    else:
        assert rebuilt is None  # fewer than k symbols: nothing rather than a guess


def test_parameters_out_of_range_are_code_errors() -> None:
    with pytest.raises(CodeError, match="XOR"):
        codes.check_params(Code.XOR, 4, 2)
    with pytest.raises(CodeError, match="k \\+ m"):
        codes.check_params(Code.RS, 200, 57)
    with pytest.raises(CodeError, match="k must be"):
        codes.check_params(Code.RS, 0, 1)
    with pytest.raises(CodeError, match="exceeds"):
        codes.symbol(bytes(70_000), 70_002)


def test_unpad_rejects_bad_prefix_or_padding() -> None:
    sym = codes.symbol(b"abc", 10)
    assert codes.unpad(sym) == b"abc"
    assert codes.unpad(sym[:-1] + b"\x01") is None  # padding not zero
    assert codes.unpad(b"\x00\x20abc") is None  # prefix longer than the symbol
    assert codes.unpad(b"\x00") is None
