"""qlog of a multipath connection: every path's life is in the trace.

multipath:path_assigned when a path ID gets its 4-tuple (both ends), then
multipath:path_updated for validated, backup/available (PATH_STATUS_*),
abandoned (PATH_ABANDON) and closed (after the 3 PTO retention), next to the
quic:tuple_assigned events of draft-ietf-quic-qlog-quic-events.
"""

from __future__ import annotations

from typing import Any

from engine_pairs import LINK_A, LINK_B, mp_pair

from tquic.qlog import QuicLogger
from tquic.testing.engines import Link


def _named(log: QuicLogger, name: str) -> list[dict[str, Any]]:
    return [e["data"] for e in log.events if e["name"] == name]


def _path_updates(log: QuicLogger, path_id: int) -> list[tuple[str | None, str]]:
    return [(d.get("old"), d["new"]) for d in _named(log, "multipath:path_updated")
            if d["path_id"] == path_id]


def test_a_path_life_is_logged_from_assignment_to_closing_on_both_ends() -> None:
    client_log = QuicLogger(vantage="client")
    server_log = QuicLogger(vantage="server")
    loop = mp_pair(links={LINK_A: Link(delay=0.01), LINK_B: Link(delay=0.02)},
                   client_kwargs={"quic_logger": client_log},
                   server_kwargs={"quic_logger": server_log})
    client, server = loop.client, loop.server
    loop.run_until(lambda: client.can_open_path, timeout=2)
    path_id = client.add_path(LINK_B, None, loop.now)
    loop.run_until(lambda: client.paths.get(path_id).validated  # type: ignore[union-attr]
                   and server.paths.get(path_id) is not None
                   and server.paths.get(path_id).validated,  # type: ignore[union-attr]
                   timeout=2)
    client.set_path_status(path_id, True, loop.now)
    loop.advance(0.2)
    client.set_path_status(path_id, False, loop.now)
    loop.advance(0.2)
    client.abandon_path(path_id, now=loop.now)
    loop.run_until(lambda: client.paths.get(path_id) is None
                   and server.paths.get(path_id) is None, timeout=5)

    for log in (client_log, server_log):
        assigned = [d for d in _named(log, "multipath:path_assigned") if d["path_id"] == path_id]
        assert len(assigned) == 1
        local = LINK_B if log is client_log else ("192.0.2.1", 443)
        assert assigned[0]["path_local"]["ip_v4"] == local[0]
        assert assigned[0]["tuple_id"] == str(path_id)
        assert any(d["tuple_id"] == str(path_id) and "tuple_local" in d
                   for d in _named(log, "quic:tuple_assigned"))

    client_states = _path_updates(client_log, path_id)
    assert client_states == [("new", "validated"), ("validated", "backup"),
                             ("backup", "available"), ("available", "abandoned"),
                             ("abandoned", "closed")], client_states
    server_states = _path_updates(server_log, path_id)
    assert server_states[0] == ("new", "validated")
    assert ("backup" in {new for _, new in server_states}
            and server_states[-2:] == [(server_states[-2][0], "abandoned"),
                                       ("abandoned", "closed")]), server_states
    status = [d for d in _named(client_log, "multipath:path_updated")
              if d["path_id"] == path_id and d["new"] in ("backup", "abandoned")]
    assert all(d["initiator"] == "local" for d in status)
    remote = [d for d in _named(server_log, "multipath:path_updated")
              if d["path_id"] == path_id and d["new"] in ("backup", "abandoned")]
    assert remote and all(d["initiator"] == "remote" for d in remote)
    # Path 0 (the handshake path) is never assigned nor closed in this run.
    assert not _path_updates(client_log, 0)
