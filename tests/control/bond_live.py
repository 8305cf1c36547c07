"""A real bond to watch and steer: ``BondServer`` and ``BondClient`` (tquic.bond) over
loopback, their TUNs replaced by UDP stand-ins (no root), the client's links through
``NetemRelay`` (one emulated link per source address), IP packets pushed through the
tunnel both ways, and each daemon's control plane — all on one event loop in a thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ipaddress
import socket
import struct
import threading
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from tquic.bond.client import BondClient
from tquic.bond.config import ServerConfig, client_config
from tquic.bond.packet import checksum
from tquic.bond.server import BondServer
from tquic.bond.tun import UdpPacketDevice
from tquic.cli.bond_view import BondView
from tquic.control.server import ControlPlane, start_control
from tquic.netem import LinkTable, NetemRelay, parse_profile

T = TypeVar("T")
BOND_TOKEN = "bond-token-0123456789"
# (link spec, netem profile of its source address).  What the applications send (900
# packets/s of 1028 bytes, 7.4 Mbit/s) is more than dsl alone carries, so lte carries
# the rest.
LINKS = (("127.0.0.2,name=dsl", "rate=5mbit,delay=8ms"),
         ("127.0.0.3,name=lte,cap=10GB/month", "rate=4mbit,delay=25ms"))
INTERNET = "192.0.2.80"


def ipv4_udp(src: str, dst: str, payload: bytes) -> bytes:
    """An IPv4 packet carrying a UDP datagram (UDP checksum 0: allowed over IPv4)."""
    udp = struct.pack("!HHHH", 4000, 5000, 8 + len(payload), 0) + payload
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                         socket.inet_aton(src), socket.inet_aton(dst))
    return header[:10] + struct.pack("!H", checksum(header)) + header[12:] + udp


class _Tap:
    """The far side of a UdpPacketDevice: what an application (or the internet) sends."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.address = self.sock.getsockname()
        self.received = 0

    def drain(self) -> None:
        try:
            while True:
                self.sock.recv(65536)
                self.received += 1
        except OSError:
            pass


class BondLab:
    """Start with ``BondLab(certs, control=..., token=...)``; ``close()`` stops everything.
    ``up_pps``/``down_pps``: packets per second pushed into the tunnel each way."""

    def __init__(self, certs: Path, *, control: str, token: str | None,
                 links: Sequence[tuple[str, str]] = LINKS, up_pps: int = 900,
                 down_pps: int = 600, size: int = 1000, interval: float = 0.5) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Future[Any]] = []
        self.pps = (up_pps, down_pps)
        self.size = size
        try:
            self.call(lambda: self._start(certs, control, token, links, interval))
        except BaseException:
            self.close()
            raise

    def call(self, make: Callable[[], Awaitable[T]], timeout: float = 30) -> T:
        async def run() -> T:
            return await make()
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(run(), self.loop)
        return future.result(timeout)

    async def _start(self, certs: Path, control: str, token: str | None,
                     links: Sequence[tuple[str, str]], interval: float) -> None:
        self.internet = _Tap()
        self.apps = _Tap()
        self.server_device = UdpPacketDevice("srv", peer=self.internet.address)
        self.server = BondServer(ServerConfig(
            listen=("127.0.0.1", 0), cert=str(certs / "cert.pem"), key=str(certs / "key.pem"),
            pool=(ipaddress.ip_network("10.99.0.0/24"),), token=BOND_TOKEN, userspace=True),
            device=self.server_device)
        await self.server.start()
        table = LinkTable()
        for spec, profile in links:
            table = table.with_rule((spec.split(",")[0], 0), parse_profile(profile))
        self.relay = NetemRelay(("127.0.0.1", 0), ("127.0.0.1", self.server.port), table,
                                out=lambda line: None)
        relay = self.relay.start()
        self.client_device = UdpPacketDevice("cli", peer=self.apps.address)
        self.client = BondClient(client_config({
            "server": f"127.0.0.1:{relay[1]}", "insecure": True, "token": BOND_TOKEN,
            "link": [spec for spec, _ in links], "userspace": True}), device=self.client_device)
        self._tasks.append(asyncio.ensure_future(self.client.run(self._stop)))
        await asyncio.wait_for(self.client.connected.wait(), 15)
        view = BondView(self.client, lambda: self.client.config)
        self.control: ControlPlane = await start_control(view, view, control, token=token,
                                                         interval=interval)
        self.server_control: ControlPlane = await start_control(
            BondView(self.server, lambda: self.server.config), None,
            str(certs / f"bond-server-{id(self)}.sock"), interval=interval)
        self._tasks.append(asyncio.ensure_future(self._traffic()))

    async def _traffic(self) -> None:
        """Paced packets: the applications upload, the internet answers."""
        status = self.client.status()
        assert status.tunnel is not None
        address = status.tunnel.addresses[0].split("/")[0]
        payload = bytes(self.size)
        up = ipv4_udp(address, INTERNET, payload)
        down = ipv4_udp(INTERNET, address, payload)
        tick = 0.01
        sent = [0.0, 0.0]
        while True:
            await asyncio.sleep(tick)
            for index, (packet, device, tap) in enumerate((
                    (up, self.client_device, self.apps),
                    (down, self.server_device, self.internet))):
                sent[index] += self.pps[index] * tick
                while sent[index] >= 1:
                    sent[index] -= 1
                    with contextlib.suppress(BlockingIOError):
                        tap.sock.sendto(packet, device.local_address)
            self.apps.drain()
            self.internet.drain()

    @property
    def address(self) -> str:
        return self.control.address

    def close(self) -> None:
        async def stop() -> None:
            for task in self._tasks[1:]:
                task.cancel()
            for plane in ("control", "server_control"):
                if hasattr(self, plane):
                    await getattr(self, plane).close()
            self._stop.set()
            if self._tasks:
                await asyncio.wait(self._tasks[:1], timeout=5)
            if hasattr(self, "relay"):
                self.relay.close()
            if hasattr(self, "server"):
                await self.server.close()
            for tap in ("internet", "apps"):
                if hasattr(self, tap):
                    getattr(self, tap).sock.close()

        if self._thread.is_alive():
            try:
                self.call(stop)
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self._thread.join(5)
        self.loop.close()
