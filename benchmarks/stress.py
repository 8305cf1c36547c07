"""A server under stress, on loopback: floods, a crowd of idle connections, handshake rate.

One table, bounded in time and count.  Every participant is its own process
(benchmarks/stress_roles.py): the server (tquic, or aioquic for the anchor rows),
the flooder, the real clients.

- **initial flood**: valid-looking Initials (real ClientHellos, and copies with fresh
  DCIDs) from 512 addresses in 127.0.0.0/8, as fast as one process sends, while
  200 real clients connect; the share of real handshakes that succeed, their p99
  time, the server's peak RSS (tquic also with ``--workers 2``);
- **spoofed flood** (root: a raw socket): the Initial flood again, but every datagram
  from a new random address and port in 127.0.0.0/8, so no per-peer state can
  catch it; a download that started before it (intact? how fast?) and 200 real
  clients connecting during it;
- **garbage flood**: random, truncated and bit-flipped datagrams while one client
  downloads ``--bulk`` bytes; the body's SHA-256 and the throughput (and without
  the flood, for comparison);
- **idle**: ``--idle`` connections held by one server process: RSS per connection,
  and how many still answer a request (hq ``GET /1``) at the end;
- **handshakes/s**: clients in two other processes open, verify (a CA-signed
  certificate for "localhost", checked by every client) and close connections.
  The figure per core is handshakes divided by the server's own CPU seconds
  (user + system from /proc/PID/stat of the server process and its workers,
  read before and after each round): the clients' CPU and other jobs' are not
  in it.  One server runs a warm-up round and then ``--rounds`` measured rounds;
  the row gives each round's figure and their median, with the load average.
  With one worker the server is pinned to CPU 0 and the clients to the other
  CPUs, so they do not evict each other's caches on one core; ``--workers 2``
  uses both CPUs, the clients share them.

    python benchmarks/stress.py [--quick] [--json] [--no-aioquic] [--idle N]
    python benchmarks/stress.py --only handshakes [--rounds 3] [--handshakes 1000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROLES = str(Path(__file__).with_name("stress_roles.py"))
START_TIMEOUT = 60.0  # seconds for a server to report that it listens
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tree(pid: int) -> list[int]:
    """``pid`` and its children (the workers of a multi-process server)."""
    pids = [pid]
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                pids += [int(p) for p in handle.read().split()]
    return pids


def rss_kb(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICK
    return total


class Server:
    """A server process; its RSS is sampled in the background (peak kept)."""

    def __init__(self, impl: str, certs: Path, workers: int = 1,
                 cpus: set[int] | None = None) -> None:
        self.port = free_port()
        self.stats_dir = Path(tempfile.mkdtemp(prefix="stress-"))
        role = "server" if impl == "tquic" else "aioquic-server"
        self.proc = subprocess.Popen(
            [sys.executable, ROLES, role, "--port", str(self.port), "--cert",
             str(certs / "cert.pem"), "--key", str(certs / "key.pem"), "--workers", str(workers),
             "--stats-dir", str(self.stats_dir)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True)  # its own process group: see kill()
        if cpus:
            os.sched_setaffinity(self.proc.pid, cpus)  # before it forks any worker
        assert self.proc.stdout is not None
        listening = 0
        # A server that never says it listens is killed after START_TIMEOUT, workers
        # and all: the readline below then ends, and the run stops with a message
        # instead of hanging (seen with --workers 2: one line never read; killing the
        # parent alone left its workers holding the pipe, and the run waited for ever).
        watchdog = threading.Timer(START_TIMEOUT, self.kill)
        watchdog.start()
        try:
            while listening < workers:
                line = self.proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"server did not start within {START_TIMEOUT:.0f} s: "
                                       f"{self.proc.stderr.read()}")  # type: ignore[union-attr]
                listening += '"listening"' in line
        finally:
            watchdog.cancel()
        time.sleep(0.3)
        self.baseline_kb = rss_kb(self.pids())
        self.peak_kb = self.baseline_kb
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def pids(self) -> list[int]:
        return tree(self.proc.pid)

    def kill(self) -> None:
        """SIGKILL to the server and its workers (its process group)."""
        with contextlib.suppress(OSError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.peak_kb = max(self.peak_kb, rss_kb(self.pids()))

    def rss_kb(self) -> int:
        return rss_kb(self.pids())

    def cpu(self) -> float:
        return cpu_seconds(self.pids())

    def stats(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for path in self.stats_dir.glob("worker-*.json"):
            with contextlib.suppress(OSError, ValueError):
                for key, value in json.loads(path.read_text()).items():
                    total[key] = total.get(key, 0) + int(value)
        return total

    def stop(self) -> str:
        self._stop.set()
        self.proc.send_signal(signal.SIGTERM)
        try:
            _, stderr = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()
            _, stderr = self.proc.communicate()
        return stderr


@contextlib.contextmanager
def server(impl: str, certs: Path, workers: int = 1,
           cpus: set[int] | None = None) -> Iterator[Server]:
    srv = Server(impl, certs, workers, cpus)
    try:
        yield srv
    finally:
        stderr = srv.stop()
        if "Traceback" in stderr:
            print(f"[{impl} server stderr]\n{stderr[-2000:]}", file=sys.stderr)
        srv.traceback = "Traceback" in stderr  # type: ignore[attr-defined]


def role(*args: str, cpus: set[int] | None = None) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, ROLES, *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if cpus:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(proc.pid, cpus)
    return proc


def events(proc: subprocess.Popen[str], timeout: float) -> dict[str, dict[str, Any]]:
    """Every JSON line of a finished role, by its "event"."""
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
    out: dict[str, dict[str, Any]] = {}
    for line in stdout.splitlines():
        with contextlib.suppress(ValueError):
            data = json.loads(line)
            out[data.get("event", "")] = data
    if "Traceback" in stderr:
        print(stderr[-2000:], file=sys.stderr)
    return out


def read_event(proc: subprocess.Popen[str], name: str, timeout: float) -> dict[str, Any]:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        with contextlib.suppress(ValueError):
            data = json.loads(line)
            if data.get("event") == name:
                return dict(data)
    return {}


# -- rows ------------------------------------------------------------------------------


def initial_flood(impl: str, certs: Path, args: argparse.Namespace,
                  workers: int = 1) -> dict[str, Any]:
    with server(impl, certs, workers) as srv:
        flood = role("flood", "--port", str(srv.port), "--seconds", str(args.flood_seconds),
                     "--kind", "initial", "--sources", str(args.sources))
        read_event(flood, "flooding", 60)
        time.sleep(1.0)  # the flood is on before the first real client
        clients = role("clients", "--port", str(srv.port), "--count", str(args.real),
                       "--concurrency", "50", "--timeout", str(args.client_timeout))
        crowd = events(clients, args.flood_seconds + 120).get("connected", {})
        flooded = events(flood, args.flood_seconds + 60).get("done", {})
    stats = srv.stats()  # written by the server as it exits
    ok = crowd.get("ok", 0)
    name = "initial flood + 200 clients" + (f", {workers} workers" if workers > 1 else "")
    return {"row": name, "server": impl,
            "flood_pps": flooded.get("rate"), "real_ok": ok, "real_total": args.real,
            "real_ok_pct": round(100 * ok / args.real, 1), "p99_s": crowd.get("p99"),
            "peak_rss_mb": round(srv.peak_kb / 1024, 1),
            "retries": stats.get("retries_sent"), "retry_on": stats.get("retry_activations"),
            "peers_blocked": stats.get("peers_blocked"),
            "traceback": srv.traceback}  # type: ignore[attr-defined]


def spoofed_flood(impl: str, certs: Path, args: argparse.Namespace) -> dict[str, Any]:
    name = "spoofed flood + download + 200 clients"
    if os.geteuid() != 0:
        return {"row": name, "server": impl, "skipped": "needs root (a raw socket)"}
    with server(impl, certs) as srv:
        flood = role("flood", "--port", str(srv.port), "--seconds", str(args.flood_seconds),
                     "--kind", "spoofed", "--wait")
        read_event(flood, "flooding", 60)
        bulk = role("clients", "--port", str(srv.port), "--count", "1", "--hold", "--bulk",
                    str(args.bulk), "--timeout", "20", "--wait")
        read_event(bulk, "connected", 60)  # established before the flood
        assert flood.stdin is not None and bulk.stdin is not None
        flood.stdin.write("go\n")
        flood.stdin.flush()
        time.sleep(1.0)
        bulk.stdin.write("go\n")
        bulk.stdin.flush()
        clients = role("clients", "--port", str(srv.port), "--count", str(args.real),
                       "--concurrency", "50", "--timeout", str(args.client_timeout))
        crowd = events(clients, args.flood_seconds + 120).get("connected", {})
        got = events(bulk, 180).get("bulk", {})
        flooded = events(flood, args.flood_seconds + 60).get("done", {})
    stats = srv.stats()
    ok = crowd.get("ok", 0)
    return {"row": name, "server": impl, "flood_pps": flooded.get("rate"),
            "bulk_intact": bool(got.get("intact")), "bulk_mbps": got.get("mbps"),
            "real_ok_pct": round(100 * ok / args.real, 1), "p99_s": crowd.get("p99"),
            "over_budget": stats.get("kernel_initials_over_budget"),
            "retries": stats.get("retries_sent"),
            "traceback": srv.traceback}  # type: ignore[attr-defined]


def garbage_flood(impl: str, certs: Path, args: argparse.Namespace) -> dict[str, Any]:
    results = {}
    for flooded in (False, True):
        with server(impl, certs) as srv:
            flood = None
            if flooded:
                flood = role("flood", "--port", str(srv.port), "--seconds",
                             str(args.flood_seconds), "--kind", "garbage",
                             "--sources", str(args.sources))
                read_event(flood, "flooding", 60)
                time.sleep(0.5)
            client = role("clients", "--port", str(srv.port), "--count", "1", "--hold",
                          "--bulk", str(args.bulk), "--timeout", "20")
            got = events(client, 180)
            sent = events(flood, args.flood_seconds + 60).get("done", {}) if flood else {}
        stats = srv.stats()  # written by the server as it exits
        bulk = got.get("bulk", {})
        bulk.setdefault("connected", got.get("connected", {}).get("ok", 0))
        results[flooded] = {"bulk": bulk, "sent": sent, "stats": stats,
                            "traceback": srv.traceback}  # type: ignore[attr-defined]
    calm, storm = results[False]["bulk"], results[True]["bulk"]
    return {"row": "garbage flood + bulk", "server": impl,
            "flood_pps": results[True]["sent"].get("rate"),
            "connected": storm.get("connected"),
            "intact": bool(storm.get("intact")), "mbps": storm.get("mbps"),
            "mbps_no_flood": calm.get("mbps"),
            "dropped": results[True]["stats"].get("datagrams_dropped"),
            "resets": results[True]["stats"].get("stateless_resets_sent"),
            "peers_blocked": results[True]["stats"].get("peers_blocked"),
            "retry_on": results[True]["stats"].get("retry_activations"),
            "traceback": results[True]["traceback"]}


def idle(impl: str, certs: Path, args: argparse.Namespace) -> dict[str, Any]:
    with server(impl, certs) as srv:
        before = srv.rss_kb()
        clients = role("clients", "--port", str(srv.port), "--count", str(args.idle),
                       "--concurrency", "100", "--hold", "--timeout", "60")
        crowd = read_event(clients, "connected", args.idle / 20 + 300)
        time.sleep(2.0)
        after = srv.rss_kb()
        assert clients.stdin is not None
        clients.stdin.write("ping\n")
        clients.stdin.flush()
        pinged = read_event(clients, "pinged", 300)
        events(clients, 30)
    ok = crowd.get("ok", 0)
    return {"row": f"{args.idle} idle connections", "server": impl, "connected": ok,
            "kb_per_conn": round((after - before) / ok, 1) if ok else None,
            "rss_mb": round(after / 1024, 1), "answered": pinged.get("answered"),
            "handshakes_per_s": crowd.get("rate"),
            "traceback": srv.traceback}  # type: ignore[attr-defined]


def handshake_rate(impl: str, certs: Path, args: argparse.Namespace,
                   workers: int) -> dict[str, Any]:
    cpus = sorted(os.sched_getaffinity(0))
    pinned = args.pin and workers == 1 and len(cpus) >= 2
    server_cpus = {cpus[0]} if pinned else None
    client_cpus = set(cpus[1:]) if pinned else None
    ca = str(certs / "ca.pem")

    def one_round(srv: Server, count: int) -> tuple[int, int, float, float]:
        """(handshakes, failed, wall seconds, server CPU seconds) of one round."""
        cpu0 = srv.cpu()
        t0 = time.monotonic()
        crowds = [role("clients", "--port", str(srv.port), "--count", str(count),
                       "--concurrency", "32", "--timeout", "30", "--ca", ca, cpus=client_cpus)
                  for _ in range(args.client_procs)]
        done = [events(c, 300).get("connected", {}) for c in crowds]
        wall = time.monotonic() - t0
        cpu = srv.cpu() - cpu0
        return (sum(d.get("ok", 0) for d in done), sum(d.get("failed", 0) for d in done),
                wall, cpu)

    rounds: list[tuple[int, int, float, float]] = []
    load = [os.getloadavg()[0]]
    with server(impl, certs, workers, server_cpus) as srv:
        one_round(srv, max(50, args.handshakes // 10))  # warm-up: imports, caches, allocator
        for _ in range(args.rounds):
            rounds.append(one_round(srv, args.handshakes))
        load.append(os.getloadavg()[0])
    stats = srv.stats()
    ok = sum(r[0] for r in rounds)
    per_core = [round(r[0] / r[3], 1) if r[3] else 0.0 for r in rounds]
    ms_per_hs = [round(1000 * r[3] / r[0], 3) if r[0] else 0.0 for r in rounds]
    return {"row": f"handshakes/s, {workers} worker{'s' if workers > 1 else ''}",
            "server": impl, "handshakes": ok,
            "failed": sum(r[1] for r in rounds),
            "per_core_s": statistics.median(per_core) if per_core else None,
            "rounds_per_core_s": per_core,
            "server_cpu_ms_per_hs": statistics.median(ms_per_hs) if ms_per_hs else None,
            "per_s": round(ok / sum(r[2] for r in rounds), 1) if rounds else None,
            "server_cpu_s": round(sum(r[3] for r in rounds), 2),
            "retries": stats.get("retries_sent"),
            "pinned": pinned, "load_avg": [round(x, 2) for x in load],
            "traceback": srv.traceback}  # type: ignore[attr-defined]


def fmt(row: dict[str, Any]) -> str:
    skip = {"row", "server"}
    detail = ", ".join(f"{k}={v}" for k, v in row.items() if k not in skip and v is not None)
    return f"| {row['row']} | {row['server']} | {detail} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true",
                        help="shorter floods, 2,000 idle connections, fewer handshakes")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--no-aioquic", action="store_true", help="tquic rows only")
    parser.add_argument("--idle", type=int, default=None, help="idle connections (10000)")
    parser.add_argument("--only", default="", help="comma-separated: initial,spoofed,garbage,"
                                                   "idle,handshakes")
    parser.add_argument("--rounds", type=int, default=3,
                        help="measured rounds of the handshake rows (after a warm-up)")
    parser.add_argument("--client-procs", type=int, default=2,
                        help="client processes of the handshake rows")
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=True,
                        help="one-worker handshake rows: server on CPU 0, clients on the rest")
    parser.add_argument("--handshakes", type=int, default=None,
                        help="handshakes per client process per round (1000; --quick 300)")
    args = parser.parse_args()
    args.flood_seconds = 8.0 if args.quick else 20.0
    args.real = 200
    args.client_timeout = 20.0
    args.sources = 512
    args.bulk = (20 if args.quick else 50) << 20
    args.idle = args.idle or (2000 if args.quick else 10000)
    args.handshakes = args.handshakes or (300 if args.quick else 1000)
    only = set(filter(None, args.only.split(",")))
    impls = ["tquic"] if args.no_aioquic else ["tquic", "aioquic"]
    certs = Path(tempfile.mkdtemp(prefix="stress-certs-"))
    from tquic.crypto.tls.certs import (
        certificate_to_pem,
        generate_ca,
        issue_certificate,
        private_key_to_pem,
    )

    # A CA and a P-256 leaf for localhost: the handshake-rate clients verify the chain.
    ca_cert, ca_key = generate_ca()
    leaf, key = issue_certificate(ca_cert, ca_key)
    (certs / "ca.pem").write_bytes(certificate_to_pem(ca_cert))
    (certs / "cert.pem").write_bytes(certificate_to_pem(leaf))
    (certs / "key.pem").write_bytes(private_key_to_pem(key))
    rows: list[dict[str, Any]] = []

    def run(name: str, fn: Any, *extra: Any) -> None:
        if only and name not in only:
            return
        for impl in impls:
            if impl == "aioquic" and extra and extra[0] > 1:
                continue  # aioquic has no multi-process server
            row = fn(impl, certs, args, *extra)
            rows.append(row)
            if not args.json:
                print(fmt(row), flush=True)

    if not args.json:
        print("| scenario | server | figures |\n| --- | --- | --- |", flush=True)
    run("initial", initial_flood)
    run("initial", initial_flood, 2)
    run("spoofed", spoofed_flood)
    run("garbage", garbage_flood)
    run("idle", idle)
    run("handshakes", handshake_rate, 1)
    run("handshakes", handshake_rate, 2)
    if args.json:
        print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
