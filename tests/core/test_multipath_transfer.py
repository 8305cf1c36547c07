"""Multipath transfers over two in-memory links (real TLS, explicit time).

What a user of WAN bonding would see: both links carry the data; a backup
link carries nothing while the primary is up and takes over when it dies; a
link blackholed for good mid-transfer does not stop the transfer (its data is
reinjected on the other path); an abandoned path is forgotten after 3 PTO.
"""

from __future__ import annotations

import hashlib

import pytest
from engine_pairs import LINK_A, LINK_B, two_paths

from tquic.core.events import (
    PathAbandoned,
    PathFailed,
    PathStatusChanged,
    StreamDataReceived,
)
from tquic.testing.engines import EnginePair

MB = 1024 * 1024


def _payload(size: int) -> bytes:
    return hashlib.sha256(b"tquic").digest() * (size // 32)


def _send(loop: EnginePair, payload: bytes) -> int:
    sid = loop.client.open_stream()
    loop.client.send_stream_data(sid, payload, end_stream=True)
    return sid


@pytest.mark.parametrize("scheduler", ["roundrobin", "minrtt"])
def test_two_path_transfer_uses_both_paths_and_is_byte_identical(scheduler: str) -> None:
    loop = two_paths(scheduler)
    payload = _payload(2 * MB)
    start = loop.now
    sid = _send(loop, payload)
    loop.run_until(lambda: loop.received(sid)[1], timeout=20)
    assert loop.received(sid)[0] == payload
    up_a = loop.links[LINK_A].bytes["up"]
    up_b = loop.links[LINK_B].bytes["up"]
    assert up_a > MB // 2 and up_b > MB // 2, (up_a, up_b)
    # Two 1 MB/s links: clearly more than one link's worth.
    assert len(payload) / (loop.now - start) > 1_200_000
    stats = {s.path_id: s for s in loop.client.path_stats(loop.now)}
    assert stats[0].packets_sent > 300 and stats[1].packets_sent > 300
    assert stats[1].state == "validated" and stats[1].status == "available"


def _longest_gap_until_the_end(loop: EnginePair, sid: int, timeout: float) -> float:
    """Run until stream ``sid``'s end reaches the server; the longest time meanwhile
    without its data arriving (from now to the first arrival, between arrivals)."""
    seen, last, gap, fin = len(loop.server_events), loop.now, 0.0, False

    def ended() -> bool:
        nonlocal seen, last, gap, fin
        for event in loop.server_events[seen:]:
            if isinstance(event, StreamDataReceived) and event.stream_id == sid:
                if event.data:
                    gap, last = max(gap, loop.now - last), loop.now
                fin = fin or event.end_stream
        seen = len(loop.server_events)
        return fin

    loop.run_until(ended, timeout=timeout, what=f"stream {sid}'s end")
    return gap


def test_backup_path_carries_nothing_while_primary_is_up_then_takes_over() -> None:
    loop = two_paths(backup=True)
    assert any(isinstance(e, PathStatusChanged) and e.by_peer and e.backup
               for e in loop.server_events)
    payload = _payload(2 * MB)
    sid = _send(loop, payload)
    loop.run_until(lambda: len(loop.received(sid)[0]) > MB // 2, timeout=10)
    # Only path management (challenge, status, keep-alive) went on the backup link.
    assert loop.links[LINK_B].bytes["up"] < 10_000
    loop.links[LINK_A].up = False
    stall = _longest_gap_until_the_end(loop, sid, timeout=20)
    assert loop.received(sid)[0] == payload
    assert loop.links[LINK_B].bytes["up"] > MB // 2
    assert any(isinstance(e, PathFailed) and e.path_id == 0 for e in loop.client_events)
    assert stall < 2.0, f"stall {stall:.2f} s"


def test_path_blackholed_for_good_mid_transfer_the_transfer_completes() -> None:
    loop = two_paths("minrtt")
    payload = _payload(2 * MB)
    sid = _send(loop, payload)
    loop.run_until(lambda: len(loop.received(sid)[0]) > MB // 2, timeout=10)
    loop.links[LINK_A].up = False
    stall = _longest_gap_until_the_end(loop, sid, timeout=20)
    assert loop.received(sid)[0] == payload
    assert stall < 2.0, f"stall {stall:.2f} s"
    # One side declared path 0 failed and both ended up abandoning it.
    failed = [e for e in loop.client_events + loop.server_events if isinstance(e, PathFailed)]
    assert {e.path_id for e in failed} == {0}
    for events in (loop.client_events, loop.server_events):
        assert any(isinstance(e, PathAbandoned) and e.path_id == 0 for e in events)
    assert loop.client.paths.primary.path_id == 1


@pytest.mark.parametrize("controller", ["lia", "olia", "balia"])
def test_coupled_congestion_control_overtwo_paths(controller: str) -> None:
    loop = two_paths("roundrobin", congestion_control=controller)
    c0 = loop.client.paths.get(0).recovery.controller  # type: ignore[union-attr]
    c1 = loop.client.paths.get(1).recovery.controller  # type: ignore[union-attr]
    assert type(c0).__name__.lower() == controller and c0.group is c1.group
    payload = _payload(MB)
    sid = _send(loop, payload)
    loop.run_until(lambda: loop.received(sid)[1], timeout=20)
    assert loop.received(sid)[0] == payload


def test_per_path_congestion_control_override() -> None:
    loop = two_paths(path_congestion_control=((1, "newreno"),))
    assert type(loop.client.paths.get(1).recovery.controller).__name__ == "NewReno"  # type: ignore[union-attr]
    assert type(loop.client.paths.get(0).recovery.controller).__name__ == "Cubic"  # type: ignore[union-attr]


def test_redundant_scheduler_sends_every_packet_on_both_paths() -> None:
    loop = two_paths("redundant")
    payload = _payload(MB)
    sid = _send(loop, payload)
    loop.run_until(lambda: loop.received(sid)[1], timeout=20)
    assert loop.received(sid)[0] == payload
    # select_many: each link carried most of the payload (a single-path scheduler
    # would split it: about 1 MB in total).
    up_a, up_b = loop.links[LINK_A].bytes["up"], loop.links[LINK_B].bytes["up"]
    assert up_a > 0.5 * MB and up_b > 0.5 * MB and up_a + up_b > 1.3 * MB


def test_path_stats_count_losses_and_retransmissions_per_path() -> None:
    loop = two_paths("roundrobin")
    loop.links[LINK_B].drop = lambda i, _: i % 10 == 0
    payload = _payload(MB)
    sid = _send(loop, payload)
    loop.run_until(lambda: loop.received(sid)[1], timeout=20)
    assert loop.received(sid)[0] == payload
    stats = {s.path_id: s for s in loop.client.path_stats(loop.now)}
    assert stats[1].packets_lost > 0 and stats[1].packets_retransmitted > 0
    assert stats[0].packets_lost == 0
    assert stats[0].goodput > 0 and stats[1].goodput > 0
    assert stats[0].bytes_sent > 0 and stats[1].bytes_received > 0
