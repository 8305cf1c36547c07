"""A path whose ACKs stop while the other path's keep coming is suspected before any PTO
(paths/silence.py): no new data goes on it and its data in flight is sent again on the
live path at once; a wrong suspicion costs duplicate bytes only.

The in-memory links queue without limit (a deep buffer), so the sender's window, its
smoothed RTT and hence its PTO grow the way they do behind an LTE modem's queue.
"""

from __future__ import annotations

import hashlib
from typing import Any

from engine_pairs import LINK_A, LINK_B, two_paths

from tquic.core.events import PathFailed
from tquic.paths import silence
from tquic.testing.engines import EnginePair

MB = 1024 * 1024


def _payload(size: int) -> bytes:
    return hashlib.sha256(b"silence").digest() * (size // 32)


def _upload(loop: EnginePair, payload: bytes) -> int:
    sid = loop.client.open_stream()
    loop.client.send_stream_data(sid, payload, end_stream=True)
    return sid


def _stats(loop: EnginePair, path_id: int) -> Any:
    return {s.path_id: s for s in loop.client.path_stats(loop.now)}.get(path_id)


def _cut_after(loop: EnginePair, sid: int, received: int) -> float:
    loop.run_until(lambda: len(loop.received(sid)[0]) > received, timeout=20)
    loop.links[LINK_A].up = False
    return loop.now


def test_dead_link_is_suspected_well_before_its_pto_and_its_data_moves_at_once() -> None:
    loop = two_paths(rate=1_000_000, delays=(0.01, 0.02))
    payload = _payload(6 * MB)
    sid = _upload(loop, payload)
    cut = _cut_after(loop, sid, MB)
    path0: Any = loop.client.paths.get(0)
    pto_at_cut = path0.recovery.pto_period()
    loop.run_until(lambda: _stats(loop, 0).suspect, timeout=5)
    suspected_after = loop.now - cut
    # three min RTTs (20 ms) + a few ACK gaps + the peer's ACK delay, floored at 100 ms
    assert suspected_after <= silence.SILENCE_FLOOR + 0.025 + 0.05, suspected_after
    assert suspected_after < pto_at_cut, (suspected_after, pto_at_cut)
    assert path0 not in loop.client.paths.schedulable()
    loop.run_until(lambda: loop.received(sid)[1], timeout=30)
    assert loop.received(sid)[0] == payload
    assert any(isinstance(e, PathFailed) and e.path_id == 0 for e in loop.client_events)


def test_a_link_that_pauses_and_returns_is_suspected_then_used_again() -> None:
    """A spurious suspicion (a 300 ms radio pause) costs duplicate bytes, nothing else:
    the path is not failed, carries data again, and every byte arrives intact."""
    loop = two_paths(rate=1_000_000, delays=(0.01, 0.02))
    payload = _payload(6 * MB)
    sid = _upload(loop, payload)
    cut = _cut_after(loop, sid, MB)
    loop.run_until(lambda: _stats(loop, 0).suspect, timeout=1)
    loop.advance(cut + 0.3 - loop.now)  # the link comes back 300 ms after the cut
    loop.links[LINK_A].up = True
    loop.run_until(lambda: not _stats(loop, 0).suspect, timeout=3)
    sent_before = loop.links[LINK_A].bytes["up"]
    loop.run_until(lambda: loop.received(sid)[1], timeout=30)
    assert loop.received(sid)[0] == payload
    assert _stats(loop, 0).state == "validated"
    assert not any(isinstance(e, PathFailed) for e in loop.client_events)
    assert loop.links[LINK_A].bytes["up"] > sent_before + 100_000  # used again


def test_nothing_is_suspected_when_every_link_goes_silent() -> None:
    """No other path's ACKs prove the link is to blame (our side or the peer may be
    what stalled): no path is suspected, the PTO rules alone apply."""
    loop = two_paths(rate=1_000_000, delays=(0.01, 0.02))
    sid = _upload(loop, _payload(4 * MB))
    _cut_after(loop, sid, MB)
    loop.links[LINK_B].up = False
    loop.advance(0.5)
    assert not any(s.suspect for s in loop.client.path_stats(loop.now))


def test_the_silence_allowed_grows_with_the_paths_rtt_and_ack_spacing() -> None:
    loop = two_paths(rate=1_000_000, delays=(0.01, 0.02))
    path: Any = loop.client.paths.get(0)
    path.ack_spacing = 0.001
    short = silence.silence_threshold(path)
    assert short >= silence.SILENCE_FLOOR
    path.ack_spacing = 0.05
    assert silence.silence_threshold(path) > short + 0.1
