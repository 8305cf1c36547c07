"""WebTransport: datagram round trips and stream throughput, tquic's server vs aioquic's,
in the same run, measured by the same tquic client.

    python benchmarks/webtransport.py [--quick] [--datagrams N] [--streams N] [--mb MB]

Each server runs in its own process on loopback and echoes (tquic: ``tquic server
--webtransport-echo /echo``; aioquic: the echo below on its H3Connection with
enable_webtransport, draft-02 as Chromium speaks it).  The client opens one session per
server and measures:

- datagram RTT: N datagrams one at a time (send, wait for the echo), p50 / p99 / lost;
- stream throughput: S bidirectional streams of M MB each sent and echoed at once,
  Mbit/s counted both ways (2 x S x M MB over the time to the last echoed byte),
  every echo checked by SHA-256.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"


# -- the aioquic echo server (run with: webtransport.py serve-aioquic PORT CERT KEY) ----------

def serve_aioquic(port: int, cert: str, key: str) -> None:
    from aioquic.asyncio import serve
    from aioquic.asyncio.protocol import QuicConnectionProtocol
    from aioquic.h3.connection import H3_ALPN, H3Connection
    from aioquic.h3.events import DatagramReceived, HeadersReceived, WebTransportStreamDataReceived
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.events import ProtocolNegotiated

    class Echo(QuicConnectionProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._h3: Any = None
            self._uni: dict[int, bytes] = {}

        def quic_event_received(self, event: Any) -> None:
            if isinstance(event, ProtocolNegotiated):
                self._h3 = H3Connection(self._quic, enable_webtransport=True)
            if self._h3 is None:
                return
            for ev in self._h3.handle_event(event):
                if isinstance(ev, HeadersReceived) and (b":protocol", b"webtransport") in ev.headers:
                    self._h3.send_headers(ev.stream_id, [
                        (b":status", b"200"), (b"sec-webtransport-http3-draft", b"draft02")])
                elif isinstance(ev, WebTransportStreamDataReceived) and not ev.stream_id & 2:
                    self._quic.send_stream_data(ev.stream_id, ev.data, end_stream=ev.stream_ended)
                elif isinstance(ev, DatagramReceived):
                    self._h3.send_datagram(ev.stream_id, ev.data)
            self.transmit()

    async def main() -> None:
        config = QuicConfiguration(alpn_protocols=H3_ALPN, is_client=False,
                                   max_datagram_frame_size=65536)
        config.load_cert_chain(cert, key)
        await serve("127.0.0.1", port, configuration=config, create_protocol=Echo)
        print(f"aioquic echo: listening on [127.0.0.1]:{port}", file=sys.stderr, flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


# -- the measuring client --------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(url: str, datagrams: int, streams: int, size: int) -> dict[str, Any]:
    from tquic.core.config import QuicConfiguration
    from tquic.h3.webtransport import connect_webtransport

    config = QuicConfiguration(verify_peer=False, max_datagram_frame_size=65535,
                               max_data=64 << 20, max_stream_data=32 << 20)
    session = await connect_webtransport(url, config, timeout=10)
    async with session:
        rtts: list[float] = []
        lost = 0
        for i in range(datagrams):
            payload = b"%08d" % i + bytes(56)
            start = time.perf_counter()
            session.datagrams.send(payload)
            try:
                while await asyncio.wait_for(session.datagrams.receive(), 0.5) != payload:
                    pass
            except TimeoutError:
                lost += 1
                continue
            rtts.append(time.perf_counter() - start)
        blobs = [os.urandom(size) for _ in range(streams)]

        async def echo(blob: bytes) -> bool:
            stream = await session.create_bidirectional_stream()
            reader = asyncio.ensure_future(stream.read_all(size + 1))
            await stream.write(blob)
            stream.close()
            return hashlib.sha256(await reader).digest() == hashlib.sha256(blob).digest()

        start = time.perf_counter()
        intact = await asyncio.gather(*(echo(blob) for blob in blobs))
        elapsed = time.perf_counter() - start
    return {"draft": session.version.value, "rtt_p50_ms": percentile(rtts, 0.5) * 1000,
            "rtt_p99_ms": percentile(rtts, 0.99) * 1000, "lost": lost,
            "mbps": 2 * streams * size * 8 / elapsed / 1e6, "intact": all(intact)}


def start(argv: list[str]) -> tuple[subprocess.Popen[str], int]:
    env = dict(os.environ, PYTHONPATH=f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            env=env)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    match = re.search(r"\]:(\d+)", line)
    if match is None:
        proc.kill()
        raise SystemExit(f"server did not start: {line}")
    return proc, int(match.group(1))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def other_load() -> float:
    """The 1-minute load average before a run (the machine is shared: context for the figures)."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError):
        return float("nan")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "serve-aioquic":
        serve_aioquic(int(sys.argv[2]), sys.argv[3], sys.argv[4])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer datagrams, smaller streams")
    parser.add_argument("--datagrams", type=int, default=1000)
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--mb", type=float, default=4.0, help="MB per stream")
    args = parser.parse_args()
    if args.quick:
        args.datagrams, args.streams, args.mb = 200, 2, 1.0
    size = int(args.mb * 1e6)
    sys.path.insert(0, str(SRC))
    from tquic.crypto.tls.certs import generate_self_signed

    with tempfile.TemporaryDirectory() as tmp:
        cert, key = generate_self_signed()
        (Path(tmp) / "cert.pem").write_bytes(cert)
        (Path(tmp) / "key.pem").write_bytes(key)
        servers = {
            "tquic": [sys.executable, "-m", "tquic", "server", "--listen", "127.0.0.1:0",
                      "--cert", f"{tmp}/cert.pem", "--key", f"{tmp}/key.pem",
                      "--webtransport-echo", "/echo", "-q"],
            "aioquic": [sys.executable, __file__, "serve-aioquic", str(free_port()),
                        f"{tmp}/cert.pem", f"{tmp}/key.pem"],
        }
        rows = []
        for name, argv in servers.items():
            proc, port = start(argv)
            try:
                load = other_load()
                result = asyncio.run(asyncio.wait_for(
                    measure(f"https://127.0.0.1:{port}/echo", args.datagrams, args.streams, size),
                    300))
            finally:
                proc.terminate()
                proc.wait(10)
            rows.append((name, result, load))
    print(f"WebTransport echo on loopback, tquic client; {args.datagrams} datagrams one at a "
          f"time, {args.streams} x {args.mb:g} MB streams echoed at once")
    print(f"{'server':<8} {'draft':<16} {'dgram RTT p50':>14} {'p99':>9} {'lost':>5} "
          f"{'streams Mbit/s':>15} {'sha256':>7} {'loadavg':>8}")
    for name, r, load in rows:
        print(f"{name:<8} {r['draft']:<16} {r['rtt_p50_ms']:>11.3f} ms {r['rtt_p99_ms']:>6.3f} ms "
              f"{r['lost']:>5} {r['mbps']:>15.1f} {'ok' if r['intact'] else 'BAD':>7} {load:>8.1f}")
    return 0 if all(r["intact"] for _, r, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
