"""``tquic bond server --workers N``: aggregate throughput of several sites and CPU per
worker, with 1 worker and with 2 (root: network namespaces; skips with the reason).

A site namespace with two fast veth links (``--rate`` Mbit/s each, so the server's
CPU, not a link, is the limit) to the server namespace; ``--clients`` bond clients in
the site namespace (each its own TUN, token and QUIC connection, over both links),
each downloading from its own address in the internet namespace behind the server
with iperf3 (TCP, ``-R``) at the same time.  New connections land on a worker by the
kernel's 4-tuple hash; the benchmark restarts a client that lands on a worker which
already has its share, so the sites are spread evenly (as they are, on average, with
many sites).  One table per run:

  workers   sites per worker   aggregate Mbit/s   server CPU (cores) per worker + parent
  clients' CPU (cores)

    sudo python benchmarks/bond_workers.py                 # 1 and 2 workers, 4 sites
    sudo python benchmarks/bond_workers.py --workers 2 --clients 6 --seconds 15
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bond import cpu_seconds, received_mbit  # benchmarks/bond.py
from tquic.bond.auth import hash_token
from tquic.control.client import ControlClient, ControlClientError
from tquic.testing.bond_lab import BondLab
from tquic.testing.netns import LinkSpec, tquic_argv, unavailable_reason


def _token(i: int) -> str:
    return f"bench-site-{i}-token"


def _target(i: int) -> str:
    return f"10.88.0.{10 + i}"


def _status(control: ControlClient) -> dict[str, Any]:
    try:
        value: dict[str, Any] = control.get("/status")
    except ControlClientError:
        return {}
    return value


def _worker_of(control: ControlClient, name: str) -> int | None:
    for row in _status(control).get("workers", []):
        if name in row["clients"]:
            return int(row["index"])
    return None


def _wait(what: str, check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value is not None and value is not False:
            return value
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


def run(workers: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    with BondLab([LinkSpec(args.rate), LinkSpec(args.rate)], workdir) as lab:
        for i in range(args.clients):
            lab.run(lab.internet_ns, ["ip", "addr", "add", f"{_target(i)}/24", "dev", "up0"], 5)
        clients_file = workdir / "clients.toml"
        clients_file.write_text("".join(
            f'[[client]]\nname = "site{i}"\ntoken_sha256 = "{hash_token(_token(i))}"\n'
            for i in range(args.clients)))
        control_path = workdir / "control.sock"
        log = open(workdir / "server.log", "wb")  # noqa: SIM115 - kept by the child
        server = lab.spawn(lab.server_ns, tquic_argv(
            "bond", "server", "--listen", "0.0.0.0:4433", "--cert", str(lab.cert), "--key",
            str(lab.key), "--pool", "10.99.0.0/24", "--clients", str(clients_file), "--nat",
            "--workers", str(workers), "--control", str(control_path)), stdout=log, stderr=log)
        if not lab.wait_for(workdir / "server.log", "server listening", 60):
            raise RuntimeError((workdir / "server.log").read_text()[-2000:])
        control = ControlClient(str(control_path))
        share = math.ceil(args.clients / workers)
        placed: dict[int, int] = {}
        for i in range(args.clients):
            for attempt in range(20):
                proc = lab.start_client(
                    "--control", "none", token=_token(i), tun=f"bond{i}",
                    routes=(f"{_target(i)}/32",), log=workdir / f"client{i}-{attempt}.log")
                if not lab.wait_for(workdir / f"client{i}-{attempt}.log", "tunnel up", 40):
                    raise RuntimeError(f"site{i} did not connect")
                worker = 0 if workers == 1 else _wait(
                    f"site{i} in the status", lambda i=i: _worker_of(control, f"site{i}"), 20)
                if workers == 1 or placed.get(worker, 0) < share:
                    placed[worker] = placed.get(worker, 0) + 1
                    break
                proc.terminate()
                proc.wait(timeout=30)
                _wait(f"site{i} gone", lambda i=i: _worker_of(control, f"site{i}") is None
                      or None, 20)
        time.sleep(1.0)  # the second links' paths
        pids = {int(r["index"]): int(r["pid"]) for r in _status(control).get("workers", [])}
        if workers == 1:
            pids = {0: server.pid}
        client_pids = [p.pid for p in lab._processes[1:]]
        servers = [lab.spawn(lab.internet_ns, ["iperf3", "-s", "-1", "-B", _target(i)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                   for i in range(args.clients)]
        time.sleep(0.5)
        cpu0 = {w: cpu_seconds(p) for w, p in pids.items()}
        parent0 = cpu_seconds(server.pid)
        clients0 = sum(cpu_seconds(p) for p in client_pids)
        load = os.getloadavg()[0]
        start = time.monotonic()
        runs = [subprocess.Popen(lab.argv(lab.site_ns, [
            "iperf3", "-c", _target(i), "-R", "-t", f"{args.seconds:g}", "-J"]),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            for i in range(args.clients)]
        outputs = [r.communicate(timeout=args.seconds + 60)[0] for r in runs]
        elapsed = time.monotonic() - start
        cpu = {w: (cpu_seconds(p) - cpu0[w]) / elapsed for w, p in pids.items()}
        parent = (cpu_seconds(server.pid) - parent0) / elapsed if workers > 1 else 0.0
        clients_cpu = (sum(cpu_seconds(p) for p in client_pids) - clients0) / elapsed
        for s in servers:
            s.wait(timeout=10)
        rates = []
        for out in outputs:
            try:
                rates.append(received_mbit(json.loads(out)))
            except ValueError:
                rates.append(float("nan"))
        server.terminate()
        server.wait(timeout=30)
    return {"workers": workers, "clients": args.clients, "placement": placed, "load": load,
            "mbit": rates, "total_mbit": sum(r for r in rates if r == r),
            "cpu_per_worker": cpu, "parent_cpu": parent, "clients_cpu": clients_cpu}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="worker counts to compare (default 1 2)")
    parser.add_argument("--clients", type=int, default=4, help="bond sites (default 4)")
    parser.add_argument("--seconds", type=float, default=10.0, help="iperf3 time (default 10)")
    parser.add_argument("--rate", type=float, default=1000.0,
                        help="each link's rate in Mbit/s (default 1000: not the limit)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    reason = unavailable_reason()
    if reason is None and shutil.which("iperf3") is None:
        reason = "iperf3 is not installed"
    if reason is not None:
        print(f"skipped: {reason}")
        return 0
    results = []
    with tempfile.TemporaryDirectory(prefix="tquic-bond-workers-") as tmp:
        for workers in args.workers:
            results.append(run(workers, args, Path(tmp) / f"w{workers}"))
    print("| workers | sites per worker | aggregate Mbit/s (per site) | server CPU, cores "
          "(per worker; parent) | clients' CPU, cores | load average |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        per_site = ", ".join(f"{m:.0f}" for m in r["mbit"])
        per_worker = " + ".join(f"{c:.2f}" for _, c in sorted(r["cpu_per_worker"].items()))
        sites = "/".join(str(r["placement"].get(w, 0)) for w in range(r["workers"]))
        print(f"| {r['workers']} | {sites} | {r['total_mbit']:.1f} ({per_site}) | "
              f"{per_worker}; {r['parent_cpu']:.3f} | {r['clients_cpu']:.2f} | "
              f"{r['load']:.1f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
