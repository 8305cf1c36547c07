"""Client migration (RFC 9000 §9.2, §9.3.2) seen through the engine's events, which the
asyncio ``conn.migrate()`` waits on: PathValidated when the new path answers,
PathMigrated back to the old address when it does not."""

from __future__ import annotations

from engine_loop import SERVER_ADDR
from routed_loop import RoutedLoop, routed_pair, transfer

from tquic.core.events import PathMigrated, PathValidated
from tquic.paths.network_path import NetworkPath

NEW_LOCAL = ("10.0.0.9", 5555)


def _migrate(loop: RoutedLoop) -> tuple[NetworkPath, NetworkPath]:
    old = loop.client.paths.primary.network_path
    new = NetworkPath(NEW_LOCAL, old.remote)
    loop.client_addr = NEW_LOCAL
    loop.client.migrate(new, loop.now, path_id=0)
    return old, new


def test_validated_migration_reports_path_validated_with_the_new_address() -> None:
    loop = routed_pair(listening=(SERVER_ADDR,))
    transfer(loop, 10_000)
    _, new = _migrate(loop)
    assert loop.run_until(lambda: any(isinstance(e, PathValidated) and e.network_path == new
                                      for e in loop.client_events), max_time=loop.now + 5)
    transfer(loop, 50_000)
    assert loop.server.paths.primary.network_path.remote == NEW_LOCAL


def test_unanswered_migration_goes_back_with_path_migrated() -> None:
    loop = routed_pair(listening=(SERVER_ADDR,))
    transfer(loop, 10_000)
    old, new = _migrate(loop)
    loop.listening = ()  # nothing the client sends arrives any more ...
    assert loop.run_until(lambda: any(isinstance(e, PathMigrated) and e.network_path == old
                                      for e in loop.client_events), max_time=loop.now + 10)
    assert not any(isinstance(e, PathValidated) and e.network_path == new
                   for e in loop.client_events)
    assert loop.client.paths.primary.network_path == old  # §9.3.2: back to the old address
    loop.listening = (SERVER_ADDR,)  # ... until it is back on the old address
    loop.client_addr = old.local
    transfer(loop, 50_000)
