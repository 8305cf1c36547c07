"""Bulk download on loopback: tquic and aioquic, server and client in separate processes.

    python benchmarks/bulk.py            # 100 MB per run
    python benchmarks/bulk.py --quick    # 20 MB per run

One table: tquic client <- tquic server, aioquic <- aioquic, tquic client <- aioquic
server, aioquic client <- tquic server, and the plain-UDP ceiling (one Python process
sending 1452-byte datagrams with GSO to another receiving them with GRO, no QUIC).
Every QUIC stack uses a maximum UDP payload of 1452 bytes.  Throughput is the
client's own transfer time (request sent to last byte); CPU is user+system seconds
of the client (minus its cost for a 1-byte fetch: start-up, imports, handshake) and
of the server during the run, per GB moved.  The plain-UDP row counts the bytes the
receiver got (the sender may outrun it) and both processes' CPU.

"Other load" is how many cores the rest of the machine kept busy during the run: busy
time from /proc/stat minus the client's and server's own CPU, over the wall time.  A QUIC
run here is CPU-bound on both sides (each process needs a whole core; the server hardly
ever sleeps), so on a 2-core machine any other busy process stretches the run: one extra
CPU-bound task leaves each side 2/3 of a core and the run takes ~1.5x as long at the same
CPU per GB.  Compare times only between runs with other load near 0.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import select
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEER = str(ROOT / "tests" / "interop" / "aioquic_hq.py")
PAYLOAD = 1452
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Row:
    name: str
    nbytes: int
    seconds: float
    client_cpu: float
    server_cpu: float
    other_load: float = 0.0  # cores kept busy by other processes during the run

    @property
    def mbps(self) -> float:
        return self.nbytes * 8 / self.seconds / 1e6

    def cpu_per_gb(self, cpu: float) -> float:
        return cpu / (self.nbytes / 1e9)


def _proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def _machine_busy() -> float:
    """Busy CPU seconds of the whole machine (all but idle and iowait), from /proc/stat."""
    try:
        with open("/proc/stat") as handle:
            ticks = [int(x) for x in handle.readline().split()[1:]]
    except OSError:  # not Linux: no other-load column
        return 0.0
    return (sum(ticks) - ticks[3] - ticks[4]) / CLK_TCK


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _start_server(kind: str, cert: Path, key: Path) -> tuple[subprocess.Popen[str], int]:
    if kind == "tquic":
        proc = subprocess.Popen(
            [sys.executable, "-m", "tquic", "server", "--listen", "127.0.0.1:0", "--cert",
             str(cert), "--key", str(key), "--max-udp-payload", str(PAYLOAD),
             "--alpn", "hq-interop"],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        assert proc.stderr is not None
        line = proc.stderr.readline()
        match = re.search(r"\]:(\d+)", line)
    else:
        proc = subprocess.Popen(
            [sys.executable, PEER, "server", "--cert", str(cert), "--key", str(key)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"READY (\d+)", line)
    if match is None:
        proc.kill()
        raise RuntimeError(f"{kind} server did not start: {line!r}")
    return proc, int(match.group(1))


def _run_client(kind: str, port: int, size: int, timeout: float) -> tuple[int, float]:
    url = f"https://127.0.0.1:{port}/{size}"
    if kind == "tquic":
        cmd = [sys.executable, "-m", "tquic", "client", url, "--insecure", "--json",
               "--alpn", "hq-interop",
               "--max-udp-payload", str(PAYLOAD), "--timeout", "30"]
    else:
        cmd = [sys.executable, PEER, "client", url, "--insecure"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{kind} client failed: {result.stderr.strip()[-500:]}")
    report = json.loads(result.stdout)
    if kind == "tquic":
        return int(report["total_bytes"]), float(report["seconds"])
    return int(report["results"][0]["bytes"]), float(report["seconds"])


def quic_run(client: str, server: str, size: int, cert: Path, key: Path,
             timeout: float) -> Row:
    proc, port = _start_server(server, cert, key)
    try:
        time.sleep(0.2)
        # The client's fixed cost (interpreter start, imports, handshake) is measured on a
        # 1-byte fetch and subtracted, so CPU per GB is the transfer's.
        client_before = _children_cpu()
        _run_client(client, port, 1, timeout)
        baseline = _children_cpu() - client_before
        server_before = _proc_cpu(proc.pid)
        client_before = _children_cpu()
        busy_before, wall_before = _machine_busy(), time.monotonic()
        nbytes, seconds = _run_client(client, port, size, timeout)
        busy = _machine_busy() - busy_before
        wall = time.monotonic() - wall_before
        client_total = _children_cpu() - client_before
        client_cpu = max(0.0, client_total - baseline)
        server_cpu = _proc_cpu(proc.pid) - server_before
        other_load = max(0.0, busy - client_total - server_cpu) / wall
    finally:
        proc.kill()
        proc.wait()
    if nbytes != size:
        raise RuntimeError(f"{client}<-{server}: got {nbytes} bytes of {size}")
    return Row(f"{client} client <- {server} server", nbytes, seconds, client_cpu, server_cpu,
               other_load)


# -- the plain UDP ceiling ----------------------------------------------------------------


def udp_sink(port_file: str, size: int) -> None:
    """Receive datagrams until ``size`` bytes or an end marker; print bytes and seconds.

    Every 256 KB it tells the sender how much arrived, so the sender keeps at most
    1 MB in flight and the ceiling is measured without socket-buffer overflow.
    """
    sys.path.insert(0, str(ROOT / "src"))
    from tquic.io.udp import UdpSocket

    sock = UdpSocket.bind("127.0.0.1", 0)
    Path(port_file).write_text(str(sock.local_address[1]))
    received = 0
    reported = 0
    first = last = 0.0
    done = False
    while not done and received < size:
        ready, _, _ = select.select([sock.fileno()], [], [], 2.0)
        if not ready:
            break
        for datagram in sock.recv(64):
            if datagram.data == b"END":
                done = True
                break
            if not first:
                first = time.perf_counter()
            received += len(datagram.data)
            last = time.perf_counter()
            if received - reported >= 256 << 10:
                reported = received
                sock.send(str(received).encode(), datagram.addr)
    print(json.dumps({"bytes": received, "seconds": max(last - first, 1e-9)}))


def udp_source(port: int, size: int) -> None:
    sys.path.insert(0, str(ROOT / "src"))
    from tquic.io.udp import UdpSocket

    sock = UdpSocket.bind("127.0.0.1", 0)
    batch = [b"\x00" * PAYLOAD] * 32
    sent = 0
    acked = 0
    target = ("127.0.0.1", port)
    while sent < size:
        while sent - acked > 1 << 20:  # window: at most 1 MB unacknowledged
            if not select.select([sock.fileno()], [], [], 0.05)[0]:
                acked = sent  # a report was lost (or the sink lags): move on
                break
            for reply in sock.recv(64):
                acked = max(acked, int(reply.data))
        n = sock.send_batch(batch, target)
        if n < len(batch):
            select.select([], [sock.fileno()], [], 0.05)
        sent += n * PAYLOAD
    for _ in range(20):
        sock.send(b"END", target)
        time.sleep(0.01)


def udp_run(size: int, timeout: float) -> Row:
    with tempfile.TemporaryDirectory() as tmp:
        port_file = os.path.join(tmp, "port")
        client_before = _children_cpu()
        busy_before, wall_before = _machine_busy(), time.monotonic()
        sink = subprocess.Popen([sys.executable, __file__, "--udp-sink", port_file, str(size)],
                                stdout=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        while not os.path.exists(port_file) or not Path(port_file).read_text():
            if time.monotonic() > deadline:
                sink.kill()
                raise RuntimeError("UDP sink did not start")
            time.sleep(0.02)
        port = int(Path(port_file).read_text())
        source = subprocess.run([sys.executable, __file__, "--udp-source", str(port), str(size)],
                                timeout=timeout, check=False)
        out, _ = sink.communicate(timeout=timeout)
        cpu = _children_cpu() - client_before
        other_load = max(0.0, _machine_busy() - busy_before - cpu) / (time.monotonic()
                                                                      - wall_before)
    if source.returncode != 0:
        raise RuntimeError("UDP source failed")
    report = json.loads(out)
    # Sender and receiver CPU are not told apart here: both count as "client".
    return Row("plain UDP (GSO/GRO, no QUIC)", int(report["bytes"]), float(report["seconds"]),
               cpu, 0.0, other_load)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20 MB instead of 100 MB")
    parser.add_argument("--size", type=int, help="bytes per run (overrides --quick)")
    parser.add_argument("--udp-sink", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--udp-source", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.udp_sink:
        udp_sink(args.udp_sink[0], int(args.udp_sink[1]))
        return 0
    if args.udp_source:
        udp_source(int(args.udp_source[0]), int(args.udp_source[1]))
        return 0
    size = args.size or (20_000_000 if args.quick else 100_000_000)
    timeout = max(120.0, size / 1e6 * 3)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        from tquic.crypto.tls.certs import generate_self_signed

        cert_pem, key_pem = generate_self_signed()
        cert, key = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        cert.write_bytes(cert_pem)
        key.write_bytes(key_pem)
        for client, server in (("tquic", "tquic"), ("aioquic", "aioquic"),
                               ("tquic", "aioquic"), ("aioquic", "tquic")):
            try:
                rows.append(quic_run(client, server, size, cert, key, timeout))
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                print(f"{client} <- {server}: failed: {exc}", file=sys.stderr)
        rows.append(udp_run(size, timeout))
    print(f"bulk download on loopback, {size / 1e6:g} MB per run, max UDP payload {PAYLOAD}")
    print(f"{'run':<34} {'MB':>6} {'seconds':>8} {'Mbit/s':>8} {'client CPU s/GB':>16} "
          f"{'server CPU s/GB':>16} {'other load':>10}")
    for row in rows:
        server = f"{row.cpu_per_gb(row.server_cpu):16.1f}" if row.server_cpu else f"{'-':>16}"
        print(f"{row.name:<34} {row.nbytes / 1e6:6.0f} {row.seconds:8.2f} {row.mbps:8.1f} "
              f"{row.cpu_per_gb(row.client_cpu):16.1f} {server} {row.other_load:10.2f}")
    by_name = {row.name: row for row in rows}
    ours = by_name.get("tquic client <- tquic server")
    theirs = by_name.get("aioquic client <- aioquic server")
    if ours and theirs:
        cpu_ours = ours.client_cpu + ours.server_cpu
        cpu_theirs = theirs.client_cpu + theirs.server_cpu
        print(f"ratio tquic/aioquic: throughput {ours.mbps / theirs.mbps:.2f}x, "
              f"CPU per GB (client+server) {cpu_ours / cpu_theirs:.2f}x")
    return 0


if __name__ == "__main__":
    socket.setdefaulttimeout(None)
    sys.exit(main())
