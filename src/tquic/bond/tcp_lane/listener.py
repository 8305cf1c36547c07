"""What the SOCKS server and the redirect listener share: the listening socket, the
connection handlers it runs, their limit, and the figures.

``listen`` is ``ADDR:PORT`` (``[v6]:PORT`` for IPv6, port 0 for any) or a
``(host, port)`` tuple.  Closing the listener also ends every connection it is
still relaying (their tunnels are reset, their TCP connections closed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

logger = logging.getLogger("tquic.bond.lane")

ConnectionHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
READ_LIMIT = 1 << 20  # per-connection StreamReader buffer: reads pause beyond it


def parse_listen(listen: str | tuple[str, int]) -> tuple[str, int]:
    """``127.0.0.1:1080`` / ``[::1]:1080`` / ``(host, port)`` → (host, port); ValueError."""
    if isinstance(listen, tuple):
        host, port = listen
    else:
        text = listen.strip()
        if text.startswith("["):
            host, sep, rest = text[1:].partition("]")
            port_text = rest[1:] if sep and rest.startswith(":") else ""
        else:
            host, _, port_text = text.rpartition(":")
        if not host or not port_text.isdigit():
            raise ValueError(f"listen address {listen!r}: expected ADDR:PORT, e.g. 127.0.0.1:1080 "
                             "or [::1]:1080")
        port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"listen address {listen!r}: port {port} is outside 0..65535")
    return host, port


@dataclass(slots=True)
class ListenerCounters:
    accepted: int = 0
    active: int = 0
    refused: int = 0  # over the connection limit
    failed: int = 0  # handshake errors, refused CONNECTs
    bytes_up: int = 0  # TCP client → bond
    bytes_down: int = 0  # bond → TCP client


class LaneListener:
    """A running listener (SOCKS or redirect)."""

    def __init__(self, handler: ConnectionHandler, *, max_connections: int = 1024) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self._handler = handler
        self._max = max_connections
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._close_hooks: list[Callable[[], None]] = []
        self.counters = ListenerCounters()

    def on_close(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` once when the listener closes (e.g. remove a firewall rule)."""
        self._close_hooks.append(hook)

    async def start(self, listen: str | tuple[str, int]) -> LaneListener:
        host, port = parse_listen(listen)
        self._server = await asyncio.start_server(self._accept, host, port, limit=READ_LIMIT)
        return self

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) actually bound (the first socket)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the listener is not running")
        sockname = self._server.sockets[0].getsockname()
        return str(sockname[0]), int(sockname[1])

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        counters = self.counters
        if counters.active >= self._max:
            counters.refused += 1
            writer.transport.abort()
            return
        counters.accepted += 1
        counters.active += 1
        # Our own task (not asyncio's per-connection one), so close() can cancel it
        # without asyncio logging the cancellation as an error.
        task = asyncio.ensure_future(self._run(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._handler(reader, writer)
        except asyncio.CancelledError:
            writer.transport.abort()
        except Exception:  # one connection's surprise is logged, never fatal to the listener
            logger.exception("lane: connection handler failed")
            self.counters.failed += 1
            writer.transport.abort()
        finally:
            self.counters.active -= 1
            if not writer.transport.is_closing():
                writer.close()

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        hooks, self._close_hooks = self._close_hooks, []
        for hook in hooks:
            try:
                hook()
            except Exception:
                logger.exception("lane: close hook failed")

    async def wait_closed(self) -> None:
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        if self._server is not None:
            await self._server.wait_closed()

    async def aclose(self) -> None:
        self.close()
        await self.wait_closed()

    async def __aenter__(self) -> LaneListener:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
