"""One TCP flow through the bond's TCP lane over two shaped links: does it get the sum?

    sudo python3 benchmarks/tcp_lane.py [--rates 20,10] [--size-mb 16] [--repeat 3] [--json]

Two namespaces joined by two veth pairs with a token bucket (tbf) on both ends
(``tquic.testing.netns.Topology``: each link has its rate both ways and a 50 ms
queue).  The server namespace runs ``tquic bond server`` (lane allowed to its
loopback) and a plain HTTP server on its loopback; the client namespace runs
``tquic bond client --tun none --socks 127.0.0.1:1080`` with one ``--link``
per veth (pinned with ``%wanK``), and ``curl --socks5-hostname`` downloads the
file through the lane: one TCP connection → one HTTP/3 CONNECT stream over
both paths → one TCP connection on the server side.

Rows: the lane over link A alone, over link B alone, over both (the server's
scheduler per ``--schedulers``).  Columns: goodput (curl's size ÷ total time,
CONNECT included), ÷ the sum of the used links' rates, ÷ the best used link
alone (its own rate), whether the bytes arrived intact (SHA-256), and the CPU
seconds per GB the two daemons used.  Each row is the median of ``--repeat``.
Target (issue #14): the bonded single flow ≥ 0.90 of the sum.

Needs root (``ip netns``, ``tc``, a TUN for the server); without it, it says
why and exits 0.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tquic.testing.netns import LinkSpec, Topology, tquic_argv, unavailable_reason

TOKEN = "benchmark-lane-token"
PORT = 4433
SOCKS = 1080
WEB = 8080


@dataclass(frozen=True, slots=True)
class Result:
    seconds: float
    size: int
    intact: bool
    cpu: float  # CPU seconds of both daemons during the download

    @property
    def mbps(self) -> float:
        return self.size * 8 / self.seconds / 1e6 if self.seconds > 0 else 0.0


def _cpu(pid: int) -> float:
    """utime + stime of a process and its waited-for children, in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / ticks


class Lab:
    def __init__(self, rates: tuple[float, float], workdir: Path, size: int) -> None:
        self.net = Topology([LinkSpec(r) for r in rates])
        self.rates = rates
        self.workdir = workdir
        self.size = size
        self.sha256 = ""
        self.server: subprocess.Popen[bytes] | None = None
        self.server_scheduler = ""

    def __enter__(self) -> Lab:
        from tquic.crypto.tls.certs import generate_self_signed

        cert, key = generate_self_signed(("10.77.1.2",), key_type="ec")
        (self.workdir / "cert.pem").write_bytes(cert)
        (self.workdir / "key.pem").write_bytes(key)
        www = self.workdir / "www"
        www.mkdir()
        body = os.urandom(self.size)
        (www / "file.bin").write_bytes(body)
        self.sha256 = hashlib.sha256(body).hexdigest()
        self.net.build()
        web_log = self.workdir / "web.log"
        try:
            with open(web_log, "wb") as out:
                self.net.spawn("server", [sys.executable, "-u", "-m", "http.server", str(WEB),
                                          "--bind", "127.0.0.1", "--directory", str(www)],
                               stdout=out, stderr=subprocess.STDOUT)
            _wait_for(web_log, "Serving HTTP", 20)
        except BaseException:
            self.net.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.net.close()

    def serve(self, scheduler: str) -> None:
        if self.server is not None and self.server_scheduler == scheduler:
            return
        if self.server is not None:
            self.server.terminate()
            self.server.wait(10)
        log = self.workdir / f"server-{scheduler}.log"
        with open(log, "wb") as out:
            self.server = self.net.spawn("server", tquic_argv(
                "bond", "server", "--listen", f"10.77.1.2:{PORT}",
                "--cert", str(self.workdir / "cert.pem"), "--key", str(self.workdir / "key.pem"),
                "--pool", "10.98.0.0/24", "--token", TOKEN, "--lane-allow", "127.0.0.0/8",
                "--scheduler", scheduler), stdout=out, stderr=subprocess.STDOUT)
        self.server_scheduler = scheduler
        _wait_for(log, "server listening", 20)

    def download(self, links: tuple[int, ...], scheduler: str, run: int) -> Result:
        self.serve(scheduler)
        log = self.workdir / f"client-{scheduler}-{'+'.join(map(str, links))}-{run}.log"
        argv = ["bond", "client", "--server", f"10.77.1.2:{PORT}", "--insecure",
                "--token", TOKEN, "--tun", "none", "--state-dir", str(self.workdir),
                "--socks", f"127.0.0.1:{SOCKS}"]
        for k in links:
            link = self.net.link(k)
            argv += ["--link", f"{link.client_addr}%{link.client_dev}"]
        with open(log, "wb") as out:
            client = self.net.spawn("client", tquic_argv(*argv), stdout=out,
                                    stderr=subprocess.STDOUT)
        try:
            _wait_for(log, "tunnel up", 20)
            time.sleep(0.5 if len(links) == 1 else 1.5)  # extra paths validated
            assert self.server is not None
            cpu_before = _cpu(client.pid) + _cpu(self.server.pid)
            started = time.monotonic()
            result = subprocess.run(self.net.argv("client", [
                "curl", "--silent", "--show-error", "--max-time", "120",
                "--socks5-hostname", f"127.0.0.1:{SOCKS}",
                f"http://127.0.0.1:{WEB}/file.bin"]), capture_output=True, timeout=130,
                check=False)
            seconds = time.monotonic() - started
            cpu = _cpu(client.pid) + _cpu(self.server.pid) - cpu_before
        finally:
            client.terminate()
            try:
                client.wait(10)
            except subprocess.TimeoutExpired:
                client.kill()
        if result.returncode != 0:
            raise RuntimeError(f"curl failed: {result.stderr.decode(errors='replace').strip()}"
                               f"\n{log.read_text(errors='replace')[-2000:]}")
        intact = hashlib.sha256(result.stdout).hexdigest() == self.sha256
        return Result(seconds, len(result.stdout), intact, cpu)


def _wait_for(log: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text.encode() not in log.read_bytes():
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {text!r} in {log.name}:\n"
                               f"{log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="20,10", help="link rates in Mbit/s (default 20,10)")
    parser.add_argument("--size-mb", type=float, default=16.0, help="file size (default 16)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per row (median)")
    parser.add_argument("--schedulers", default="minrtt",
                        help="server schedulers for the bonded rows (default minrtt)")
    parser.add_argument("--json", action="store_true", help="rows as JSON")
    args = parser.parse_args()
    reason = unavailable_reason()
    if reason is None and shutil.which("curl") is None:
        reason = "curl is not installed"
    if reason is not None:
        print(f"tcp_lane benchmark skipped: {reason}")
        return 0
    try:
        a, b = (float(x) for x in args.rates.split(","))
    except ValueError:
        parser.error("--rates: two numbers, e.g. 20,10")
    rates = (a, b)
    rows: list[tuple[str, tuple[int, ...], str]] = [("lane, link A alone", (1,), "minrtt"),
                                                    ("lane, link B alone", (2,), "minrtt")]
    rows += [(f"lane, A+B bonded ({s})", (1, 2), s) for s in args.schedulers.split(",")]
    table: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="tquic-lane-") as tmp, Lab(
            rates, Path(tmp), int(args.size_mb * 1e6)) as lab:
        for name, links, scheduler in rows:
            runs = [lab.download(links, scheduler, i) for i in range(args.repeat)]
            median = statistics.median(r.mbps for r in runs)
            chosen = min(runs, key=lambda r: abs(r.mbps - median))
            used = sum(rates[k - 1] for k in links)
            best = max(rates[k - 1] for k in links)
            table.append({
                "row": name, "links": list(links), "scheduler": scheduler,
                "mbps": round(median, 2), "of_sum": round(median / used, 3),
                "of_best_link": round(median / best, 3),
                "runs_mbps": [round(r.mbps, 2) for r in runs],
                "intact": all(r.intact for r in runs),
                "cpu_s_per_gb": round(chosen.cpu / (chosen.size / 1e9), 1),
            })
    if args.json:
        print(json.dumps({"rates_mbit": list(rates), "size_mb": args.size_mb, "rows": table},
                         indent=2))
        return 0
    print(f"TCP lane, one TCP flow (curl via SOCKS5), links A={a:g} B={b:g} Mbit/s, "
          f"{args.size_mb:g} MB, median of {args.repeat}")
    print(f"{'row':<28} {'Mbit/s':>7} {'÷ sum':>6} {'÷ best':>7} {'intact':>6} "
          f"{'CPU s/GB':>9}  runs")
    for row in table:
        print(f"{row['row']:<28} {row['mbps']:>7.2f} {row['of_sum']:>6.3f} "
              f"{row['of_best_link']:>7.3f} {'yes' if row['intact'] else 'NO':>6} "
              f"{row['cpu_s_per_gb']:>9.1f}  {row['runs_mbps']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
