"""The path keeper's policy (``tquic.io.path_keeper``) against a stand-in connection: when
it re-opens, how it backs off, what it does while a link is down; no packets sent."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

import pytest

from tquic.core import events as ev
from tquic.core.multipath import PathError
from tquic.io import path_keeper
from tquic.io.multipath_client import LocalPath
from tquic.io.path_keeper import PathKeeper, ReopenPolicy, link_ready
from tquic.paths.network_path import NetworkPath
from tquic.wire.errors import PathAbandonCode

pytestmark = pytest.mark.timeout(20)

REMOTE = ("127.0.0.1", 4433)
FAST = ReopenPolicy(initial_delay=0.02, max_delay=0.08, check_interval=0.01)


@dataclasses.dataclass
class _Stats:
    path_id: int
    state: str
    bytes_sent: int = 0
    bytes_received: int = 0
    srtt: float = 0.01
    packets_lost: int = 0


class _Engine:
    multipath_enabled = True

    def __init__(self) -> None:
        self.can_open_path = True
        self.next_id = 2
        self.opened: list[tuple[float, NetworkPath]] = []
        self.refusals = 0
        self.states: dict[int, str] = {0: "validated", 1: "validated"}

    def path_stats(self, now: float) -> list[_Stats]:
        return [_Stats(pid, state) for pid, state in self.states.items()]

    def add_path(self, network_path: NetworkPath, remote: object, now: float) -> int:
        if not self.can_open_path:
            self.refusals += 1  # the real engine queues PATHS_BLOCKED here
            raise PathError("no unused path ID")
        path_id = self.next_id
        self.next_id += 1
        self.opened.append((now, network_path))
        self.states[path_id] = "validating"
        return path_id


class _Sock:
    def __init__(self, host: str) -> None:
        self.local_address = (host, 5000)


class _Proto:
    def __init__(self) -> None:
        self.quic = _Engine()
        self.network_path = NetworkPath(("127.0.0.1", 5000), REMOTE)
        self.is_closed = False
        self.started_at = asyncio.get_running_loop().time()
        self.listeners: list[Any] = []
        self.flushes = 0

    def add_path_listener(self, fn: Any) -> None:
        self.listeners.append(fn)

    def remove_path_listener(self, fn: Any) -> None:
        self.listeners.remove(fn)

    def flush(self) -> None:
        self.flushes += 1

    def emit(self, event: ev.Event) -> None:
        if isinstance(event, ev.PathValidated):
            self.quic.states[event.path_id] = "validated"
        elif isinstance(event, ev.PathAbandoned):
            self.quic.states[event.path_id] = "abandoned"
        for fn in list(self.listeners):
            fn(event)


def _keeper(proto: _Proto, second: str = "127.0.0.2",
            policy: ReopenPolicy = FAST) -> PathKeeper:
    slots = [(LocalPath("127.0.0.1"), _Sock("127.0.0.1")), (LocalPath(second), _Sock(second))]
    return PathKeeper(proto, slots, [0, 1], policy=policy)  # type: ignore[arg-type]


def _lost(path_id: int) -> ev.PathAbandoned:
    return ev.PathAbandoned(path_id, PathAbandonCode.PATH_UNSTABLE_OR_POOR, by_peer=False)


async def _until(predicate: Any, timeout: float = 2.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.002)


def test_backoff_doubles_from_the_initial_delay_up_to_the_cap() -> None:
    policy = ReopenPolicy()
    assert [policy.delay(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert policy.delay(10_000) == 5.0


@pytest.mark.parametrize("bad", [
    {"initial_delay": 0}, {"max_delay": 0.1}, {"factor": 0.5}, {"check_interval": -1}])
def test_a_bad_policy_names_the_field(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        ReopenPolicy(**bad)


def test_a_lost_path_is_reopened_from_the_same_socket_and_failed_tries_back_off() -> None:
    async def main() -> None:
        proto = _Proto()
        keeper = _keeper(proto)
        engine = proto.quic
        loop = asyncio.get_running_loop()
        lost_at = loop.time()
        proto.emit(_lost(1))
        await _until(lambda: len(engine.opened) == 1)
        first_at, network_path = engine.opened[0]
        assert network_path == NetworkPath(("127.0.0.2", 5000), REMOTE)
        assert first_at - lost_at >= FAST.initial_delay
        assert keeper.paths_open == 1  # validating: not counted yet
        # The re-opened path (ID 2) fails validation: the next try waits twice as long.
        proto.emit(ev.PathFailed(2, "path validation failed"))
        proto.emit(_lost(2))
        await _until(lambda: len(engine.opened) == 2)
        # ... and so does the next one: 0.04, then 0.08 (the cap).
        proto.emit(_lost(3))
        await _until(lambda: len(engine.opened) == 3)
        gaps = [b[0] - a[0] for a, b in zip(engine.opened, engine.opened[1:], strict=False)]
        assert gaps[0] >= 2 * FAST.initial_delay and gaps[1] >= FAST.max_delay, gaps
        # Path 4 validates: the backoff starts afresh after its next loss.
        proto.emit(ev.PathValidated(4, engine.opened[-1][1]))
        assert keeper.reopened == 1 and keeper.paths_open == 2
        again = loop.time()
        proto.emit(_lost(4))
        await _until(lambda: len(engine.opened) == 4)
        assert engine.opened[-1][0] - again < FAST.max_delay
        rows = {r["path_id"]: r for r in keeper.rows()}
        assert sorted(rows) == [0, 1, 2, 3, 4, 5]
        assert all(r["path"] == "127.0.0.2" for pid, r in rows.items() if pid)
        assert rows[2]["reason"] == "path validation failed"
        assert rows[1]["reason"] == "abandoned locally (PATH_UNSTABLE_OR_POOR)"
        assert [pid for pid, r in rows.items() if r["reopened"]] == [2, 3, 4, 5]
        assert rows[4]["validated_at"] is not None and rows[4]["closed_at"] is not None
        keeper.close()

    asyncio.run(main())


def test_a_missing_address_is_retried_quietly_and_reopened_when_it_is_back(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        proto = _Proto()
        # 192.0.2.10 (TEST-NET-1, RFC 5737) is configured nowhere: bind fails, EADDRNOTAVAIL.
        keeper = _keeper(proto, "192.0.2.10")
        proto.emit(_lost(1))
        await asyncio.sleep(FAST.initial_delay + 10 * FAST.check_interval)
        assert proto.quic.opened == []
        real = path_keeper.link_ready
        monkeypatch.setattr(path_keeper, "link_ready", lambda spec, remote: None)
        await _until(lambda: len(proto.quic.opened) == 1)
        monkeypatch.setattr(path_keeper, "link_ready", real)
        keeper.close()

    with caplog.at_level(logging.INFO, logger="tquic.io.paths"):
        asyncio.run(main())
    down = [r for r in caplog.records if "not usable" in r.getMessage()]
    assert len(down) == 1, caplog.text  # once per outage, not once per check
    assert down[0].levelno == logging.INFO and down[0].exc_info is None
    assert "EADDRNOTAVAIL" in down[0].getMessage()
    assert any("link is back" in r.getMessage() for r in caplog.records)


def test_without_a_free_path_id_it_says_paths_blocked_once_and_waits() -> None:
    async def main() -> None:
        proto = _Proto()
        engine = proto.quic
        engine.can_open_path = False
        keeper = _keeper(proto)
        proto.emit(_lost(1))
        await asyncio.sleep(FAST.initial_delay + 10 * FAST.check_interval)
        assert engine.refusals == 1 and engine.opened == []
        engine.can_open_path = True  # MAX_PATH_ID arrived
        await _until(lambda: len(engine.opened) == 1)
        keeper.close()

    asyncio.run(main())


def test_no_reopen_for_a_disabled_policy_or_a_path_the_application_abandoned() -> None:
    async def main() -> None:
        proto = _Proto()
        keeper = _keeper(proto, policy=dataclasses.replace(FAST, enabled=False))
        proto.emit(_lost(1))
        await asyncio.sleep(FAST.initial_delay * 3)
        assert proto.quic.opened == [] and keeper.paths_open == 1
        keeper.close()
        proto = _Proto()
        keeper = _keeper(proto)
        proto.emit(ev.PathAbandoned(1, PathAbandonCode.APPLICATION_ABANDON_PATH, False))
        await asyncio.sleep(FAST.initial_delay * 3)
        assert proto.quic.opened == []
        # Closing stops pending tries too.
        proto.emit(_lost(0))
        keeper.close()
        await asyncio.sleep(FAST.initial_delay * 3)
        assert proto.quic.opened == [] and proto.listeners == []

    asyncio.run(main())


def test_link_ready_checks_address_and_route_locally() -> None:
    assert link_ready(LocalPath("127.0.0.1"), REMOTE) is None
    reason = link_ready(LocalPath("192.0.2.10"), REMOTE)
    assert reason is not None and "EADDRNOTAVAIL" in reason
