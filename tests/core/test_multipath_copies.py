"""Copies of STREAM data on a chosen path (redundant and deadline schedulers).

A copy is queued on the chosen path's own front of queue (``Path.copies``) and
leaves on THAT path in the same send round (redundant) or in the first send
round after its deadline (deadline) -- not through the connection's shared
retransmission queue, which any path could drain, and without marking the
original lost.
"""

from __future__ import annotations

from engine_pairs import LINK_A, LINK_B, two_paths

from tquic.core.records import StreamRecord
from tquic.paths.schedulers import register_scheduler
from tquic.paths.schedulers.deadline import DeadlineScheduler
from tquic.paths.sent_packets import SentPacket, SpaceId
from tquic.testing.engines import EnginePair


def _stream_ranges(packets: list[SentPacket], sent_at: float) -> set[tuple[int, int, int]]:
    out: set[tuple[int, int, int]] = set()
    for packet in packets:
        if packet.time_sent != sent_at:
            continue
        for rec in packet.frames:
            if isinstance(rec, StreamRecord) and rec.length:
                out.add((rec.stream_id, rec.offset, rec.length))
    return out


def _covered(ranges: set[tuple[int, int, int]], stream_id: int, start: int, stop: int) -> bool:
    """[start, stop) of ``stream_id`` lies within the union of ``ranges``."""
    pos = start
    for s, o, n in sorted(ranges):
        if s == stream_id and o <= pos < o + n:
            pos = o + n
    return pos >= stop


def _in_flight(loop: EnginePair, path_id: int) -> list[SentPacket]:
    path = loop.client.paths.get(path_id)
    assert path is not None
    packets: list[SentPacket] = path.recovery.in_flight_packets(SpaceId.APPLICATION)
    return packets


def test_redundant_copy_leaves_on_the_other_path_in_the_same_send_round() -> None:
    loop = two_paths("redundant", settle=0.2)
    client = loop.client
    sid = client.open_stream()
    client.send_stream_data(sid, b"x" * 3000, end_stream=True)
    now = loop.now
    out = client.datagrams_to_send(now)
    on_a = [d for d, p in out if p.local == LINK_A]
    on_b = [d for d, p in out if p.local == LINK_B]
    assert on_a and on_b, "both paths must send in this very call"
    sent_a = _stream_ranges(_in_flight(loop, 0), now)
    sent_b = _stream_ranges(_in_flight(loop, 1), now)
    assert sent_a, "the primary path carried stream data"
    # Every byte range sent on the primary path has its copy on the other path, in the
    # same call, and nothing is left waiting in the path's copy queue.
    for s, o, n in sent_a:
        assert _covered(sent_b, s, o, o + n), (sent_a, sent_b)
    assert client.paths.get(1).copies == []  # type: ignore[union-attr]
    # The originals were not declared lost: nothing waits for retransmission.
    progress = client.send_progress(sid)
    assert progress is not None and not progress.lost


def test_redundant_copies_complete_the_transfer_byte_identical() -> None:
    loop = two_paths("redundant", settle=0.2)
    payload = bytes(range(256)) * 800
    sid = loop.client.open_stream()
    loop.client.send_stream_data(sid, payload, end_stream=True)
    loop.run_until(lambda: loop.received(sid)[1], timeout=10)
    assert loop.received(sid)[0] == payload
    # Redundant: both links carried a large part, and together clearly more than one
    # copy of the payload (one path scheduler: about 1.05 x with headers and ACKs); the
    # slower link only as much as its own congestion window allowed.
    up_a, up_b = loop.links[LINK_A].bytes["up"], loop.links[LINK_B].bytes["up"]
    assert up_a > 0.3 * len(payload) and up_b > 0.3 * len(payload)
    assert up_a + up_b > 1.2 * len(payload)


def test_deadline_reinjection_leaves_first_on_its_target_path() -> None:
    # A 5 ms budget on a 2 x 50 ms path: every packet misses it and is reinjected
    # on the other path, ahead of anything else that path sends.
    register_scheduler("deadline-5ms", lambda: DeadlineScheduler(deadline=0.005))
    loop = two_paths("deadline-5ms", delays=(0.05, 0.08), settle=0.2)
    client = loop.client
    scheduler = client.paths.scheduler
    assert isinstance(scheduler, DeadlineScheduler)
    sid = client.open_stream()
    client.send_stream_data(sid, b"y" * 2000, end_stream=True)
    t0 = loop.now
    out = client.datagrams_to_send(t0)
    assert out
    first = _stream_ranges(_in_flight(loop, 0), t0)
    assert first, "min-RTT: the data went on the fast path 0"
    due = client.next_timeout()
    assert due is not None and due <= t0 + 0.005 + 1e-9
    client.handle_timeout(t0 + 0.005)
    assert scheduler.reinjected >= 1
    path1 = client.paths.get(1)
    assert path1 is not None and path1.copies, "queued on the target path itself"
    out = client.datagrams_to_send(t0 + 0.005)
    assert out and out[0][1].local == LINK_B, "the copy is the first datagram, on path 1"
    copied = _stream_ranges(_in_flight(loop, 1), t0 + 0.005)
    for s, o, n in first:
        assert _covered(copied, s, o, o + n), (first, copied)
    assert path1.copies == []
    # The original is still in flight on path 0, not declared lost.
    assert _stream_ranges(_in_flight(loop, 0), t0) == first


def test_copies_are_dropped_when_their_path_is_abandoned() -> None:
    loop = two_paths("redundant", settle=0.2)
    client = loop.client
    path1 = client.paths.get(1)
    assert path1 is not None
    path1.copies.append(StreamRecord(0, 0, 100, False))
    client.abandon_path(1, now=loop.now)
    assert path1.copies == []
