"""io/sender.py: the engine's datagrams grouped per path for GSO, order kept per path."""

from __future__ import annotations

from tquic.io.sender import _by_path
from tquic.paths.network_path import NetworkPath

A = NetworkPath(("10.0.0.1", 1), ("10.0.0.9", 443))
B = NetworkPath(("10.0.1.1", 1), ("10.0.0.9", 443))


def test_interleaved_paths_become_one_batch_each_in_order() -> None:
    datagrams = [(b"a1", A), (b"b1", B), (b"a2", A), (b"a3", A), (b"b2", B)]
    assert _by_path(datagrams) == [(A, [b"a1", b"a2", b"a3"]), (B, [b"b1", b"b2"])]


def test_equal_path_objects_share_a_batch() -> None:
    twin = NetworkPath(("10.0.0.1", 1), ("10.0.0.9", 443))
    assert twin is not A
    assert _by_path([(b"x", A), (b"y", B), (b"z", twin)]) == [(A, [b"x", b"z"]), (B, [b"y"])]
