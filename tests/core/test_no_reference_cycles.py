"""A connection is freed by reference counting when its last user drops it (issue 19).

Its components refer back to it weakly (core/owner_ref.py): nothing of a connection
waits for the cyclic garbage collector, which cost a busy server ~14 % of its CPU
(tests/io/test_io_freed_connections.py: the asyncio driver).  Each test runs with the
collector off, so an object that is freed was freed by reference counting."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from engine_certs import server_config
from engine_pairs import CLIENT_PATH, SERVER_PATH, client_config

from tquic.core.conn_base import ConnState
from tquic.core.connection import QuicConnection
from tquic.core.events import StreamDataReceived


@pytest.fixture
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _exchange(client: QuicConnection, server: QuicConnection, now: float) -> None:
    """Deliver what each side sends until both are quiet (a lossless, zero-delay link)."""
    for _ in range(100):
        moved = False
        for data, _path in client.datagrams_to_send(now):
            server.receive_datagram(data, SERVER_PATH, now)
            moved = True
        for data, _path in server.datagrams_to_send(now):
            client.receive_datagram(data, CLIENT_PATH, now)
            moved = True
        if not moved:
            return
    raise AssertionError("the engines never went quiet")


def _pair() -> tuple[QuicConnection, QuicConnection]:
    client = QuicConnection(client_config())
    server = QuicConnection(server_config(), is_client=False)
    client.connect(CLIENT_PATH, 0.0)
    return client, server


def _freed(*engines: QuicConnection) -> list[weakref.ref[QuicConnection]]:
    return [weakref.ref(engine) for engine in engines]


def test_engines_mid_handshake_are_freed_without_the_collector(collector_off: None) -> None:
    client, server = _pair()
    for data, _path in client.datagrams_to_send(0.0):  # the server answers the Initial
        server.receive_datagram(data, SERVER_PATH, 0.0)
    assert server.datagrams_to_send(0.0)
    refs = _freed(client, server)
    del client, server
    assert [ref() for ref in refs] == [None, None]


def test_engines_after_a_transfer_and_close_are_freed_without_the_collector(
        collector_off: None) -> None:
    client, server = _pair()
    _exchange(client, server, 0.0)
    assert client.handshake_confirmed
    stream = client.open_stream()
    client.send_stream_data(stream, b"x" * 50_000, end_stream=True)
    _exchange(client, server, 0.01)
    events = iter(server.next_event, None)
    assert sum(len(e.data) for e in events if isinstance(e, StreamDataReceived)) == 50_000
    client.close(0, "done")
    _exchange(client, server, 0.02)
    now = 0.02
    while server.state != ConnState.TERMINATED and now < 30:  # the draining period ends
        deadline = server.next_timeout()
        now = max(now, deadline if deadline is not None else now + 1)
        server.handle_timeout(now)
        client.handle_timeout(now)
    assert server.state == ConnState.TERMINATED
    refs = _freed(client, server)
    del client, server
    assert [ref() for ref in refs] == [None, None]
