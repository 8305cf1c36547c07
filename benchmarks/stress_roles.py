"""The processes of benchmarks/stress.py: a server (tquic, with N workers, or aioquic), an
Initial / garbage flooder, and a crowd of real clients.  Each prints JSON lines.

    python benchmarks/stress_roles.py server --port P --cert C --key K [--workers N]
    python benchmarks/stress_roles.py aioquic-server --port P --cert C --key K
    python benchmarks/stress_roles.py flood --port P --seconds S --kind initial|garbage
    python benchmarks/stress_roles.py clients --port P --count N [--hold] [--bulk BYTES]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hashlib
import json
import os
import random
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

IDLE_TIMEOUT = 600.0  # the idle-connection row holds connections for minutes


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


# -- servers ---------------------------------------------------------------------------


def run_server(args: argparse.Namespace) -> int:
    from tquic.cli.hq import HqServer
    from tquic.core.config import QuicConfiguration
    from tquic.io.api import serve
    from tquic.io.udp import UdpSocket
    from tquic.io.workers import reuseport_group, run_workers
    from tquic.wire.quic_lb import QuicLbConfig, QuicLbEncoder

    base = QuicConfiguration(
        is_client=False, alpn_protocols=("hq-interop",),
        certificate=Path(args.cert).read_bytes(), private_key=Path(args.key).read_bytes(),
        idle_timeout=IDLE_TIMEOUT)
    lb = QuicLbConfig(b"\x01", 6)
    stats_dir = Path(args.stats_dir)

    async def serve_one(index: int, sock: UdpSocket | None) -> None:
        config = base
        if sock is not None:
            config = dataclasses.replace(base, connection_id_length=lb.cid_length,
                                         connection_id_generator=QuicLbEncoder(lb, index))
        server = await serve("127.0.0.1", args.port, config, HqServer(None), sock=sock)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, server.close)
        out = stats_dir / f"worker-{index}.json"

        async def report() -> None:
            while True:
                endpoint = server.endpoint
                data = dataclasses.asdict(endpoint.stats)
                data["connections"] = len(endpoint.connections)
                data["handshakes_in_progress"] = endpoint.handshakes_in_progress
                tmp = out.with_suffix(".tmp")
                tmp.write_text(json.dumps(data))
                tmp.replace(out)
                await asyncio.sleep(0.25)

        task = asyncio.ensure_future(report())
        emit(event="listening", port=server.local_address[1], worker=index)
        await server.serve_forever()
        task.cancel()

    if args.workers == 1:
        asyncio.run(serve_one(0, None))
        return 0
    sockets, steered = reuseport_group("127.0.0.1", args.port, args.workers, lb.cid_length)
    emit(event="group", steered=steered)
    return run_workers(sockets, lambda index, sock: asyncio.run(serve_one(index, sock)) or 0)


def run_aioquic_server(args: argparse.Namespace) -> int:
    from aioquic.asyncio.protocol import QuicConnectionProtocol
    from aioquic.asyncio.server import serve
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.events import QuicEvent, StreamDataReceived

    class Answer(QuicConnectionProtocol):
        def quic_event_received(self, event: QuicEvent) -> None:
            if isinstance(event, StreamDataReceived) and event.end_stream:
                self._quic.send_stream_data(event.stream_id, b"x", end_stream=True)
                self.transmit()

    async def main() -> None:
        config = QuicConfiguration(alpn_protocols=["hq-interop"], is_client=False,
                                   idle_timeout=IDLE_TIMEOUT)
        config.load_cert_chain(args.cert, args.key)
        server = await serve("127.0.0.1", args.port, configuration=config,
                             create_protocol=Answer)
        emit(event="listening", port=args.port, worker=0)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        server.close()

    asyncio.run(main())
    return 0


# -- flooders --------------------------------------------------------------------------


def _real_initials(count: int, port: int) -> list[bytes]:
    """First flights of real clients (decryptable Initials with a ClientHello)."""
    from tquic.core.config import QuicConfiguration
    from tquic.core.connection import QuicConnection
    from tquic.core.network_path import NetworkPath

    config = QuicConfiguration(is_client=True, alpn_protocols=("hq-interop",),
                               verify_peer=False)
    out: list[bytes] = []
    for n in range(count):
        engine = QuicConnection(config, is_client=True)
        engine.connect(NetworkPath(("127.0.0.1", 40000 + n), ("127.0.0.1", port)), 0.0)
        out.extend(d for d, _ in engine.datagrams_to_send(0.0))
    return out


def _garbage(pool: list[bytes], rng: random.Random) -> bytes:
    kind = rng.randrange(4)
    if kind == 0:  # random bytes, random size
        return os.urandom(rng.randrange(1, 1500))
    if kind == 1:  # a short header with a random CID
        return bytes((0x40 | rng.randrange(64),)) + os.urandom(rng.randrange(20, 1400))
    data = bytearray(rng.choice(pool))
    if kind == 2:  # a real Initial with a few bytes flipped
        for _ in range(rng.randrange(1, 8)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        return bytes(data)
    return bytes(data[:rng.randrange(1, len(data))])  # truncated


def run_flood(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    initials = _real_initials(args.pool, args.port)
    packets = (initials if args.kind == "initial"
               else [_garbage(initials, rng) for _ in range(4096)])
    sockets = []
    for _ in range(args.sources):
        # Many source addresses in 127.0.0.0/8 (all local on Linux): the answers go to
        # sockets nobody reads, as a spoofed flood's would.
        host = f"127.{rng.randrange(1, 255)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            sock.bind((host, 0))
        except OSError:
            sock.close()
            continue
        sockets.append(sock)
    target = ("127.0.0.1", args.port)
    emit(event="flooding", sources=len(sockets), packets=len(packets))
    sent = errors = 0
    start = time.perf_counter()
    deadline = start + args.seconds
    n_packets, n_socks = len(packets), len(sockets)
    i = 0
    while True:
        for _ in range(256):
            try:
                sockets[i % n_socks].sendto(packets[i % n_packets], target)
                sent += 1
            except OSError:
                errors += 1
            i += 1
        if time.perf_counter() >= deadline:
            break
    seconds = time.perf_counter() - start
    emit(event="done", sent=sent, errors=errors, seconds=round(seconds, 3),
         rate=round(sent / seconds))
    return 0


# -- clients ---------------------------------------------------------------------------


async def _clients(args: argparse.Namespace) -> None:
    from tquic.cli.hq import generated_body
    from tquic.core.config import QuicConfiguration
    from tquic.core.network_path import NetworkPath
    from tquic.io.endpoint import QuicEndpoint, engine_class
    from tquic.io.protocol import QuicConnectionProtocol
    from tquic.io.udp import UdpSocket

    loop = asyncio.get_running_loop()
    config = QuicConfiguration(is_client=True, alpn_protocols=("hq-interop",),
                               verify_peer=False, idle_timeout=IDLE_TIMEOUT)
    remote = ("127.0.0.1", args.port)
    # Several sockets: the 4-tuple hash spreads new clients over the server's workers.
    endpoints = []
    for _ in range(args.sockets):
        sock = UdpSocket.bind("127.0.0.1", 0)
        endpoints.append((QuicEndpoint(config, [sock], is_server=False, shared=True), sock))
    held: list[QuicConnectionProtocol] = []
    times: list[float] = []
    failures: dict[str, int] = {}
    semaphore = asyncio.Semaphore(args.concurrency)

    async def one(n: int) -> None:
        endpoint, sock = endpoints[n % len(endpoints)]
        async with semaphore:
            started = loop.time()
            engine = engine_class()(config, is_client=True)
            proto = endpoint.create_connection(engine, NetworkPath(sock.local_address, remote),
                                               None)
            engine.connect(proto.network_path, started)
            proto.connection_made()
            try:
                await asyncio.wait_for(proto.wait_connected(), args.timeout)
            except Exception as exc:  # counted by kind: the table reports the success rate
                failures[type(exc).__name__] = failures.get(type(exc).__name__, 0) + 1
                proto.close()
                return
            times.append(loop.time() - started)
            if args.hold:
                held.append(proto)
            else:
                proto.close()

    started = loop.time()
    await asyncio.gather(*(one(n) for n in range(args.count)))
    elapsed = loop.time() - started
    times.sort()

    def pct(q: float) -> float | None:
        return round(times[min(len(times) - 1, int(q * len(times)))], 4) if times else None

    dropped = sum(endpoint.stats.datagrams_dropped for endpoint, _ in endpoints)
    emit(event="connected", ok=len(times), failed=sum(failures.values()), failures=failures,
         client_dropped=dropped,
         seconds=round(elapsed, 3), rate=round(len(times) / elapsed, 1) if elapsed else 0,
         p50=pct(0.5), p99=pct(0.99))
    if args.bulk and held:
        body_sha = hashlib.sha256(generated_body(args.bulk)).hexdigest()
        reader, writer = await held[0].open_stream()
        writer.write(f"GET /{args.bulk}\r\n".encode())
        writer.write_eof()
        t0 = loop.time()
        data = await asyncio.wait_for(reader.read(), 120)
        seconds = loop.time() - t0
        emit(event="bulk", bytes=len(data), intact=hashlib.sha256(data).hexdigest() == body_sha,
             seconds=round(seconds, 3), mbps=round(len(data) * 8 / seconds / 1e6, 1))
    if args.hold and not args.bulk:
        await loop.run_in_executor(None, sys.stdin.readline)  # "ping" from the orchestrator
        answered = 0
        ping_semaphore = asyncio.Semaphore(200)

        async def ping(proto: QuicConnectionProtocol) -> bool:
            async with ping_semaphore:
                try:
                    reader, writer = await proto.open_stream()
                    writer.write(b"GET /1\r\n")
                    writer.write_eof()
                    return len(await asyncio.wait_for(reader.read(), 20)) == 1
                except Exception:
                    return False

        t0 = loop.time()
        results = await asyncio.gather(*(ping(p) for p in held))
        answered = sum(results)
        emit(event="pinged", answered=answered, held=len(held),
             seconds=round(loop.time() - t0, 3))
    for endpoint, _ in endpoints:
        endpoint.close()


def run_clients(args: argparse.Namespace) -> int:
    asyncio.run(_clients(args))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="role", required=True)
    for name in ("server", "aioquic-server"):
        server = sub.add_parser(name)
        server.add_argument("--port", type=int, required=True)
        server.add_argument("--cert", required=True)
        server.add_argument("--key", required=True)
        server.add_argument("--workers", type=int, default=1)
        server.add_argument("--stats-dir", default=".")
    flood = sub.add_parser("flood")
    flood.add_argument("--port", type=int, required=True)
    flood.add_argument("--seconds", type=float, required=True)
    flood.add_argument("--kind", choices=("initial", "garbage"), default="initial")
    flood.add_argument("--sources", type=int, default=512)
    flood.add_argument("--pool", type=int, default=200)
    flood.add_argument("--seed", type=int, default=1)
    clients = sub.add_parser("clients")
    clients.add_argument("--port", type=int, required=True)
    clients.add_argument("--count", type=int, required=True)
    clients.add_argument("--concurrency", type=int, default=50)
    clients.add_argument("--sockets", type=int, default=16)
    clients.add_argument("--timeout", type=float, default=20.0)
    clients.add_argument("--hold", action="store_true")
    clients.add_argument("--bulk", type=int, default=0)
    args = parser.parse_args()
    runner = {"server": run_server, "aioquic-server": run_aioquic_server, "flood": run_flood,
              "clients": run_clients}[args.role]
    try:
        return runner(args)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
