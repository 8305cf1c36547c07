"""Client migration (RFC 9000 §9.2, §9.3.2) seen through the engine's events, which the
asyncio ``conn.migrate()`` waits on: PathValidated when the new path answers,
PathMigrated back to the old address when it does not."""

from __future__ import annotations

from engine_pairs import routed_pair, transfer

from tquic.core.events import PathMigrated, PathValidated
from tquic.paths.network_path import NetworkPath
from tquic.testing.engines import SERVER_ADDR, EnginePair, Link

NEW_LOCAL = ("10.0.0.9", 5555)


def _migrate(loop: EnginePair) -> tuple[NetworkPath, NetworkPath]:
    old = loop.client.paths.primary.network_path
    new = NetworkPath(NEW_LOCAL, old.remote)
    loop.links[NEW_LOCAL] = Link()  # the new local address has its own link
    loop.client.migrate(new, loop.now, path_id=0)
    return old, new


def test_validated_migration_reports_path_validated_with_the_new_address() -> None:
    loop = routed_pair(listening=(SERVER_ADDR,))
    transfer(loop, 10_000)
    _, new = _migrate(loop)
    loop.run_until(lambda: any(isinstance(e, PathValidated) and e.network_path == new
                               for e in loop.client_events), timeout=5)
    transfer(loop, 50_000)
    assert loop.server.paths.primary.network_path.remote == NEW_LOCAL


def test_unanswered_migration_goes_back_with_path_migrated() -> None:
    loop = routed_pair(listening=(SERVER_ADDR,))
    transfer(loop, 10_000)
    old, new = _migrate(loop)
    loop.server_addrs = ()  # nothing the client sends arrives any more ...
    loop.run_until(lambda: any(isinstance(e, PathMigrated) and e.network_path == old
                               for e in loop.client_events), timeout=10)
    assert not any(isinstance(e, PathValidated) and e.network_path == new
                   for e in loop.client_events)
    assert loop.client.paths.primary.network_path == old  # §9.3.2: back to the old address
    loop.server_addrs = (SERVER_ADDR,)  # ... until it is back on the old address
    transfer(loop, 50_000)
