"""Plain UDP helpers for the netem loopback tests: a sink/echo target and clients."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tquic.netem.relay import NetemThread
from tquic.netem.spec import LinkTable, parse_link_option
from tquic.paths.network_path import Address


class Target:
    """A UDP socket on 127.0.0.1 that records (arrival time, payload) and may echo."""

    def __init__(self, echo: bool) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.echo = echo
        self.received: list[tuple[float, bytes]] = []
        self._lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def address(self) -> Address:
        host, port = self.sock.getsockname()
        return (host, port)

    def _run(self) -> None:
        while not self._stop:
            try:
                data, source = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.received.append((time.monotonic(), data))
            if self.echo:
                self.sock.sendto(data, source)

    def payloads(self) -> list[bytes]:
        with self._lock:
            return [d for _, d in self.received]

    def close(self) -> None:
        self._stop = True
        self._thread.join(1.0)
        self.sock.close()


def client(host: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, 0))
    s.settimeout(2.0)
    return s


@contextmanager
def relay(*links: str, echo: bool = False, seed: int = 0, max_clients: int = 256,
          out: Callable[[str], None] | None = None,
          epoch: str = "start") -> Iterator[tuple[NetemThread, Target]]:
    """A target and a netem relay in front of it with ``--link``-style ``links``."""
    target = Target(echo)
    table = LinkTable()
    for option in links:
        address, rule = parse_link_option(option)
        table = table.with_rule(address, rule) if address else LinkTable(table.rules, rule)
    thread = NetemThread(("127.0.0.1", 0), target.address, table, seed=seed, out=out,
                         max_clients=max_clients, epoch=epoch)
    try:
        thread.start()
        yield thread, target
    finally:
        thread.stop()
        target.close()


def wait_for(predicate: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        time.sleep(0.01)
