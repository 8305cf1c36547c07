"""In-process bond server and client over loopback, with UDP stand-ins for the TUNs.

The client's "TUN" and the server's "TUN" are :class:`UdpPacketDevice` objects:
a test writes an IP packet to one (as an application or the internet would)
and reads what comes out of the other.  No root, no TUN, real QUIC on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from tquic.bond.auth import hash_token
from tquic.bond.client import BondClient
from tquic.bond.config import ClientConfig, ClientEntry, ServerConfig, client_config
from tquic.bond.packet import checksum
from tquic.bond.server import BondServer
from tquic.bond.tcp_lane.policy import TargetPolicy
from tquic.bond.tun import UdpPacketDevice

TOKEN = "test-token-0123456789"
LANE_DEFAULT = TargetPolicy()  # the server's default lane policy (no private targets)


def ipv4_udp(src: str, dst: str, payload: bytes, ttl: int = 64) -> bytes:
    """An IPv4 packet carrying a UDP datagram (checksum 0: allowed over IPv4)."""
    udp = struct.pack("!HHHH", 4000, 5000, 8 + len(payload), 0) + payload
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, ttl, 17, 0,
                         socket.inet_aton(src), socket.inet_aton(dst))
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + udp


def write_certs(directory: Path) -> Path:
    """A self-signed EC certificate for localhost/127.0.0.1 as ``cert.pem``/``key.pem``
    in ``directory`` (what running_server loads); returns ``directory``."""
    from tquic.crypto.tls.certs import generate_self_signed

    cert, key = generate_self_signed(("localhost", "127.0.0.1"), key_type="ec")
    (directory / "cert.pem").write_bytes(cert)
    (directory / "key.pem").write_bytes(key)
    return directory


class Tap:
    """The far side of a UdpPacketDevice: send packets into it, read what it writes."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.address = self.sock.getsockname()

    def device(self, name: str) -> UdpPacketDevice:
        return UdpPacketDevice(name, peer=self.address)

    def send(self, device: UdpPacketDevice, packet: bytes) -> None:
        self.sock.sendto(packet, device.local_address)

    async def receive(self, timeout: float = 5.0) -> bytes:
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(loop.sock_recv(self.sock, 65536), timeout)

    async def drain(self, duration: float) -> list[bytes]:
        out: list[bytes] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + duration
        while True:
            left = deadline - loop.time()
            if left <= 0:
                return out
            try:
                out.append(await self.receive(left))
            except TimeoutError:
                return out

    def close(self) -> None:
        self.sock.close()


@dataclass
class Server:
    bond: BondServer
    device: UdpPacketDevice
    internet: Tap


@contextlib.asynccontextmanager
async def running_server(certs: Path, *, clients: tuple[ClientEntry, ...] = (),
                         token: str | None = TOKEN, pool: str = "10.99.0.0/24",
                         isolate: bool = True, per_minute: int = 10,
                         client_ca: str | None = None,
                         lane: TargetPolicy | None = LANE_DEFAULT) -> AsyncIterator[Server]:
    internet = Tap()
    device = internet.device("srv")
    config = ServerConfig(listen=("127.0.0.1", 0), cert=str(certs / "cert.pem"),
                          key=str(certs / "key.pem"), pool=(ipaddress.ip_network(pool),),
                          token=token, clients=clients, isolate=isolate, userspace=True,
                          auth_failures_per_minute=per_minute, client_ca=client_ca,
                          lane=lane)
    bond = BondServer(config, device=device)
    await bond.start()
    try:
        yield Server(bond, device, internet)
    finally:
        await bond.close()
        internet.close()


@dataclass
class Client:
    bond: BondClient
    device: UdpPacketDevice
    apps: Tap
    stop: asyncio.Event
    task: asyncio.Task[int]


def client_cfg(port: int, links: list[str], token: str | None = TOKEN,
               **extra: object) -> ClientConfig:
    values: dict[str, object] = {"server": f"127.0.0.1:{port}", "insecure": True,
                                 "link": links, "userspace": True, **extra}
    if token is not None:
        values["token"] = token
    return client_config(values)


@contextlib.asynccontextmanager
async def running_client(port: int, links: list[str] | None = None, *,
                         token: str | None = TOKEN, wait: bool = True,
                         **extra: object) -> AsyncIterator[Client]:
    """``extra``: more client config keys (e.g. cert and key)."""
    apps = Tap()
    device = apps.device("cli")
    bond = BondClient(client_cfg(port, links or ["127.0.0.1"], token, **extra), device=device)
    stop = asyncio.Event()
    task = asyncio.ensure_future(bond.run(stop))
    try:
        if wait:
            await asyncio.wait({task, asyncio.ensure_future(bond.connected.wait())},
                                         timeout=10, return_when=asyncio.FIRST_COMPLETED)
            assert bond.connected.is_set(), f"client did not connect: {bond.status().log}"
        yield Client(bond, device, apps, stop, task)
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)
        apps.close()


__all__ = ["TOKEN", "Client", "Server", "Tap", "hash_token", "ipv4_udp", "running_client",
           "running_server", "write_certs"]
