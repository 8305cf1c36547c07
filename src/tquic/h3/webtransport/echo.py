"""A WebTransport echo endpoint (``tquic server --webtransport-echo PATH``).

- each bidirectional stream is echoed back on the same stream;
- each unidirectional stream is echoed back on a new unidirectional stream;
- each datagram is echoed back as a datagram.

The session ends when the client closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

from tquic.h3.webtransport.session import WebTransportSession
from tquic.h3.webtransport.streams import (
    WebTransportBidirectionalStream,
    WebTransportError,
    WebTransportReceiveStream,
)

MAX_ECHO_STREAM = 64 << 20  # a unidirectional stream is read whole before it is echoed


async def _echo_bidi(stream: WebTransportBidirectionalStream) -> None:
    with contextlib.suppress(WebTransportError):
        while chunk := await stream.read():
            await stream.write(chunk)
        stream.close()


async def _echo_uni(session: WebTransportSession, stream: WebTransportReceiveStream) -> None:
    with contextlib.suppress(WebTransportError, ValueError):
        data = await stream.read_all(MAX_ECHO_STREAM)
        reply = await session.create_unidirectional_stream()
        await reply.write(data)
        reply.close()


async def echo_session(session: WebTransportSession) -> None:
    """Echo everything the peer sends until the session closes."""
    tasks: set[asyncio.Task[None]] = set()

    def spawn(coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def bidi() -> None:
        async for stream in session.incoming_bidirectional_streams:
            spawn(_echo_bidi(stream))

    async def uni() -> None:
        async for stream in session.incoming_unidirectional_streams:
            spawn(_echo_uni(session, stream))

    async def datagrams() -> None:
        with contextlib.suppress(WebTransportError):
            while True:
                data = await session.datagrams.receive()
                with contextlib.suppress(WebTransportError, ValueError):
                    session.datagrams.send(data)

    spawn(bidi())
    spawn(uni())
    spawn(datagrams())
    try:
        await asyncio.shield(session.closed)
    finally:
        for task in list(tasks):
            task.cancel()
        for task in list(tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
