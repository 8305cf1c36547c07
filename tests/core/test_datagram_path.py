"""send_datagram(data, path_id): a per-datagram path preference (core/datagram_queue.py).

A datagram preferring a path leaves on it while that path can send; when it
cannot (unknown, abandoned, window full) the datagram goes on another path and
is never held back.  Two engines over two in-memory links (tests/core/engine_pairs.py),
explicit time: deterministic.
"""

from __future__ import annotations

import pytest
from engine_pairs import LINK_A, LINK_B, mp_pair

from tquic.core.datagram_queue import DatagramQueue
from tquic.core.events import DatagramReceived
from tquic.testing.engines import EnginePair, Link

DGRAM = 65535
COUNT = 8  # 8 kB: within a fresh path's congestion window (RFC 9002 §7.2)
SIZE = 1000


def _two_paths_with_datagrams(rate: float = 1_000_000) -> EnginePair:
    links = {LINK_A: Link(delay=0.01, rate=rate), LINK_B: Link(delay=0.01, rate=rate)}
    loop = mp_pair(links=links,
                   client_kwargs={"scheduler": "roundrobin", "max_datagram_frame_size": DGRAM},
                   server_kwargs={"max_datagram_frame_size": DGRAM})
    client = loop.client
    loop.run_until(lambda: client.can_open_path, timeout=2)
    assert client.add_path(LINK_B, None, loop.now) == 1
    loop.run_until(lambda: client.paths.get(1).validated  # type: ignore[union-attr]
                   and loop.server.paths.get(1) is not None
                   and loop.server.paths.get(1).validated,  # type: ignore[union-attr]
                   timeout=2)
    loop.advance(0.2)  # ACKs settle
    return loop


def _received(loop: EnginePair) -> list[bytes]:
    return [e.data for e in loop.server_events if isinstance(e, DatagramReceived)]


def _send(loop: EnginePair, path_id: int | None, tag: bytes = b"d") -> list[bytes]:
    sent = [tag + bytes([i]) + bytes(SIZE) for i in range(COUNT)]
    for data in sent:
        loop.client.send_datagram(data, path_id)
    return sent


@pytest.mark.parametrize("path_id", [0, 1])
def test_datagrams_preferring_a_path_leave_on_that_path(path_id: int) -> None:
    loop = _two_paths_with_datagrams()
    before = {k: link.bytes["up"] for k, link in loop.links.items()}
    sent = _send(loop, path_id)
    loop.run_until(lambda: len(_received(loop)) == COUNT, timeout=2)
    assert sorted(_received(loop)) == sorted(sent)
    grew = {k: link.bytes["up"] - before[k] for k, link in loop.links.items()}
    chosen, other = (LINK_A, LINK_B) if path_id == 0 else (LINK_B, LINK_A)
    assert grew[chosen] >= COUNT * SIZE
    assert grew[other] < COUNT * SIZE / 4  # ACKs only, not the datagrams


def test_without_a_preference_the_scheduler_spreads_them() -> None:
    loop = _two_paths_with_datagrams()
    before = {k: link.bytes["up"] for k, link in loop.links.items()}
    _send(loop, None)
    loop.run_until(lambda: len(_received(loop)) == COUNT, timeout=2)
    grew = [link.bytes["up"] - before[k] for k, link in loop.links.items()]
    assert min(grew) >= COUNT * SIZE / 4  # round robin: both links carry a share


@pytest.mark.parametrize("path_id", [7, 1])
def test_a_preference_for_a_path_that_is_gone_falls_back(path_id: int) -> None:
    loop = _two_paths_with_datagrams()
    if path_id == 1:
        loop.client.abandon_path(1, now=loop.now)
        loop.advance(0.2)
    sent = _send(loop, path_id)
    loop.run_until(lambda: len(_received(loop)) == COUNT, timeout=2)
    assert sorted(_received(loop)) == sorted(sent)


def test_a_preferred_path_whose_window_is_full_does_not_hold_them_back() -> None:
    # Link B is slow (20 kB/s): its window fills with the first datagrams, the rest go
    # on path 0 rather than waiting seconds for path 1.
    loop = _two_paths_with_datagrams()
    loop.links[LINK_B].rate = 20_000
    before = loop.links[LINK_A].bytes["up"]
    start = loop.now
    many = 200
    sent = [b"w" + i.to_bytes(2, "big") + bytes(SIZE) for i in range(many)]
    for data in sent:
        loop.client.send_datagram(data, 1)
    loop.run_until(lambda: len(_received(loop)) == many, timeout=30)
    assert sorted(_received(loop)) == sorted(sent)
    assert loop.links[LINK_A].bytes["up"] - before > many * SIZE / 4
    # on link B alone, 200 kB at 20 kB/s would take 10 s
    assert loop.now - start < 8.0


def test_without_multipath_the_preference_is_ignored() -> None:
    loop = mp_pair(client_max_path_id=None, server_max_path_id=None,
                   client_kwargs={"max_datagram_frame_size": DGRAM},
                   server_kwargs={"max_datagram_frame_size": DGRAM})
    sent = _send(loop, 3)
    loop.run_until(lambda: len(_received(loop)) == COUNT, timeout=2)
    assert sorted(_received(loop)) == sorted(sent)


def test_queue_order_bound_and_counts() -> None:
    q = DatagramQueue(4)
    q.push(b"a", 1)
    q.push(b"b")
    q.push(b"c", 2)
    q.push(b"d", 1)
    assert len(q) == 4 and q.pending_for(1) == 2 and q.pending_for(2) == 1
    assert sorted(q.preferred_paths()) == [1, 2]
    q.push(b"e", 2)  # full: the oldest without a preference goes first
    assert sorted(q) == [b"a", b"c", b"d", b"e"]
    q.push(b"f", 1)  # none without a preference: the fullest path's oldest
    assert len(q) == 4
    # a packet on path 1: its own, then any, then path 2's only if orphaned
    queues = q.queues_for(1, orphans=[])
    assert [list(x) for x in queues] == [[b"d", b"f"], []]
    assert [list(x) for x in q.queues_for(1, orphans=[2])][-1] == [b"c", b"e"]
    for x in q.queues_for(1, orphans=[2]):
        x.clear()
    q.tidy()
    assert not q and len(q) == 0 and q.preferred_paths() == []
    with pytest.raises(ValueError):
        DatagramQueue(0)
