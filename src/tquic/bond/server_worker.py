"""One worker process of ``tquic bond server --workers N`` (the parent is
:mod:`tquic.bond.server_workers`).

The parent starts ``python -m tquic.bond.server_worker UDP_FD CHANNEL_FD``: a fresh
interpreter (no fork of a process that runs an event loop and netlink threads)
that inherits two descriptors, its socket of the SO_REUSEPORT group and one end of
a Unix socket pair to the parent.  Over that channel (:class:`Channel`: a 4-byte
length and a pickled tuple per message; both ends are the same program):

- parent → worker: ``("start", WorkerSpec)`` first; ``("peers", directory)`` whenever
  another worker's clients change; ``("evict", name, why)`` when a client of ours
  reconnected to another worker; ``("stop",)``.
- worker → parent: ``("ready", tun)`` or ``("failed", message)``; ``("up", name,
  addresses, routes)`` and ``("down", name)`` per session; ``("status", BondStatus)``
  every STATUS_INTERVAL and after each session change.

The worker runs a :class:`~tquic.bond.server.BondServer` with a
:class:`~tquic.bond.server.WorkerRole`.  It stops on ``stop``, on SIGTERM and when
the channel closes (the parent is gone): the TUN, and with it its routes, goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import pickle
import signal
import socket
import struct
import sys
from dataclasses import dataclass
from typing import Any

from tquic.bond.config import ServerConfig
from tquic.bond.pool import pool_slices
from tquic.h3.connect_ip import IPNetwork
from tquic.wire.quic_lb import QuicLbConfig

logger = logging.getLogger("tquic.bond")

STATUS_INTERVAL = 1.0  # seconds between the status snapshots a worker sends
_LENGTH = struct.Struct("!I")
_MAX_MESSAGE = 64 << 20  # a status of thousands of clients fits; a corrupt length does not

# name -> (worker index, addresses, networks behind it)
Directory = dict[str, tuple[int, tuple[IPNetwork, ...], tuple[IPNetwork, ...]]]


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What the parent hands a worker at start (pickled over the channel)."""

    index: int
    count: int
    config: ServerConfig
    tun: str
    lb: QuicLbConfig
    keys: dict[str, bytes]  # token_key, stateless_reset_key: the same in every worker
    verbose: bool = False


class Channel:
    """Length-prefixed pickled tuples over a connected Unix stream socket.  Only between
    a parent and the workers it started (the same program and user): never a socket
    anyone else can reach."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, sock: socket.socket) -> Channel:
        reader, writer = await asyncio.open_unix_connection(sock=sock)
        return cls(reader, writer)

    def send(self, *message: Any) -> None:
        if self._writer.is_closing():
            return
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        self._writer.write(_LENGTH.pack(len(data)) + data)

    async def receive(self) -> tuple[Any, ...] | None:
        """The next message; None once the other end is gone."""
        try:
            (length,) = _LENGTH.unpack(await self._reader.readexactly(_LENGTH.size))
            if length > _MAX_MESSAGE:
                return None
            # Only our own parent or child is on the other end (a socketpair).
            message = pickle.loads(await self._reader.readexactly(length))
        except (asyncio.IncompleteReadError, ConnectionError, pickle.UnpicklingError, EOFError):
            return None
        return message if isinstance(message, tuple) and message else None

    async def drain(self) -> None:
        with contextlib.suppress(ConnectionError):
            await self._writer.drain()

    def close(self) -> None:
        self._writer.close()


class PeerTable:
    """The other workers' clients, as the parent last told us (tquic.bond.server.Peers)."""

    def __init__(self, channel: Channel, spec: WorkerSpec) -> None:
        self._channel = channel
        self._index = spec.index
        self._owners: dict[bytes, str] = {}
        self._networks: list[tuple[IPNetwork, str]] = []
        # (address length, mask, network) per pool network: a packet to the internet
        # (most of them) is checked with integer operations, not ipaddress objects.
        self._pool = [(n.max_prefixlen // 8, int(n.netmask), int(n.network_address))
                      for n in spec.config.pool]
        # Every worker's TUN address is the host's own: the kernel answers those.
        self._gateways = {g.network_address.packed for s in pool_slices(
            spec.config.pool, spec.count) for g in s.gateways}
        self.changed = asyncio.Event()

    def session_up(self, name: str, addresses: tuple[IPNetwork, ...],
                   routes: tuple[IPNetwork, ...]) -> None:
        self._channel.send("up", name, addresses, routes)
        self.changed.set()

    def session_down(self, name: str) -> None:
        self._channel.send("down", name)
        self.changed.set()

    def update(self, directory: Directory) -> None:
        owners: dict[bytes, str] = {}
        networks: list[tuple[IPNetwork, str]] = []
        for name, (worker, addresses, routes) in directory.items():
            if worker == self._index:
                continue
            for net in addresses:
                owners[net.network_address.packed] = name
            networks.extend((net, name) for net in routes)
        self._owners, self._networks = owners, networks

    def owner(self, address: bytes) -> str | None:
        """Called for every packet a client sends that no client of ours owns."""
        name = self._owners.get(address)
        if name is not None or address in self._gateways:
            return name
        if self._networks:
            ip = ipaddress.ip_address(address)
            for net, owner in self._networks:
                if ip in net:
                    return owner
        value = int.from_bytes(address, "big")
        size = len(address)
        for length, mask, network in self._pool:
            if size == length and value & mask == network:
                return ""
        return None


async def _run(udp_fd: int, channel_fd: int) -> int:
    from tquic.bond.server import BondServer, WorkerRole
    from tquic.io.udp import UdpSocket
    from tquic.io.workers import tune_collector_for_server, worker_changes

    channel = await Channel.open(socket.socket(fileno=channel_fd))
    first = await channel.receive()
    if first is None or first[0] != "start" or not isinstance(first[1], WorkerSpec):
        return 2
    spec: WorkerSpec = first[1]
    logging.basicConfig(level=logging.DEBUG if spec.verbose else logging.INFO,
                        format=f"%(asctime)s [worker {spec.index}] %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr)
    if not spec.verbose:
        for noisy in ("tquic.io", "tquic.io.paths", "tquic.io.udp", "tquic.h3"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    tune_collector_for_server()
    peers = PeerTable(channel, spec)
    role = WorkerRole(spec.index, spec.tun, pool_slices(spec.config.pool, spec.count)[spec.index],
                      UdpSocket(socket.socket(fileno=udp_fd), pktinfo=True),
                      {**worker_changes(spec.lb, spec.index), **spec.keys}, peers)
    server = BondServer(spec.config, worker=role)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await server.start()
    except Exception as exc:  # TunError, NetlinkError, OSError, BondConfigError...
        await server.close()
        channel.send("failed", str(exc) or type(exc).__name__)
        await channel.drain()
        return 1
    channel.send("ready", role.tun)
    try:
        await _serve(server, channel, peers, stop)
    finally:
        await server.close()
        channel.close()
    return 0


async def _serve(server: Any, channel: Channel, peers: PeerTable, stop: asyncio.Event) -> None:
    async def commands() -> None:
        while True:
            message = await channel.receive()
            if message is None or message[0] == "stop":
                stop.set()
                return
            if message[0] == "peers":
                peers.update(message[1])
            elif message[0] == "evict":
                server.evict(message[1], message[2])

    async def reports() -> None:
        sent = 0  # log lines already sent to the parent
        while True:
            with contextlib.suppress(Exception):  # a status that fails to build: next time
                status = server.status()
                fresh = server.notes - sent
                channel.send("status", status, status.log[-fresh:] if fresh > 0 else ())
                sent = server.notes
            await channel.drain()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(peers.changed.wait(), STATUS_INTERVAL)
                await asyncio.sleep(0.05)  # the session's first log lines with it
            peers.changed.clear()

    tasks = [asyncio.ensure_future(commands()), asyncio.ensure_future(reports())]
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not all(a.isdigit() for a in argv):
        print("tquic.bond.server_worker: started by 'tquic bond server --workers N', "
              "not by hand", file=sys.stderr)
        return 2
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us (a terminal's ^C)
    try:
        return asyncio.run(_run(int(argv[0]), int(argv[1])))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    # Through the module's own name: the parent pickles tquic.bond.server_worker.WorkerSpec,
    # not __main__.WorkerSpec.
    from tquic.bond.server_worker import main as worker_main

    sys.exit(worker_main(sys.argv[1:]))
