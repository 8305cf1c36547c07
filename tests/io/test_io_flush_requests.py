"""QuicConnectionProtocol.request_flush: one flush per loop iteration, none when a
flush asked the engine for datagrams after the request (io/protocol.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from tquic.io.protocol import QuicConnectionProtocol
from tquic.paths.network_path import NetworkPath

pytestmark = pytest.mark.timeout(10)


class StubEngine:
    """Counts how often the driver asks for datagrams; has nothing to send."""

    def __init__(self) -> None:
        self.asked = 0
        self.on_event: Any = None  # called once from the next event poll

    def next_event(self) -> None:
        hook, self.on_event = self.on_event, None
        if hook is not None:
            hook()
        return None

    def datagrams_to_send(self, now: float) -> list[Any]:
        self.asked += 1
        return []

    def next_timeout(self) -> float | None:
        return None


@dataclass
class StubConfig:
    datagram_queue_size: int = 16


@dataclass
class StubEndpoint:
    loop: asyncio.AbstractEventLoop
    config: StubConfig = field(default_factory=StubConfig)

    def send_datagrams(self, datagrams: list[Any], ecn: Any = None) -> None:
        raise AssertionError("the stub engine sends nothing")


def _protocol() -> tuple[QuicConnectionProtocol, StubEngine]:
    engine = StubEngine()
    endpoint = StubEndpoint(asyncio.get_running_loop())
    proto = QuicConnectionProtocol(endpoint, engine, is_client=True,  # type: ignore[arg-type]
                                   network_path=NetworkPath(("127.0.0.1", 1), ("127.0.0.1", 2)))
    return proto, engine


async def _next_iterations() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


def test_requests_in_one_iteration_make_one_flush() -> None:
    async def main() -> None:
        proto, engine = _protocol()
        for _ in range(5):
            proto.request_flush()
        await _next_iterations()
        assert engine.asked == 1
    asyncio.run(main())


def test_a_request_answered_by_a_later_flush_is_skipped() -> None:
    async def main() -> None:
        proto, engine = _protocol()
        proto.request_flush()
        proto.flush()  # e.g. the endpoint's flush after a received batch
        await _next_iterations()
        assert engine.asked == 1
        proto.request_flush()  # a skipped request leaves later ones working
        await _next_iterations()
        assert engine.asked == 2
    asyncio.run(main())


def test_a_request_made_after_the_last_flush_is_served() -> None:
    async def main() -> None:
        proto, engine = _protocol()
        proto.request_flush()
        proto.flush()
        proto.request_flush()  # something queued after that flush's send, with the
        # first request's callback still pending
        await _next_iterations()
        assert engine.asked == 2
        proto.request_flush()  # and a later one again
        await _next_iterations()
        assert engine.asked == 3
    asyncio.run(main())


def test_a_request_made_while_a_flush_handles_events_is_answered_by_that_flush() -> None:
    async def main() -> None:
        proto, engine = _protocol()
        engine.on_event = proto.request_flush  # e.g. HTTP/3 reacting to a received batch
        proto.flush()
        await _next_iterations()
        assert engine.asked == 1  # the flush in progress sent what the request was for
        proto.request_flush()  # and requests keep working afterwards
        await _next_iterations()
        assert engine.asked == 2
    asyncio.run(main())


def test_a_flush_listener_runs_between_the_events_and_the_send() -> None:
    """add_flush_listener: what the listener queues (e.g. a TUN's answer to what the
    events wrote) is asked for by the same flush, and its request adds no flush."""
    async def main() -> None:
        proto, engine = _protocol()
        order: list[str] = []
        engine.on_event = lambda: order.append("events")
        asked = engine.datagrams_to_send

        def send(now: float) -> list[Any]:
            order.append("send")
            return asked(now)
        engine.datagrams_to_send = send  # type: ignore[method-assign]

        def listener() -> None:
            order.append("listener")
            proto.request_flush()  # what queueing a datagram does
        proto.add_flush_listener(listener)
        proto.flush()
        await _next_iterations()
        assert order[:3] == ["events", "listener", "send"]
        assert engine.asked == 1
        proto.remove_flush_listener(listener)
        proto.remove_flush_listener(listener)  # twice: harmless
        proto.flush()
        assert order.count("listener") == 1  # removed: the second flush does not call it
        assert engine.asked == 2
    asyncio.run(main())
