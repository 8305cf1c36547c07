"""A finished connection's asyncio driver (QuicConnectionProtocol) and engine are freed
by reference counting (issue 19): the driver's timer and stream registry refer to it
weakly, so it is in no reference cycle and nothing waits for the cyclic collector.
The test runs with the collector off: what is freed was freed by reference counting."""

from __future__ import annotations

import asyncio
import gc
import weakref

import tquic
from tquic.cli.hq import HqServer
from tquic.core.config import QuicConfiguration


def test_a_finished_server_connection_and_its_driver_are_freed_without_the_collector(
        server_config: QuicConfiguration, client_config: QuicConfiguration) -> None:
    async def main() -> None:
        server = await tquic.serve("127.0.0.1", 0, server_config, HqServer(None))
        async with server:
            async with tquic.connect("127.0.0.1", server.local_address[1],
                                     client_config) as conn:
                await conn.wait_connected()
                [protocol] = server.endpoint.connections
                refs = [weakref.ref(protocol), weakref.ref(protocol.quic)]
                del protocol
            loop = asyncio.get_running_loop()
            # The server drains for 3 PTOs (RFC 9000 §10.2), at most 10 s (_DRAIN_CAP).
            deadline = loop.time() + 15.0
            while any(ref() is not None for ref in refs) and loop.time() < deadline:
                await asyncio.sleep(0.02)
            assert not server.endpoint.connections
            assert [ref() for ref in refs] == [None, None]

    gc.collect()
    gc.disable()
    try:
        asyncio.run(asyncio.wait_for(main(), 30.0))
    finally:
        gc.enable()
