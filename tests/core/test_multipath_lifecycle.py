"""Multipath path lifecycle over two in-memory links (real TLS, explicit time).

Path validation on the new 4-tuple, PATH_ABANDON with its 3 PTO retention,
MAX_PATH_ID replacing forgotten path IDs, PATH_STATUS, refusal by the server,
validation failure, migration of one path, key updates across paths.
"""

from __future__ import annotations

from functools import partial

import pytest
from engine_pairs import LINK_A, LINK_B, mp_pair, two_paths
from test_multipath_transfer import MB, _payload, _send

from tquic.core.conn_base import ConnState
from tquic.core.events import (
    ConnectionIdRetired,
    PathAbandoned,
    PathFailed,
    PathStatusChanged,
    PathValidated,
)
from tquic.testing.engines import Link
from tquic.wire.errors import PathAbandonCode


def test_new_path_is_validated_on_its_own_four_tuple_both_ways() -> None:
    loop = two_paths()
    validated = [e for e in loop.client_events if isinstance(e, PathValidated)]
    assert [e.path_id for e in validated] == [1]
    assert validated[0].network_path.local == LINK_B
    server_path = loop.server.paths.get(1)
    assert server_path is not None and server_path.network_path.remote == LINK_B


def test_abandon_path_is_answered_and_state_kept_three_pto_then_forgotten() -> None:
    loop = two_paths()
    client, server = loop.client, loop.server
    client.abandon_path(1, PathAbandonCode.APPLICATION_ABANDON_PATH, loop.now)
    abandoned_at = loop.now
    loop.run_until(lambda: any(isinstance(e, PathAbandoned) and e.by_peer
                               for e in loop.server_events), timeout=1)
    event = next(e for e in loop.server_events if isinstance(e, PathAbandoned))
    assert event.error_code == PathAbandonCode.APPLICATION_ABANDON_PATH and event.path_id == 1
    # The server answered with its own PATH_ABANDON; both keep the path for 3 PTO.
    path = client.paths.get(1)
    assert path is not None and path.state_name == "abandoned"
    deadline = path.abandon_deadline
    assert deadline is not None
    assert deadline - abandoned_at == pytest.approx(3 * client.pto, rel=0.01)
    loop.run_until(lambda: client.paths.get(1) is None and server.paths.get(1) is None, timeout=5)
    assert loop.now >= deadline
    retired = {e.path_id for e in loop.client_events if isinstance(e, ConnectionIdRetired)}
    assert 1 in retired
    # The connection goes on over path 0, and path ID 1 is never reused.
    sid = _send(loop, b"after" * 1000)
    loop.run_until(lambda: loop.received(sid)[1], timeout=5)
    assert client.add_path(("10.0.2.1", 5000), None, loop.now) == 2


def test_abandoning_the_last_path_closes_the_connection() -> None:
    loop = mp_pair()
    loop.client.abandon_path(0, 0, loop.now)
    assert loop.client.state >= ConnState.CLOSING


def test_path_status_signals_reach_the_peer_and_steer_the_scheduler() -> None:
    loop = two_paths("roundrobin")
    loop.client.set_path_status(0, backup=True, now=loop.now)
    loop.run_until(lambda: any(isinstance(e, PathStatusChanged) and e.path_id == 0
                               and e.by_peer for e in loop.server_events), timeout=1)
    assert loop.server.paths.get(0).peer_backup is True  # type: ignore[union-attr]
    before = dict(loop.links[LINK_A].bytes)
    sid = _send(loop, _payload(MB))
    loop.run_until(lambda: loop.received(sid)[1], timeout=10)
    # Path 0 is backup now: the data went over path 1.
    assert loop.links[LINK_A].bytes["up"] - before["up"] < 20_000
    assert loop.links[LINK_B].bytes["up"] > MB


def test_key_update_with_two_paths_in_use() -> None:
    loop = two_paths("roundrobin")
    payload = _payload(2 * MB)
    sid = _send(loop, payload)
    loop.run_until(lambda: len(loop.received(sid)[0]) > MB // 2, timeout=10)
    loop.client.request_key_update()
    loop.run_until(lambda: loop.received(sid)[1], timeout=20)
    assert loop.received(sid)[0] == payload
    assert loop.client.key_phase == 1 and loop.server.key_phase == 1


def test_migration_of_one_path_keeps_its_path_id() -> None:
    link_c = ("10.0.3.1", 5000)
    loop = two_paths()
    loop.links[link_c] = Link(delay=0.015)
    from tquic.paths.network_path import NetworkPath

    loop.client.migrate(NetworkPath(link_c, ("192.0.2.1", 443)), loop.now, path_id=1)
    loop.run_until(lambda: loop.server.paths.get(1).network_path.remote == link_c  # type: ignore[union-attr]
                   and loop.client.paths.get(1).validated,  # type: ignore[union-attr]
                   timeout=3)
    assert loop.server.paths.get(0).network_path.remote == LINK_A  # type: ignore[union-attr]
    sid = _send(loop, _payload(MB))
    loop.run_until(lambda: loop.received(sid)[1], timeout=10)


def test_server_refusing_paths_abandons_them_and_the_client_sees_it() -> None:
    links = {LINK_A: Link(), LINK_B: Link()}
    loop = mp_pair(links=links, server_kwargs={"accept_paths": False})
    loop.run_until(lambda: 1 in loop.client.peer_cids(), timeout=2)
    loop.client.add_path(LINK_B, None, loop.now)
    loop.run_until(lambda: any(isinstance(e, PathAbandoned) and e.by_peer
                               for e in loop.client_events), timeout=2)
    event = next(e for e in loop.client_events if isinstance(e, PathAbandoned))
    assert event.path_id == 1 and event.error_code == PathAbandonCode.PATH_RESOURCE_LIMIT_REACHED
    assert loop.server.paths.get(1) is None


def test_second_key_update_waits_three_largest_pto_with_multipath() -> None:
    from tquic.core.key_update import KeyUpdateNotAllowed

    loop = two_paths("roundrobin")
    sid = _send(loop, _payload(MB // 4))
    loop.client.request_key_update(loop.now)
    loop.run_until(lambda: loop.received(sid)[1], timeout=5)
    acked_at = loop.client.crypto_state.key_update_acked_at
    assert acked_at is not None
    with pytest.raises(KeyUpdateNotAllowed):
        loop.client.request_key_update(acked_at + loop.client.pto)
    loop.client.request_key_update(acked_at + 3.01 * loop.client.pto)
    assert loop.client.key_phase == 0  # flipped twice


def test_path_that_fails_validation_is_abandoned_and_never_carries_data() -> None:
    links = {LINK_A: Link(), LINK_B: Link(up=False)}  # the second link is dead
    loop = mp_pair(links=links)
    loop.run_until(lambda: loop.client.can_open_path, timeout=2)
    loop.client.add_path(LINK_B, None, loop.now)
    loop.run_until(lambda: any(isinstance(e, PathFailed) for e in loop.client_events), timeout=10)
    failed = next(e for e in loop.client_events if isinstance(e, PathFailed))
    assert failed.path_id == 1 and "validation" in failed.reason
    assert any(isinstance(e, PathAbandoned) and e.path_id == 1 for e in loop.client_events)
    sid = _send(loop, _payload(MB // 4))
    loop.run_until(lambda: loop.received(sid)[1], timeout=5)
    assert loop.client.can_open_path  # path ID 2 is still there to try again


def test_forgotten_paths_are_replaced_by_max_path_id_so_a_flapping_link_can_rejoin() -> None:
    loop = mp_pair(client_max_path_id=1, server_max_path_id=1)
    client, server = loop.client, loop.server

    def validated(pid: int) -> bool:
        path = client.paths.get(pid)
        return path is not None and path.validated

    def forgotten(pid: int) -> bool:
        return client.paths.get(pid) is None and server.paths.get(pid) is None

    for round_ in range(3):
        loop.run_until(lambda: client.can_open_path, timeout=2), round_
        path_id = client.add_path(LINK_B, None, loop.now)
        assert path_id == round_ + 1  # path IDs are never reused
        loop.run_until(partial(validated, path_id), timeout=2)
        client.abandon_path(path_id, 0, loop.now)
        loop.run_until(partial(forgotten, path_id), timeout=5)
    assert client.local_max_path_id == 4 and server.local_max_path_id == 4

