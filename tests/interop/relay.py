"""A lossy UDP relay for interop tests: forwards datagrams between one client and a
server, dropping a fixed fraction in each direction (seeded, so runs repeat)."""

from __future__ import annotations

import asyncio
import random
from typing import Any


class _Side(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Any) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self._on_datagram = on_datagram

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self._on_datagram(data, addr)


class LossyRelay:
    """Listen on 127.0.0.1:<port>; forward to ``server`` and back, dropping ``loss``."""

    def __init__(self, server: tuple[str, int], loss: float = 0.05, seed: int = 7) -> None:
        self.server = server
        self.loss = loss
        self._rng = random.Random(seed)
        self._client: tuple[str, int] | None = None
        self._front: _Side | None = None
        self._back: _Side | None = None
        self.forwarded = 0
        self.dropped = 0

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        _, self._front = await loop.create_datagram_endpoint(
            lambda: _Side(self._from_client), local_addr=("127.0.0.1", 0))
        _, self._back = await loop.create_datagram_endpoint(
            lambda: _Side(self._from_server), local_addr=("127.0.0.1", 0))
        assert self._front.transport is not None
        return int(self._front.transport.get_extra_info("sockname")[1])

    def _drop(self) -> bool:
        if self._rng.random() < self.loss:
            self.dropped += 1
            return True
        self.forwarded += 1
        return False

    def _from_client(self, data: bytes, addr: tuple[str, int]) -> None:
        self._client = addr
        if not self._drop() and self._back is not None and self._back.transport is not None:
            self._back.transport.sendto(data, self.server)

    def _from_server(self, data: bytes, addr: tuple[str, int]) -> None:
        if (self._client is not None and not self._drop() and self._front is not None
                and self._front.transport is not None):
            self._front.transport.sendto(data, self._client)

    def close(self) -> None:
        for side in (self._front, self._back):
            if side is not None and side.transport is not None:
                side.transport.close()
