"""Hundreds of ``tquic bond`` clients against one server process (no root: loopback).

The server runs in its own process with a UDP stand-in for its TUN whose far side
reflects every IP packet back to its sender (source and destination swapped), so
each client's packets make the whole round trip: client device → tunnel → server
→ "internet" → server → tunnel → client device.  The clients (``--clients``,
default 200, each with its own token and its own UDP socket, i.e. its own QUIC
connection) run in this process and start at once.  One table:

  connect       how long until every tunnel was up; addresses all distinct
  round trip    every client sends ``--packets`` UDP packets through its tunnel;
                how many came back, per client and in all
  server        resident memory per connected client (RSS growth ÷ clients), CPU
                seconds per handshake+tunnel set-up, cores spent holding the idle
                tunnels (3 s with no traffic), CPU during the round trips

    python benchmarks/bond_clients.py                  # ~1 minute on 2 busy cores
    python benchmarks/bond_clients.py --clients 300 --packets 20 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import multiprocessing
import os
import socket
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tquic.bond.auth import hash_token
from tquic.bond.client import BondClient
from tquic.bond.config import ClientEntry, ServerConfig, client_config
from tquic.bond.packet import checksum
from tquic.bond.server import BondServer
from tquic.bond.tun import UdpPacketDevice

POOL = "10.96.0.0/22"  # 1021 client addresses
INTERNET = "192.0.2.1"


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _udp_packet(src: str, dst: str, payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", 4000, 5000, 8 + len(payload), 0) + payload
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                         socket.inet_aton(src), socket.inet_aton(dst))
    return header[:10] + struct.pack("!H", checksum(header)) + header[12:] + udp


def _reflect(packet: bytes) -> bytes:
    """Swap an IPv4 packet's addresses (the header checksum is unchanged by a swap)."""
    return packet[:12] + packet[16:20] + packet[12:16] + packet[20:]


# -- the server process ------------------------------------------------------------------


def _serve(n: int, workdir: str, conn: Any) -> None:
    from tquic.crypto.tls.certs import generate_self_signed

    cert, key = generate_self_signed(("localhost", "127.0.0.1"), key_type="ec")
    Path(workdir, "cert.pem").write_bytes(cert)
    Path(workdir, "key.pem").write_bytes(key)

    async def main() -> None:
        internet = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        internet.bind(("127.0.0.1", 0))
        internet.setblocking(False)
        device = UdpPacketDevice("srv", peer=internet.getsockname())
        clients = tuple(ClientEntry(f"site{i}", hash_token(f"token-{i}")) for i in range(n))
        config = ServerConfig(listen=("127.0.0.1", 0), cert=str(Path(workdir, "cert.pem")),
                              key=str(Path(workdir, "key.pem")),
                              pool=(ipaddress.ip_network(POOL),), clients=clients,
                              max_clients=n + 8, userspace=True, lane=None)
        bond = BondServer(config, device=device)
        await bond.start()
        loop = asyncio.get_running_loop()

        def readable() -> None:
            with contextlib.suppress(BlockingIOError):
                while True:
                    packet = internet.recv(65536)
                    internet.sendto(_reflect(packet), device.local_address)

        loop.add_reader(internet.fileno(), readable)
        conn.send(bond.port)
        while not conn.poll():
            await asyncio.sleep(0.2)
        conn.send(len(bond.status().clients))
        await bond.close()

    asyncio.run(main())


# -- the clients -------------------------------------------------------------------------


async def _run(args: argparse.Namespace, server_pid: int, port: int) -> dict[str, Any]:
    n: int = args.clients
    apps = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    apps.bind(("127.0.0.1", 0))
    apps.setblocking(False)
    apps.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    stop = asyncio.Event()
    bonds: list[BondClient] = []
    devices: list[UdpPacketDevice] = []
    rss0, cpu0, t0 = _rss_kb(server_pid), _cpu_s(server_pid), time.monotonic()
    tasks = []
    for i in range(n):
        device = UdpPacketDevice(f"c{i}", peer=apps.getsockname())
        config = client_config({"server": f"127.0.0.1:{port}", "insecure": True,
                                "link": ["127.0.0.1"], "userspace": True,
                                "token": f"token-{i}"})
        bond = BondClient(config, device=device)
        bonds.append(bond)
        devices.append(device)
        tasks.append(asyncio.ensure_future(bond.run(stop)))
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline and not all(b.connected.is_set() for b in bonds):
        await asyncio.sleep(0.1)
    connected = sum(b.connected.is_set() for b in bonds)
    t_connect = time.monotonic() - t0
    await asyncio.sleep(1.0)  # let the server settle (its adapt loop, ACKs)
    rss1, cpu1 = _rss_kb(server_pid), _cpu_s(server_pid)
    idle_t0 = time.monotonic()
    await asyncio.sleep(3.0)  # every tunnel up and quiet: what holding them costs
    idle_cpu = (_cpu_s(server_pid) - cpu1) / (time.monotonic() - idle_t0)
    cpu1 = _cpu_s(server_pid)
    addresses = []
    for bond in bonds:
        tunnel = bond.status().tunnel
        addresses.append(tunnel.addresses[0].split("/")[0] if tunnel is not None else None)
    by_port = {d.local_address[1]: i for i, d in enumerate(devices)}
    got = [0] * n
    loop = asyncio.get_running_loop()
    t1 = time.monotonic()
    for k in range(args.packets):
        for i, address in enumerate(addresses):
            if address is not None:
                apps.sendto(_udp_packet(address, INTERNET, b"%d.%d" % (i, k) + bytes(200)),
                            devices[i].local_address)
        await asyncio.sleep(0.01)
    end = time.monotonic() + 5.0
    expected = args.packets * sum(a is not None for a in addresses)
    while time.monotonic() < end and sum(got) < expected:
        try:
            data, peer = await asyncio.wait_for(loop.sock_recvfrom(apps, 65536), 0.5)
        except TimeoutError:
            continue
        who = by_port.get(peer[1])
        if who is not None and data[12:16] == socket.inet_aton(INTERNET):
            got[who] += 1
    cpu2 = _cpu_s(server_pid)
    stop.set()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 20)
    apps.close()
    return {
        "clients": n, "connected": connected, "connect_s": round(t_connect, 2),
        "distinct_addresses": len({a for a in addresses if a is not None}),
        "packets_per_client": args.packets, "echoed": sum(got), "expected": expected,
        "clients_all_echoed": sum(g == args.packets for g in got),
        "server_rss_mb": round(rss1 / 1024, 1),
        "server_kb_per_client": round((rss1 - rss0) / max(connected, 1), 1),
        "server_cpu_ms_per_setup": round(1000 * (cpu1 - cpu0) / max(connected, 1), 1),
        "server_cpu_s_round_trips": round(cpu2 - cpu1, 2),
        "server_idle_cores": round(idle_cpu, 3),
        "round_trip_s": round(time.monotonic() - t1, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200, help="bond clients (default 200)")
    parser.add_argument("--packets", type=int, default=10,
                        help="UDP packets each client sends through its tunnel (default 10)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds for all tunnels to come up (default 120)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    with tempfile.TemporaryDirectory(prefix="bondclients") as tmp:
        server = ctx.Process(target=_serve, args=(args.clients, tmp, child), daemon=True)
        server.start()
        if not parent.poll(30):
            print("the server did not start", file=sys.stderr)
            return 1
        port = parent.recv()
        assert server.pid is not None
        out = asyncio.run(_run(args, server.pid, port))
        parent.send("stop")
        out["server_saw_clients"] = parent.recv() if parent.poll(20) else None
        server.join(20)
    print(f"{out['clients']} bond clients, one server process (loopback, userspace devices)")
    rows = [
        ("connected", f"{out['connected']}/{out['clients']} in {out['connect_s']} s, "
                      f"{out['distinct_addresses']} distinct addresses"),
        ("round trip", f"{out['echoed']}/{out['expected']} packets back; "
                       f"{out['clients_all_echoed']} clients got all {out['packets_per_client']}"),
        ("server memory", f"{out['server_rss_mb']} MB RSS, {out['server_kb_per_client']} kB "
                          "per client"),
        ("server CPU", f"{out['server_cpu_ms_per_setup']} ms per client set-up, "
                       f"{out['server_idle_cores']} cores holding idle tunnels, "
                       f"{out['server_cpu_s_round_trips']} s for the round trips"),
    ]
    for name, value in rows:
        print(f"  {name:<14} {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0 if out["connected"] == out["clients"] else 1


if __name__ == "__main__":
    sys.exit(main())
