"""DATAGRAM size follows the path MTU (RFC 9221 §5, RFC 8899): ``max_datagram_payload``
is what fits one packet on the smallest MTU among the validated paths; a queued
datagram that no longer fits goes in a packet that still has room for it, or is
dropped and counted when it reaches one that has not."""

from __future__ import annotations

import pytest
from engine_pairs import LINK_B, mp_pair

from tquic.core.connection import DatagramError
from tquic.core.events import DatagramReceived, PathValidated
from tquic.testing.engines import EnginePair

FLOOR = 1200 - (1 + 20 + 4 + 16) - 1 - 2  # 1200-byte packet: header, tag, frame head
CEILING = 1452 - (1 + 20 + 4 + 16) - 1 - 2  # the default PMTUD ceiling (max_udp_payload)


def _pair() -> EnginePair:
    kwargs = {"max_datagram_frame_size": 65535}
    return mp_pair(client_kwargs=kwargs, server_kwargs=kwargs)


def _received(loop: EnginePair) -> list[bytes]:
    return [e.data for e in loop.server_events if isinstance(e, DatagramReceived)]


def test_limit_starts_at_the_1200_byte_floor_and_rises_once_pmtud_validates() -> None:
    loop = _pair()
    client = loop.client
    assert FLOOR <= client.max_datagram_payload() <= CEILING
    loop.run_until(lambda: client.max_datagram_payload() == CEILING, timeout=5)
    big = bytes(range(256)) * 5 + b"x" * (CEILING - 1280)
    client.send_datagram(big)
    loop.run_until(lambda: big in _received(loop), timeout=2)
    with pytest.raises(DatagramError, match=f"at most {CEILING}"):
        client.send_datagram(b"y" * (CEILING + 1))


def test_queued_datagrams_that_no_longer_fit_are_dropped_and_counted() -> None:
    loop = _pair()
    client = loop.client
    loop.run_until(lambda: client.max_datagram_payload() == CEILING, timeout=5)
    for i in range(3):
        client.send_datagram(bytes([i]) * 1400)  # fits the validated MTU
    # The smallest validated MTU falls back to 1200 before they are sent (what a path
    # joining at 1200 does): they can go on no packet now.
    client.paths.primary.set_max_datagram_size(1200)
    assert client.max_datagram_payload() == FLOOR
    client.send_datagram(b"small")
    with pytest.raises(DatagramError):
        client.send_datagram(b"z" * 1400)
    loop.run_until(lambda: b"small" in _received(loop), timeout=2)
    assert client.datagrams_dropped_too_big == 3
    assert all(len(d) <= FLOOR for d in _received(loop))
    assert not client.is_closed and not loop.server.is_closed


def test_a_joining_path_counts_once_validated_and_its_pmtud_lifts_the_limit_again() -> None:
    loop = _pair()
    client = loop.client
    loop.run_until(lambda: client.max_datagram_payload() == CEILING
                   and client.can_open_path, timeout=5)
    client.add_path(LINK_B, None, loop.now)
    assert client.max_datagram_payload() == CEILING  # not validated: carries no data yet
    limits: list[int] = []

    def settled() -> bool:
        limits.append(client.max_datagram_payload())
        return (any(isinstance(e, PathValidated) for e in loop.client_events)
                and limits[-1] == CEILING)

    loop.run_until(settled, timeout=5)
    assert min(limits) >= FLOOR
    client.send_datagram(b"w" * CEILING)
    loop.run_until(lambda: b"w" * CEILING in _received(loop), timeout=2)
