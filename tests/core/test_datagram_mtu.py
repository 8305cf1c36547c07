"""DATAGRAM size follows the path MTU (RFC 9221 §5, RFC 8899): ``max_datagram_payload``
is what fits one packet on the smallest validated MTU among the open paths; a queued
datagram that no longer fits (a smaller path joined) goes in a packet that still has
room for it, or is dropped and counted when it reaches one that has not."""

from __future__ import annotations

import pytest
from mp_loop import LINK_B, MpLoop, mp_pair

from tquic.core.connection import DatagramError
from tquic.core.events import DatagramReceived, PathValidated

FLOOR = 1200 - (1 + 20 + 4 + 16) - 1 - 2  # 1200-byte packet: header, tag, frame head
CEILING = 1452 - (1 + 20 + 4 + 16) - 1 - 2  # the default PMTUD ceiling (max_udp_payload)


def _pair() -> MpLoop:
    kwargs = {"max_datagram_frame_size": 65535}
    return mp_pair(client_kwargs=kwargs, server_kwargs=kwargs)


def _received(loop: MpLoop) -> list[bytes]:
    return [e.data for e in loop.server_events if isinstance(e, DatagramReceived)]


def test_limit_starts_at_the_1200_byte_floor_and_rises_once_pmtud_validates() -> None:
    loop = _pair()
    client = loop.client
    assert FLOOR <= client.max_datagram_payload() <= CEILING
    assert loop.run_until(lambda: client.max_datagram_payload() == CEILING,
                          max_time=loop.now + 5)
    big = bytes(range(256)) * 5 + b"x" * (CEILING - 1280)
    client.send_datagram(big)
    assert loop.run_until(lambda: big in _received(loop), max_time=loop.now + 2)
    with pytest.raises(DatagramError, match=f"at most {CEILING}"):
        client.send_datagram(b"y" * (CEILING + 1))


def test_queued_datagrams_too_big_for_a_joining_path_are_dropped_and_counted() -> None:
    loop = _pair()
    client = loop.client
    assert loop.run_until(lambda: client.max_datagram_payload() == CEILING
                          and client.can_open_path, max_time=loop.now + 5)
    for i in range(3):
        client.send_datagram(bytes([i]) * 1400)  # fits path 0's validated MTU
    client.add_path(LINK_B, None, loop.now)  # path 1 counts 1200 bytes until probed
    assert client.max_datagram_payload() == FLOOR
    client.send_datagram(b"small")
    with pytest.raises(DatagramError):
        client.send_datagram(b"z" * 1400)
    assert loop.run_until(lambda: b"small" in _received(loop), max_time=loop.now + 2)
    # Each big one either went in a packet on path 0 that had room for it, or was
    # dropped when its turn came on a packet it could not fit: none is stuck or split.
    big_delivered = sum(len(d) == 1400 for d in _received(loop))
    assert client.datagrams_dropped_too_big >= 1
    assert client.datagrams_dropped_too_big + big_delivered == 3
    assert not client.is_closed and not loop.server.is_closed
    # The new path's own PMTUD raises the limit back once it is validated and probed.
    assert loop.run_until(lambda: any(isinstance(e, PathValidated) for e in loop.client_events)
                          and client.max_datagram_payload() == CEILING,
                          max_time=loop.now + 5)
