"""HTTP/3 bulk download on loopback: tquic against itself, ngtcp2 and aioquic, one table.

Every row downloads the same file (one GET, one stream) with a client process from a
server process, both on 127.0.0.1:

    tquic client   <- tquic server       (tquic client / tquic server commands)
    tquic client   <- gtlsserver         (ngtcp2 0.12 + nghttp3 + GnuTLS, Debian)
    gtlsclient     <- tquic server
    gtlsclient     <- gtlsserver         anchor: a C implementation against itself
    aioquic        <- aioquic            anchor: the other Python QUIC (benchmarks/aioquic_h3_peer.py)
    tquic client   <- aioquic, aioquic <- tquic server   (cross rows)

Method, the same for every row: each client runs twice against a running server, once
for a 1 KB file and once for the big file.  The CPU differences (client from wait4,
server from /proc/PID/stat) remove process start-up, imports and the handshake:

    CPU s/GB = (client + server CPU, big - small) / size in GB
    Mbit/s   = size * 8 / transfer time

The transfer time is the client's own (first request to last byte) for tquic and
aioquic, whose exits wait for the connection to drain; for gtlsclient, whose start-up
is short and steady, it is wall(big) - wall(small).

    python benchmarks/bulk_h3.py            # 50 MB, best of 3 per row
    python benchmarks/bulk_h3.py --quick    # 10 MB, one run per row
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable
GTLSSERVER = shutil.which("gtlsserver") or "/usr/sbin/gtlsserver"
GTLSCLIENT = shutil.which("gtlsclient") or "/usr/bin/gtlsclient"
SMALL = 1000
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclasses.dataclass
class Run:
    wall: float
    client_cpu: float
    server_cpu: float
    received: int
    seconds: float | None  # the client's own transfer time, when it reports one


@dataclasses.dataclass
class Env:
    work: Path
    root: Path
    cert: Path
    key: Path
    size: int
    timeout: float


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_cpu(pid: int) -> float:
    """utime + stime of a running process (all its threads), seconds."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def udp_listening(port: int) -> bool:
    needle = f":{port:04X}"
    with open("/proc/net/udp") as table:
        return any(line.split()[1].endswith(needle) for line in table.readlines()[1:])


# -- servers ---------------------------------------------------------------------------------


def start_server(kind: str, env: Env) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    if kind == "tquic":
        cmd = [PY, "-m", "tquic", "server", "--listen", f"127.0.0.1:{port}", "--cert",
               str(env.cert), "--key", str(env.key), "--root", str(env.root), "--alpn", "h3"]
    elif kind == "ngtcp2":
        cmd = [GTLSSERVER, "-q", "-d", str(env.root), "127.0.0.1", str(port), str(env.key),
               str(env.cert)]
    else:
        cmd = [PY, str(HERE / "aioquic_h3_peer.py"), "server", "--port", str(port), "--cert",
               str(env.cert), "--key", str(env.key), "--root", str(env.root)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while not udp_listening(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            raise RuntimeError(f"{kind} server did not start")
        time.sleep(0.05)
    time.sleep(0.2)  # bound is not quite ready: let it reach its event loop
    return proc, port


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- clients ---------------------------------------------------------------------------------


def client_command(kind: str, port: int, name: str, out: Path) -> list[str]:
    url = f"https://127.0.0.1:{port}/{name}"
    if kind == "tquic":
        return [PY, "-m", "tquic", "client", "--insecure", "--json", "--timeout", "30", url]
    if kind == "ngtcp2":
        return [GTLSCLIENT, "-q", "--exit-on-all-streams-close", f"--download={out}",
                "127.0.0.1", str(port), url]
    return [PY, str(HERE / "aioquic_h3_peer.py"), "client", "--port", str(port), url]


def received_bytes(kind: str, stdout: bytes, out: Path, name: str) -> tuple[int, float | None]:
    """Bytes the client got, and its own transfer time (first request to last byte)."""
    if kind == "ngtcp2":
        path = out / name
        size = path.stat().st_size if path.exists() else 0
        path.unlink(missing_ok=True)
        return size, None
    report = json.loads(stdout.decode().strip().splitlines()[-1])
    return sum(int(r["bytes"]) for r in report["results"]), float(report["seconds"])


def run_client(kind: str, server: subprocess.Popen[bytes], port: int, name: str,
               env: Env) -> Run:
    out = env.work / "download"
    out.mkdir(exist_ok=True)
    server_before = proc_cpu(server.pid)
    started = time.perf_counter()
    proc = subprocess.Popen(client_command(kind, port, name, out), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    deadline = started + env.timeout
    stdout = b""
    assert proc.stdout is not None
    while True:  # read output and reap with wait4 to get the child's own CPU usage
        status = os.wait4(proc.pid, os.WNOHANG)
        if status[0] == proc.pid:
            stdout += proc.stdout.read()
            break
        if time.perf_counter() > deadline:
            proc.kill()
            os.wait4(proc.pid, 0)
            raise RuntimeError(f"{kind} client timed out")
        time.sleep(0.005)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status[1])
    usage = status[2]
    server_cpu = proc_cpu(server.pid) - server_before
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} client exited {proc.returncode}")
    received, seconds = received_bytes(kind, stdout, out, name)
    return Run(wall, usage.ru_utime + usage.ru_stime, server_cpu, received, seconds)


# -- rows ------------------------------------------------------------------------------------


ROWS = [
    ("tquic h3 client <- tquic server", "tquic", "tquic"),
    ("tquic client <- gtlsserver", "tquic", "ngtcp2"),
    ("gtlsclient <- tquic server", "ngtcp2", "tquic"),
    ("gtlsclient <- gtlsserver (anchor)", "ngtcp2", "ngtcp2"),
    ("aioquic <- aioquic (anchor)", "aioquic", "aioquic"),
    ("tquic client <- aioquic server", "tquic", "aioquic"),
    ("aioquic client <- tquic server", "aioquic", "tquic"),
]


def available(kind: str) -> str | None:
    """None if the implementation can run here, else why not."""
    if kind == "ngtcp2" and not (os.access(GTLSSERVER, os.X_OK) and os.access(GTLSCLIENT, os.X_OK)):
        return "ngtcp2 tools not installed"
    if kind == "aioquic":
        try:
            import aioquic  # noqa: F401
        except ImportError:
            return "aioquic not installed"
    return None


def transfer_seconds(small: Run, big: Run) -> float:
    # The client's own clock where it has one (tquic, aioquic: their close and drain
    # time vary); gtlsclient's start-up is steady, so subtract it.
    seconds = big.seconds if big.seconds is not None else big.wall - small.wall
    return max(seconds, 1e-6)


def measure(client: str, server_kind: str, env: Env, repeat: int) -> tuple[Run, Run]:
    """The fastest of ``repeat`` big downloads (each after its own small one)."""
    best: tuple[Run, Run] | None = None
    server, port = start_server(server_kind, env)
    try:
        for _ in range(repeat):
            small = run_client(client, server, port, "small.bin", env)
            big = run_client(client, server, port, "big.bin", env)
            if small.received != SMALL or big.received != env.size:
                raise RuntimeError(f"received {small.received}/{big.received} bytes, "
                                   f"expected {SMALL}/{env.size}")
            if best is None or transfer_seconds(small, big) < transfer_seconds(*best):
                best = (small, big)
    finally:
        stop(server)
    assert best is not None
    return best


def versions() -> str:
    parts = [f"python {platform.python_version()}", f"{os.cpu_count()} CPUs"]
    try:
        import aioquic

        parts.append(f"aioquic {aioquic.__version__}")
    except ImportError:
        pass
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "ngtcp2-server"],
                             capture_output=True, text=True, timeout=5, check=False).stdout
        if out:
            parts.append(f"ngtcp2 {re.sub(r'-.*', '', out)}")
    except OSError:
        pass
    return ", ".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10 MB instead of 50 MB")
    parser.add_argument("--size-mb", type=int, default=None, help="file size in MB")
    parser.add_argument("--only", default=None, help="run rows whose label contains this")
    parser.add_argument("--repeat", type=int, default=None,
                        help="downloads per row, the fastest reported (default 1 quick, 3 full)")
    args = parser.parse_args()
    size = (args.size_mb or (10 if args.quick else 50)) * 1_000_000
    args.repeat = max(1, args.repeat or (1 if args.quick else 3))
    rows: list[tuple[str, str, str]] = [r for r in ROWS if args.only is None or args.only in r[0]]
    with tempfile.TemporaryDirectory(prefix="bulk_h3-") as tmp:
        work = Path(tmp)
        root = work / "www"
        root.mkdir()
        (root / "small.bin").write_bytes(os.urandom(SMALL))
        with open(root / "big.bin", "wb") as handle:
            for _ in range(size // 1_000_000):
                handle.write(os.urandom(1_000_000))
            handle.write(os.urandom(size % 1_000_000))
        from tquic.crypto.tls.certs import generate_self_signed

        cert, key = generate_self_signed()
        (work / "cert.pem").write_bytes(cert)
        (work / "key.pem").write_bytes(key)
        env = Env(work, root, work / "cert.pem", work / "key.pem", size,
                  timeout=60 + size / 1e6 * 2)
        print(f"HTTP/3 download of {size / 1e6:g} MB on loopback, one stream, best of "
              f"{args.repeat} ({versions()})")
        header = (f"{'client <- server':<36} {'Mbit/s':>8} {'CPU s/GB':>9} "
                  f"{'client':>7} {'server':>7}")
        print(header)
        print("-" * len(header))
        status = 0
        for label, client, server_kind in rows:
            reason = available(client) or available(server_kind)
            if reason is not None:
                print(f"{label:<36} skipped: {reason}", flush=True)
                continue
            try:
                small, big = measure(client, server_kind, env, args.repeat)
            except (RuntimeError, OSError, ValueError) as exc:
                print(f"{label:<36} failed: {exc}", flush=True)
                status = 1
                continue
            seconds = transfer_seconds(small, big)
            gigabytes = size / 1e9
            client_cpu = max(big.client_cpu - small.client_cpu, 0.0) / gigabytes
            server_cpu = max(big.server_cpu - small.server_cpu, 0.0) / gigabytes
            print(f"{label:<36} {size * 8 / seconds / 1e6:8.1f} {client_cpu + server_cpu:9.1f} "
                  f"{client_cpu:7.1f} {server_cpu:7.1f}", flush=True)
        print("(client / server: CPU s/GB of each side; start-up and handshake subtracted)")
    return status


if __name__ == "__main__":
    sys.exit(main())
