"""Engine throughput over 1, 2 and 3 paths: two QuicConnections in memory (no
sockets, no simulator), one bulk stream from client to server, the paths
opened and validated before the clock starts; prints MB of stream data moved
per CPU second (time.process_time, both engines together) for each path count.

    python benchmarks/engine_multipath.py               # 32 MiB, 1, 2 and 3 paths
    python benchmarks/engine_multipath.py --quick       # 4 MiB
    python benchmarks/engine_multipath.py --paths 2 --scheduler roundrobin
    python benchmarks/engine_multipath.py --quick --calls   # Python function calls
        of each transfer (cProfile) instead of its CPU time: independent of the load

The single-path row goes through the multipath send loop too (multipath is
negotiated), so rows compare the cost per byte as paths are added; the
baseline of the single-path engine is benchmarks/engine.py.  Every link has the
same delay and no rate limit: the transfer is bound by CPU, not by links.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import heapq
import pstats
import time
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tquic.core.config import QuicConfiguration
from tquic.core.connection import QuicConnection
from tquic.core.events import StreamDataReceived
from tquic.paths.network_path import Address, NetworkPath

SERVER: Address = ("10.9.0.2", 443)
DELAY = 0.005  # one way, every link


def _client_addr(index: int) -> Address:
    return (f"10.9.{index + 1}.1", 5000)


def _cert() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


class _Wire:
    """Datagrams in flight, delivered in arrival order; each goes where the engine
    said (a path opened from another local address travels over its own link)."""

    def __init__(self, client: QuicConnection, server: QuicConnection) -> None:
        self.client = client
        self.server = server
        self.now = 0.0
        self.queue: list[tuple[float, int, QuicConnection, bytes, NetworkPath, int]] = []
        self.seq = 0
        self.sent = {"up": 0, "down": 0}
        self.per_link: dict[Address, int] = {}
        self.received = 0
        self.done = False

    def send(self, counting: bool) -> None:
        for conn, peer in ((self.client, self.server), (self.server, self.client)):
            for data, path in conn.datagrams_to_send(self.now):
                ecn = conn.ecn_codepoint(path)
                if conn is self.client:
                    client_addr = path.local if path.local != ("", 0) else _client_addr(0)
                    dest = NetworkPath(path.remote, client_addr)
                    direction = "up"
                else:
                    client_addr = path.remote
                    dest = NetworkPath(client_addr, path.local)
                    direction = "down"
                if counting:
                    self.sent[direction] += 1
                    if direction == "up":
                        self.per_link[client_addr] = self.per_link.get(client_addr, 0) + 1
                self.seq += 1
                heapq.heappush(self.queue, (self.now + DELAY, self.seq, peer, data, dest, ecn))

    def events(self) -> None:
        for conn in (self.client, self.server):
            while (event := conn.next_event()) is not None:
                if conn is self.server and isinstance(event, StreamDataReceived):
                    self.received += len(event.data)
                    self.done = self.done or event.end_stream

    def step(self, counting: bool = False) -> bool:
        self.send(counting)
        self.events()
        times = [self.queue[0][0]] if self.queue else []
        for conn in (self.client, self.server):
            timeout = conn.next_timeout()
            if timeout is not None:
                times.append(timeout)
        if not times:
            return False
        self.now = max(self.now, min(times))
        while self.queue and self.queue[0][0] <= self.now:
            _, _, conn, data, dest, ecn = heapq.heappop(self.queue)
            conn.receive_datagram(data, dest, self.now, ecn=ecn)
        for conn in (self.client, self.server):
            timeout = conn.next_timeout()
            if timeout is not None and timeout <= self.now:
                conn.handle_timeout(self.now)
        return True

    def until(self, what: str, cond: Any, max_time: float) -> None:
        while not cond():
            if self.now > max_time or not self.step():
                raise SystemExit(f"benchmark setup failed: {what} by {max_time} s")


def run(size: int, paths: int, scheduler: str, profile: cProfile.Profile | None = None
        ) -> tuple[float, float, int, int, list[int]]:
    """(MB per CPU second, virtual seconds, datagrams up, datagrams down, datagrams up
    per path) for a ``size``-byte transfer over ``paths`` validated paths; ``profile``
    is enabled for the transfer only (not the handshake and path setup)."""
    cert, key = _cert()
    big: dict[str, Any] = {
        "initial_max_data": 8 << 20, "max_data": 64 << 20,
        "initial_max_stream_data": 8 << 20, "max_stream_data": 64 << 20,
        "max_udp_payload_size": 1452, "max_path_id": 4}
    client = QuicConnection(QuicConfiguration(is_client=True, verify_peer=False,
                                              alpn_protocols=("bench",),
                                              scheduler=scheduler, **big))
    server = QuicConnection(QuicConfiguration(is_client=False, alpn_protocols=("bench",),
                                              certificate=cert, private_key=key, **big))
    wire = _Wire(client, server)
    client.connect(NetworkPath(_client_addr(0), SERVER), 0.0)
    for index in range(1, paths):
        wire.until("a path can be opened", lambda: client.can_open_path, 5.0)
        path_id = client.add_path(_client_addr(index), SERVER, wire.now)

        def validated(path_id: int = path_id) -> bool:
            ours, theirs = client.paths.get(path_id), server.paths.get(path_id)
            return (ours is not None and ours.validated and theirs is not None
                    and theirs.validated)
        wire.until(f"path {path_id} validated", validated, wire.now + 5.0)
    wire.until("the handshake", lambda: client.handshake_complete, 5.0)
    start = wire.now
    cpu0 = time.process_time()
    if profile is not None:
        profile.enable()
    sid = client.open_stream()
    chunk = b"\xa5" * (1 << 20)
    for _ in range(size // len(chunk)):
        client.send_stream_data(sid, chunk)
    client.send_stream_data(sid, b"", end_stream=True)
    while not wire.done:
        if not wire.step(counting=True):
            break
    cpu = time.process_time() - cpu0
    if profile is not None:
        profile.disable()
    if wire.received != size:
        raise SystemExit(f"transfer incomplete: {wire.received} of {size} bytes")
    per_path = [wire.per_link.get(_client_addr(i), 0) for i in range(paths)]
    return size / 1e6 / cpu, wire.now - start, wire.sent["up"], wire.sent["down"], per_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 MiB instead of 32 MiB")
    parser.add_argument("--paths", type=int, choices=(1, 2, 3), action="append",
                        help="path count to measure (repeatable; default 1, 2 and 3)")
    parser.add_argument("--scheduler", default="minrtt",
                        help="the client's scheduler (default minrtt)")
    parser.add_argument("--calls", action="store_true",
                        help="count the Python function calls of each transfer (cProfile) "
                        "instead of timing it: a figure independent of the machine's load")
    args = parser.parse_args()
    size = (4 if args.quick else 32) << 20
    figure = "Python calls" if args.calls else "MB per CPU-s"
    print(f"{'paths':>5}  {figure:>12}  {'virtual s':>9}  {'datagrams up/down':>17}"
          f"  datagrams up per path")
    for paths in args.paths or [1, 2, 3]:
        counter = cProfile.Profile() if args.calls else None
        rate, virtual, up, down, per_path = run(size, paths, args.scheduler, counter)
        value = (f"{pstats.Stats(counter).total_calls:>12}"  # type: ignore[attr-defined]
                 if counter is not None else f"{rate:>12.1f}")
        print(f"{paths:>5}  {value}  {virtual:>9.3f}  {f'{up} / {down}':>17}  "
              f"{' '.join(str(n) for n in per_path)}")


if __name__ == "__main__":
    main()
