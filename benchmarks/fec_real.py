"""The FEC benchmark in real time: each link a ``tquic netem`` link on loopback, the flow's
FEC payloads carried as QUIC DATAGRAMs (RFC 9221) over one tquic connection per link.

The same driver as the simulated run (fec_flow.py) on a RealtimeClock.  One
``tquic netem`` process relays every link (link i is the client address
127.0.0.(2+i)), applying the same profile text as the simulator in both
directions.  Several links: one multipath connection with a path from each
address, the ``bond`` scheduler, and every datagram sent with the path the
driver (and the FEC's hint for repairs) prefers, ``send_datagram(data,
path_id)``, or with none (``adaptive-nohint``).  Added latency is measured against the
profile's 20 ms, so it includes the QUIC stack's, the relay's and the loaded
machine's own time (``other load`` is printed with the table).
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tquic
from fec_flow import Flow, FlowDriver, Result
from tquic.core.config import QuicConfiguration
from tquic.io.protocol import QuicConnectionProtocol
from tquic.netem.clock import RealtimeClock

HELLO = b"\xff"
# Loss-tolerant, as the bond would run it: a loss-based controller at 5 % random loss
# throttles the DATAGRAM frames (congestion controlled, RFC 9221 §5.4) below 5 Mbit/s.
CC = "bbr3"
# Seconds of the flow left out of the figures: the controller's startup (its pacing
# rate still growing) would otherwise queue the first packets in the sender.
WARMUP = 2.0


LOSS_BLIND = "bbr3-lossblind"
"""``--cc bbr3-lossblind``: bbr3 whose short-term bounds (bw_lo / inflight_lo) ignore
loss and follow ECN only.  Not a controller to deploy (it cannot tell congestion from
random loss any better): an experiment that takes the controller's reaction to the
link's random loss out of the figures.  bbr3 cuts inflight_lo by 0.7 at the end of
every round with a loss outside probing (tquic/cc/bbr3.py): at 5 % random loss its
window falls to ~9 kB (1.7 Mbit/s at 42 ms) between refills, and a 5 Mbit/s flow
queues in the sender for 100-200 ms at a time, FEC or not."""


def _register_loss_blind() -> None:
    from tquic.cc.bbr3 import Bbr3
    from tquic.cc.bbr3_bounds import Bbr3Bounds
    from tquic.cc.registry import available_controllers, register_controller

    if LOSS_BLIND in available_controllers():
        return

    class LossBlindBounds(Bbr3Bounds):
        def _adapt_lower_bounds_from_congestion(self, max_bw: float, cwnd: float) -> None:
            self.loss_in_round = False  # the round's loss: not a congestion signal here
            super()._adapt_lower_bounds_from_congestion(max_bw, cwnd)

    class LossBlindBbr3(Bbr3):
        def __init__(self, max_datagram_size: int) -> None:
            super().__init__(max_datagram_size)
            self.bounds = LossBlindBounds(self.params, max_datagram_size, self.min_pipe_cwnd)

    register_controller(LOSS_BLIND, LossBlindBbr3)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _run(links: tuple[str, ...], mode: str, flow: Flow, duration: float,
               seed: int, tmp: Path, cc: str) -> Result:
    from tquic.crypto.tls.certs import generate_self_signed

    cert, key = generate_self_signed()
    (tmp / "cert.pem").write_bytes(cert)
    if cc == LOSS_BLIND:
        _register_loss_blind()
    n = len(links)
    common = {"alpn_protocols": ("fec-bench",), "max_datagram_frame_size": 65535,
              "idle_timeout": 30.0, "congestion_control": cc, "datagram_queue_size": 1024}
    if n > 1:
        from tquic.bond.scheduler import NAME, register

        register()
        common.update(max_path_id=4, scheduler=NAME)
    server_cfg = QuicConfiguration(is_client=False, certificate=cert, private_key=key,
                                   **common)  # type: ignore[arg-type]
    client_cfg = QuicConfiguration(is_client=True, cafile=str(tmp / "cert.pem"),
                                   server_name="localhost", **common)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    server_conns: dict[int, QuicConnectionProtocol] = {}
    ready = asyncio.Event()
    holder: list[FlowDriver] = []
    tasks: list[asyncio.Task[None]] = []

    async def server_side(conn: QuicConnectionProtocol) -> None:
        first = await conn.receive_datagram()
        if n > 1:  # one multipath connection carries every link
            server_conns.update(dict.fromkeys(range(n), conn))
        server_conns[first[1]] = conn
        if len(server_conns) == n:
            ready.set()
        while True:
            data = await conn.receive_datagram()
            if holder and data[:1] != HELLO:
                holder[0].on_up(data)

    def on_connection(conn: QuicConnectionProtocol) -> None:
        tasks.append(loop.create_task(server_side(conn)))

    server = await tquic.serve("127.0.0.1", 0, server_cfg, connection_handler=on_connection)
    relay_port = _free_port()
    argv = [sys.executable, "-m", "tquic", "netem", "--listen", f"127.0.0.1:{relay_port}",
            "--target", f"127.0.0.1:{server.local_address[1]}", "--seed", str(seed),
            "--stats-interval", "0"]
    for i, text in enumerate(links):
        argv += ["--link", f"127.0.0.{2 + i}={text}"]
    relay = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    clients: list[QuicConnectionProtocol] = []
    try:
        await asyncio.sleep(1.0)  # the relay binds
        if relay.poll() is not None:
            raise RuntimeError(f"tquic netem exited: {relay.stderr.read().decode()[-500:]}"
                               if relay.stderr else "tquic netem exited")
        path_ids: list[int] = []
        if n > 1:
            conn, path_ids = await _connect_multipath(relay_port, client_cfg, n)
            clients.append(conn)
            for _ in range(5):  # the hello may be lost on a lossy link: send a few
                conn.send_datagram(HELLO + bytes([0]))
        for i in range(n if n == 1 else 0):
            conn = await asyncio.wait_for(
                tquic.connect("127.0.0.1", relay_port, client_cfg, local_host=f"127.0.0.{2 + i}"),
                10.0)
            clients.append(conn)
            for _ in range(5):  # the hello may be lost on a lossy link: send a few
                conn.send_datagram(HELLO + bytes([i]))
        await asyncio.wait_for(ready.wait(), 10.0)

        clock = RealtimeClock(loop, loop.time())
        turn = [0]
        queued: list[tuple[float, int]] = []

        def up(i: int | None, data: bytes) -> None:
            # datagrams waiting in the sender's queue (its congestion window full): the
            # controller's share of the delay, not the FEC's
            queued.append((clock.now, sum(len(c.quic._datagrams) for c in clients)))
            if path_ids:  # the bond: one connection, the link as a path preference
                clients[0].send_datagram(data, None if i is None else path_ids[i])
                return
            if i is None:
                i = turn[0] % n
                turn[0] += 1
            clients[i].send_datagram(data)

        def down(i: int, data: bytes) -> None:
            server_conns[i].send_datagram(data)

        driver = FlowDriver(clock, mode, flow, n, up, down, 0.02)
        holder.append(driver)

        async def client_side(conn: QuicConnectionProtocol) -> None:
            while True:
                driver.on_down(await conn.receive_datagram())

        tasks.extend(loop.create_task(client_side(c)) for c in clients)
        start = clock.now
        last = driver.start(duration + WARMUP)
        await asyncio.sleep(last - clock.now + 1.0)
        clock.closed = True
        return dataclasses.replace(driver.result(after=start + WARMUP),
                                   queued=[n for t, n in queued if t >= start + WARMUP])
    finally:
        for t in tasks:
            t.cancel()
        for c in clients:
            c.close()
        server.close()
        relay.terminate()
        try:
            relay.wait(5.0)
        except subprocess.TimeoutExpired:
            relay.kill()


async def _connect_multipath(port: int, config: QuicConfiguration, n: int
                             ) -> tuple[QuicConnectionProtocol, list[int]]:
    """One connection from 127.0.0.2 with a path from each further 127.0.0.(2+i): the
    path IDs, link by link."""
    from tquic.io.multipath_client import (
        LocalPath,
        bind_path_sockets,
        connect_multipath,
        open_extra_paths,
    )

    sockets = bind_path_sockets([LocalPath(f"127.0.0.{2 + i}") for i in range(n)])
    conn = await connect_multipath("127.0.0.1", port, config, sockets, timeout=10.0)
    extra, note = await open_extra_paths(conn, sockets[1:], timeout=10.0)
    if note is not None:
        raise RuntimeError(f"multipath: {note}")
    path_ids = [0, *extra]
    deadline = asyncio.get_running_loop().time() + 10.0
    while not all(st.state == "validated" for st in conn.quic.path_stats()):
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError("multipath: the extra paths were not validated within 10 s")
        await asyncio.sleep(0.05)
    return conn, path_ids


def other_load() -> float:
    """Cores kept busy by other processes over the last second (from /proc/loadavg-free
    /proc/stat deltas), so a reader can judge the real-time figures."""
    def busy() -> tuple[float, float]:
        with open("/proc/stat") as f:
            vals = [float(x) for x in f.readline().split()[1:]]
        return sum(vals) - vals[3] - vals[4], sum(vals)
    b0, t0 = busy()
    time.sleep(1.0)
    b1, t1 = busy()
    import os

    return (b1 - b0) / (t1 - t0) * (os.cpu_count() or 1)


def run_real(links: tuple[str, ...], mode: str, flow: Flow, duration: float,
             seed: int = 1, cc: str = CC) -> Result:
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(asyncio.wait_for(
            _run(links, mode, flow, duration, seed, Path(tmp), cc), duration + 60.0))
