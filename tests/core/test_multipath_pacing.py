"""The engine honours a pacing-aware scheduler's choice of a paced-out path (wait for
its pacer) and skips a paced-out path for a scheduler that cannot see pacing."""

from __future__ import annotations

from collections.abc import Sequence

from engine_pairs import two_paths

from tquic.paths.path import Path
from tquic.paths.schedulers import register_scheduler
from tquic.testing.engines import EnginePair


class AlwaysFirst:
    """Path 0 whenever it is offered (a scheduler that wants to wait for it)."""

    name = "always-first"
    pacing_aware = True

    def select(self, paths: Sequence[Path], now: float) -> Path | None:
        return min(paths, key=lambda p: p.path_id) if paths else None


class AlwaysFirstBlind(AlwaysFirst):
    name = "always-first-blind"
    pacing_aware = False


register_scheduler("always-first", AlwaysFirst)
register_scheduler("always-first-blind", AlwaysFirstBlind)


def _hold_pacer(loop: EnginePair, path_id: int) -> None:
    path = loop.client.paths.get(path_id)
    assert path is not None
    recovery = path.recovery
    recovery.pacer.set_rate(recovery.pacing_rate(), loop.now)
    for _ in range(40):  # spend the bucket and then some: held for several ms
        recovery.pacer.on_packet_sent(loop.now, path.max_datagram_size)
    assert recovery.next_send_time(loop.now, path.max_datagram_size) > loop.now


def _stream_packets_on(loop: EnginePair, path_id: int, now: float) -> int:
    path = loop.client.paths.get(path_id)
    assert path is not None
    from tquic.paths.sent_packets import SpaceId

    return sum(1 for p in path.recovery.in_flight_packets(SpaceId.APPLICATION)
               if p.time_sent == now and any(r[0] == 0 for r in p.frames))  # type: ignore[index]


def test_pacing_aware_choice_of_a_paced_path_means_wait_for_its_pacer() -> None:
    loop = two_paths("always-first", settle=0.1)
    client = loop.client
    _hold_pacer(loop, 0)
    sid = client.open_stream()
    client.send_stream_data(sid, b"z" * 20_000, end_stream=True)
    now = loop.now
    client.datagrams_to_send(now)
    assert _stream_packets_on(loop, 0, now) == 0
    assert _stream_packets_on(loop, 1, now) == 0, "the scheduler chose to wait, not path 1"
    path0 = client.paths.get(0)
    assert path0 is not None
    release = path0.recovery.next_send_time(now, path0.max_datagram_size)
    wake = client.next_timeout()
    assert wake is not None and now < wake <= release + 1e-9
    # At the pacer's time the data leaves on path 0.
    client.handle_timeout(release)
    client.datagrams_to_send(release)
    assert _stream_packets_on(loop, 0, release) >= 1


def test_a_blind_scheduler_gets_the_other_path_while_its_choice_is_paced() -> None:
    loop = two_paths("always-first-blind", settle=0.1)
    client = loop.client
    _hold_pacer(loop, 0)
    sid = client.open_stream()
    client.send_stream_data(sid, b"z" * 20_000, end_stream=True)
    now = loop.now
    client.datagrams_to_send(now)
    assert _stream_packets_on(loop, 0, now) == 0
    assert _stream_packets_on(loop, 1, now) >= 1
