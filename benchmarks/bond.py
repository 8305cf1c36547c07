"""``tquic bond`` in network namespaces, against the links alone and kernel MPTCP (root).

The topology of ``tquic.testing.bond_lab``: a site namespace with two tbf-shaped
veth links (``--rates``, default 20 and 10 Mbit/s, 50 ms queues) to the bond
server's namespace, an internet namespace behind it.  One table:

  tun 1 flow     iperf3 -R (download), one TCP flow, through the site's TUN
  tun -P 4       the same with four flows
  tun UDP        iperf3 -u -R at 0.8 x the sum of the link rates: goodput and loss %
  mptcp 1 flow   kernel MPTCP on the same links (``ip mptcp endpoint … subflow``,
                 ``mptcpize run iperf3``), server in the server namespace
  link 1 alone   plain TCP over the best link, no tunnel (the "best link alone")

each as Mbit/s of iperf3 payload, ÷ the sum of the link rates (``/sum``) and ÷
the best link alone (``/best``).  Then:

  dip            iperf3 -R -i 0.1 through the TUN; link 1 (the fastest) is taken
                 down (``ip link set … down``) ~3 s in: the longest run of 0.1-s
                 intervals (from 1 s on) below half the survivor's rate alone, and the
                 longest at zero
  cpu            CPU seconds per GB of tunnel payload, and cores per 100 Mbit/s, for
                 each daemon (client, server) during the single-flow run

    sudo python benchmarks/bond.py                        # ~1.5 minutes
    sudo python benchmarks/bond.py --rates 50 25 --seconds 10 --cc bbr1 --json out.json
    sudo python benchmarks/bond.py --cpu --repeat 2       # only the cpu row, twice (~40 s)
    sudo python benchmarks/bond.py --cpu --profile prof/  # and where it goes (py-spy)

``--cpu`` runs only the single-flow download through the TUN and prints the CPU
figures (``--repeat N`` times on the same tunnel); ``--profile DIR`` also samples
both daemons with py-spy during it (``DIR/client.txt``, ``DIR/server.txt``: raw
collapsed stacks) and prints where the busy samples went, by module group
(:func:`breakdown`).

Payload efficiency caps every tunnel figure below 1.0 of the sum: a 1401-byte
inner packet (the TUN MTU once PMTUD validated the links' 1452-byte UDP payload)
costs 1401 + 51 (QUIC, DATAGRAM, context, sequence) + 28 (UDP/IP) + 14 (Ethernet)
bytes on a link, and carries 1349 bytes of TCP payload: 0.903 at most (0.883 with
the 1149-byte MTU of 1200-byte packets).  The MPTCP and link-alone rows pay only 66 bytes per
1448-byte segment: 0.956.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tquic.testing.bond_lab import INTERNET, BondLab
from tquic.testing.netns import LinkSpec, unavailable_reason


def _clock_ticks() -> float:
    return float(os.sysconf("SC_CLK_TCK"))


def cpu_times(pid: int) -> tuple[float, float]:
    """(utime, stime) of one process (the daemon is exec'd in place by ip netns exec/env):
    user time is Python, system time the kernel's work inside our syscalls (on veth
    links that includes the receiving namespace's stack, run in the sender's call)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    return int(fields[11]) / _clock_ticks(), int(fields[12]) / _clock_ticks()


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process."""
    return sum(cpu_times(pid))


# Where a sampled stack's innermost tquic/asyncio frame lives -> the group it counts for.
_GROUPS = (
    ("tquic/bond/tun.py", "bond TUN syscalls"),
    ("tquic/bond/", "bond"),
    ("tquic/h3/", "h3"),
    ("tquic/io/", "io"),
    ("tquic/crypto/", "engine crypto"),
    ("tquic/wire/", "engine wire"),
    ("tquic/paths/", "engine paths"),
    ("tquic/cc/", "engine cc"),
    ("tquic/recovery/", "engine recovery"),
    ("tquic/core/", "engine core"),
    ("tquic/", "tquic other"),
    ("asyncio/", "asyncio"),
    ("selectors.py", "asyncio"),
)


# Innermost frames of a thread waiting (py-spy's own idle detection misses some): the
# event loop's epoll, the default executor's workers.
_IDLE = ("select (", "_worker (", "wait (")


def breakdown(raw: str) -> dict[str, float]:
    """Share of the samples per group (py-spy ``--format raw``: ``frame;frame;… count``
    lines, outermost first).  A sample counts for the innermost frame that belongs to
    a group (a builtin such as os.write counts for its caller's group).  The special
    group "idle" is a thread waiting (:data:`_IDLE`)."""
    counts: dict[str, int] = {}
    total = 0
    for line in raw.splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        n = int(number)
        total += n
        frames = stack.split(";")
        group = "other"
        if any(idle in frames[-1] for idle in _IDLE):
            group = "idle"
        else:
            for frame in reversed(frames):
                found = next((g for key, g in _GROUPS if key in frame), None)
                if found is not None:
                    group = found
                    break
        counts[group] = counts.get(group, 0) + n
    return {g: c / total for g, c in sorted(counts.items(), key=lambda i: -i[1])} if total else {}


def _py_spy(pid: int, out: Path, seconds: float) -> subprocess.Popen[Any] | None:
    if shutil.which("py-spy") is None:
        print("--profile: py-spy is not installed; no profile")
        return None
    return subprocess.Popen(["py-spy", "record", "--pid", str(pid), "--format", "raw",
                             "--nolineno", "--full-filenames", "--duration", f"{seconds:g}",
                             "--rate", "200", "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def cpu_run(lab: BondLab, client: int, server: int, secs: float,
            profile: Path | None = None) -> tuple[float, dict[str, Any]]:
    """One single-flow TUN download: (its Mbit/s, the daemons' CPU figures)."""
    spies: list[subprocess.Popen[Any]] = []
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
        for who, pid in (("client", client), ("server", server)):
            spy = _py_spy(pid, profile / f"{who}.txt", secs)
            if spy is not None:
                spies.append(spy)
    c0, s0, t0 = cpu_times(client), cpu_times(server), time.monotonic()
    one = iperf(lab, lab.site_ns, lab.internet_ns, INTERNET, secs, "-R")
    c1, s1, t1 = cpu_times(client), cpu_times(server), time.monotonic()
    for spy in spies:
        spy.wait(timeout=30)
    payload_gb = (one["end"]["sum_received"]["bytes"] / 1e9) if "end" in one else float("nan")
    return received_mbit(one), {
        "client_s": sum(c1) - sum(c0), "server_s": sum(s1) - sum(s0),
        "client_sys_s": c1[1] - c0[1], "server_sys_s": s1[1] - s0[1],
        "wall_s": t1 - t0, "payload_gb": payload_gb}


def iperf(lab: BondLab, ns_client: str, ns_server: str, target: str, seconds: float,
          *args: str, server_prefix: tuple[str, ...] = (),
          client_prefix: tuple[str, ...] = ()) -> dict[str, Any]:
    server = lab.spawn(ns_server, [*server_prefix, "iperf3", "-s", "-1", "-B", target],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.4)
    result = lab.run(ns_client, [*client_prefix, "iperf3", "-c", target, "-t", f"{seconds:g}",
                                 "-J", *args], timeout=seconds + 30)
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
    try:
        data: dict[str, Any] = json.loads(result.stdout)
    except ValueError:
        return {"error": (result.stderr or result.stdout)[-300:]}
    return data


def received_mbit(data: dict[str, Any]) -> float:
    if "error" in data:
        return float("nan")
    end = data["end"]
    summary = end.get("sum_received") or end.get("sum")
    return float(summary["bits_per_second"]) / 1e6


def dip(data: dict[str, Any], threshold: float, start: float) -> tuple[float, float]:
    """(longest run of intervals below ``threshold`` Mbit/s, longest at ~zero), in s,
    counted from ``start`` seconds (when the link went down)."""
    worst = worst_zero = run = run_zero = 0.0
    for interval in data.get("intervals", []):
        s = interval["sum"]
        if s["end"] <= start:
            continue
        length = s["end"] - s["start"]
        rate = s["bits_per_second"] / 1e6
        run = run + length if rate < threshold else 0.0
        run_zero = run_zero + length if rate < 0.05 else 0.0
        worst = max(worst, run)
        worst_zero = max(worst_zero, run_zero)
    return worst, worst_zero


def mptcp(lab: BondLab, seconds: float, rates: list[float]) -> float:
    """Kernel MPTCP over the same links: endpoints with the subflow flag on the site."""
    if shutil.which("mptcpize") is None:
        return float("nan")
    site, srv = lab.site_ns, lab.server_ns
    for ns in (site, srv):
        lab.run(ns, ["sysctl", "-qw", "net.mptcp.enabled=1"], timeout=5)
        lab.run(ns, ["ip", "mptcp", "limits", "set", "subflow", "8", "add_addr_accepted", "8"],
                timeout=5)
    for k in range(2, len(rates) + 1):
        lab.run(site, ["ip", "mptcp", "endpoint", "add", f"10.77.{k}.1", "dev", f"wan{k}",
                       "subflow"], timeout=5)
    data = iperf(lab, site, srv, "10.77.1.2", seconds, "-R",
                 server_prefix=("mptcpize", "run"), client_prefix=("mptcpize", "run"))
    lab.run(site, ["ip", "mptcp", "endpoint", "flush"], timeout=5)
    return received_mbit(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[20.0, 10.0],
                        help="link rates in Mbit/s (default 20 10)")
    parser.add_argument("--seconds", type=float, default=8.0, help="per iperf3 run (default 8)")
    parser.add_argument("--cc", default=None, help="both daemons' congestion controller")
    parser.add_argument("--scheduler", default=None, help="both daemons' scheduler")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--cpu", action="store_true",
                        help="only the cpu row (one TUN download per --repeat)")
    parser.add_argument("--repeat", type=int, default=1, help="cpu runs with --cpu (default 1)")
    parser.add_argument("--profile", metavar="DIR", type=Path,
                        help="sample both daemons with py-spy during the cpu run (into DIR)")
    args = parser.parse_args(argv)
    reason = unavailable_reason()
    if reason is None and shutil.which("iperf3") is None:
        reason = "iperf3 is not installed"
    if reason is not None:
        print(f"bond benchmark skipped: {reason}")
        return 0
    extra: list[str] = []
    if args.cc:
        extra += ["--cc", args.cc]
    if args.scheduler:
        extra += ["--scheduler", args.scheduler]
    rates: list[float] = args.rates
    total = sum(rates)
    secs: float = args.seconds
    out: dict[str, Any] = {"rates": rates, "seconds": secs, "cc": args.cc,
                           "scheduler": args.scheduler}
    with tempfile.TemporaryDirectory(prefix="bondbench") as tmp, \
            BondLab([LinkSpec(r) for r in rates], tmp) as lab:
        if not args.cpu:
            out["best_alone"] = received_mbit(iperf(lab, lab.site_ns, lab.server_ns,
                                                    "10.77.1.2", secs, "-R"))
            out["mptcp"] = mptcp(lab, secs, rates)
        server = lab.start_server(*extra)
        if not lab.wait_for(Path(tmp) / "server.log", "server listening", 20):
            print((Path(tmp) / "server.log").read_text())
            return 1
        client = lab.start_client(*extra, links=[f"%wan{k}" for k in range(1, len(rates) + 1)])
        log = Path(tmp) / "client-bond0.log"
        if not lab.wait_for(log, "tunnel up", 20):
            print(log.read_text())
            return 1
        lab.wait_for(log, f"link wan{len(rates)} (%wan{len(rates)}): up", 10)
        time.sleep(1.0)
        if args.cpu:
            out["cpu_runs"] = []
            for k in range(max(1, args.repeat)):
                rate, cpu = cpu_run(lab, client.pid, server.pid, secs,
                                    args.profile if k == 0 else None)
                out["cpu_runs"].append({"mbit": rate, **cpu})
                _cpu_lines(cpu, f"run {k + 1}: {rate:.1f} Mbit/s")
            if args.profile is not None:
                out["profile"] = _profile_lines(args.profile)
            if args.json:
                Path(args.json).write_text(json.dumps(out, indent=1))
            return 0
        out["tun_1"], out["cpu"] = cpu_run(lab, client.pid, server.pid, secs, args.profile)
        out["tun_4"] = received_mbit(iperf(lab, lab.site_ns, lab.internet_ns, INTERNET, secs,
                                           "-R", "-P", "4"))
        udp = iperf(lab, lab.site_ns, lab.internet_ns, INTERNET, secs, "-R", "-u", "-b",
                    f"{0.8 * total:g}M", "-l", "1000")
        out["udp"] = received_mbit(udp)
        out["udp_loss_pct"] = (udp["end"]["sum"]["lost_percent"] if "end" in udp
                               else float("nan"))
        survivor = received_mbit(iperf(lab, lab.site_ns, lab.server_ns, "10.77.2.2", 3, "-R"))
        out["survivor_alone"] = survivor
        cutter = threading.Thread(target=lambda: (time.sleep(3.0), lab.topology.set_link(1, False)))
        cutter.start()
        died = iperf(lab, lab.site_ns, lab.internet_ns, INTERNET, max(secs, 8.0), "-R",
                     "-i", "0.1")
        cutter.join()
        # Counted from 1 s in (past iperf3's start-up), so the cut at ~3 s is inside.
        out["dip_below_half_s"], out["dip_zero_s"] = dip(died, survivor / 2, 1.0)
        out["dip_intervals"] = [round(i["sum"]["bits_per_second"] / 1e6, 2)
                                for i in died.get("intervals", [])]
        lab.topology.set_link(1, True)
    _table(out, total)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


def _table(out: dict[str, Any], total: float) -> None:
    best = out["best_alone"]
    rates = " + ".join(f"{r:g}" for r in out["rates"])
    print(f"\ntquic bond, links {rates} Mbit/s (tbf, 50 ms queues), {out['seconds']:g} s "
          f"per run, cc {out['cc'] or 'default'}, scheduler {out['scheduler'] or 'default'}")
    print(f"{'':16} {'Mbit/s':>8} {'/sum':>6} {'/best':>6}  note")
    rows = [("tun 1 flow", out["tun_1"], "TCP download through the TUN"),
            ("tun -P 4", out["tun_4"], "four TCP flows"),
            ("tun UDP 0.8x", out["udp"], f"UDP at {0.8 * total:g} Mbit/s: loss "
                                          f"{out['udp_loss_pct']:.2f} %"),
            ("mptcp 1 flow", out["mptcp"], "kernel MPTCP, same links"),
            ("link 1 alone", best, "plain TCP, no tunnel")]
    for name, value, note in rows:
        print(f"{name:16} {value:8.1f} {value / total:6.2f} {value / best:6.2f}  {note}")
    _cpu_lines(out["cpu"])
    print(f"link 1 dies ~3 s in: longest time below half the survivor's "
          f"{out['survivor_alone']:.1f} Mbit/s: {out['dip_below_half_s']:.1f} s; at zero: "
          f"{out['dip_zero_s']:.1f} s")



def _cpu_lines(cpu: dict[str, Any], title: str = "") -> None:
    if title:
        print(title)
    gb = cpu["payload_gb"]
    rate = gb * 8e3 / cpu["wall_s"] if cpu["wall_s"] else float("nan")  # Mbit/s
    for who in ("client", "server"):
        seconds = cpu[f"{who}_s"]
        system = cpu.get(f"{who}_sys_s", float("nan"))
        cores = seconds / cpu["wall_s"]
        print(f"cpu {who:6}  {seconds / gb if gb else float('nan'):7.1f} s/GB   "
              f"{cores / (rate / 100) if rate else float('nan'):5.2f} cores per 100 Mbit/s "
              f"({cores:.2f} cores at {rate:.1f} Mbit/s; kernel "
              f"{system / seconds if seconds else float('nan'):.0%})")


def _profile_lines(directory: Path) -> dict[str, dict[str, float]]:
    shares: dict[str, dict[str, float]] = {}
    for who in ("client", "server"):
        path = directory / f"{who}.txt"
        if not path.exists():
            continue
        shares[who] = groups = breakdown(path.read_text())
        busy = 1.0 - groups.get("idle", 0.0)
        parts = ", ".join(f"{g} {share / busy:.0%}" for g, share in groups.items()
                          if g != "idle" and busy > 0)
        print(f"profile {who} (share of busy samples; idle {groups.get('idle', 0.0):.0%} "
              f"of all): {parts}")
    return shares


if __name__ == "__main__":
    sys.exit(main())
