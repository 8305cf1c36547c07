"""A control plane running for real (its own event loop in a thread) in front of the fake
daemon, and raw exchanges with its listener (shared by tests/control)."""


from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fake_daemon import FakeDaemon

from tquic.control.server import ControlPlane, start_control

TOKEN = "s3cret-token-for-tests-0123456789"
T = TypeVar("T")


class RunningPlane:
    """``start_control`` on a private event loop in a daemon thread."""

    def __init__(self, daemon: FakeDaemon, target: str, token: str | None,
                 interval: float) -> None:
        self.daemon = daemon
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.plane: ControlPlane = self.call(
            lambda: start_control(daemon, daemon, target, token=token, interval=interval))
        self.address = self.plane.address

    def call(self, make: Callable[[], Awaitable[T]], timeout: float = 10) -> T:
        async def run() -> T:
            return await make()
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(run(), self.loop)
        return future.result(timeout)

    def close(self) -> None:
        self.call(self.plane.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


def raw_exchange(address: str, data: bytes, timeout: float = 5.0) -> tuple[int, dict[str, str],
                                                                          bytes]:
    """Send raw bytes to the listener, read the whole answer: (status, headers, body)."""
    import socket

    if "/" in address:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connect_to: Any = address
    else:
        host, _, port = address.rpartition(":")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        connect_to = (host, int(port))
    sock.settimeout(timeout)
    with sock:
        sock.connect(connect_to)
        sock.sendall(data)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body
