"""Bonding in real time, as a user times it, beside the simulator's prediction.

Every run is three processes: ``tquic server``, ``tquic netem`` (the simulator's link
model in real time, one emulated link per client source address) and ``tquic client``
with one ``--path`` per link (127.0.0.2, .3, .4), downloading ``--size`` bytes (20 MB)
over HTTP/3.  Scenarios (``--only``):

  3paths     16/8/4 Mbit/s, 10/30/60 ms one-way, the defaults (bbr1, minrtt)
  2x16       2 x 16 Mbit/s, 10 and 20 ms one-way, no failure
  2x16-cut   the same, the 10 ms link blackholed for good 2.5 s after the client's
             first datagram (--cut-at; scaled with --size when not given)
  loss-bbr1  one 20 Mbit/s link, 15 ms one-way, 2 % loss each way, --cc bbr1
  loss-bbr3  the same with --cc bbr3

each with DEEP queues (1,000 packets, like an LTE modem) and ONE-BDP queues (rate x
RTT, at least 8 packets) (``--queues``), ``--runs`` times (3), every run reported.

Columns (one row per run, then the simulator's row for the same scenario):
  wall s     the client command from spawn to exit, what `time` calls "real"
  ratio      ideal time / wall: goodput over capacity as a user sees it.  Ideal = the
             size at the sum of the link rates; with the cut, both links until the cut,
             the survivor after
  xfer       ideal / transfer time, where transfer = netem's first datagram to the last
             byte delivered: the part of the run the simulator models
  gap %      how far real time falls from the simulator: (sim completion / wall - 1)
             and, for xfer, (sim completion / transfer - 1)
  1st ms     first datagram to the first byte delivered (handshake, paths, request)
  stall ms   longest gap between two deliveries of in-order data to the application
  exit ms    last byte delivered to process exit
  start s    spawn to the first datagram (interpreter start, imports, sockets)
  intact     every byte arrived, SHA-256 equal to the server's
  load       cores kept busy by OTHER processes during the run (from /proc/stat minus
             the client's, server's, netem's and this script's CPU): compare runs only
             where it is low
  cpu c/s/n  CPU seconds of client, server and netem during the run
  runq c/s/n seconds each was runnable but waiting for a CPU (/proc/PID/schedstat): the
             run's share of the machine's load, process by process
  late %     netem deliveries more than 2 ms behind its model (the relay itself was not
             scheduled in time), over all links and directions
  kdrop      UDP datagrams the kernel dropped for a full receive buffer (machine-wide
             counter, so other users' traffic may add to it)

For 2x16-cut the failure cost follows: (time with the cut - its ideal) - (time of the
2x16 runs without a cut - their ideal), per run against the mean of the 2x16 runs, in
wall and in transfer time, with the simulator's figure.

    python benchmarks/realtime.py                 # the full table (slow: ~10 minutes)
    python benchmarks/realtime.py --quick         # 2 MB, one run, deep queues only
    python benchmarks/realtime.py --only 2x16 2x16-cut --queues deep --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from realtime_procs import (
    PRIORITIES,
    Link,
    RealRun,
    expected_sha256,
    realtime_available,
    run_once,
    tquic_cmd,
    use_bytecode_cache,
)

MB = 1_000_000
DEFAULT_SIZE = 20 * MB
QUICK_SIZE = 2 * MB
DEEP_QUEUE = 1000
BDP_PACKET = 1500
CUT_AT = 2.5  # seconds after the first datagram, for a 20 MB download
QUEUES = ("deep", "bdp")
RT_WHAT = {"none": "nothing", "netem": "netem and the output reader",
           "all": "netem, the output reader, server and client"}


@dataclass(frozen=True, slots=True)
class Case:
    key: str
    title: str
    links: tuple[Link, ...]
    cc: str | None = None  # None: the command line's default, on both sides


def default_cc() -> str:
    """The controller ``tquic server`` uses without --cc: what a default run measures,
    and so what the simulator must model (it predicted CUBIC while the real runs used
    the command line's bbr1)."""
    from tquic.cli.main import build_parser

    args = build_parser("server").parse_args(["server", "--cert", "-", "--key", "-"])
    return str(args.cc)


def cases(cut_at: float) -> list[Case]:
    two = (Link(16e6, 0.010), Link(16e6, 0.020))
    lossy = (Link(20e6, 0.015, loss=0.02),)
    return [
        Case("3paths", "3 paths 16/8/4 Mbit/s, 10/30/60 ms, defaults",
             (Link(16e6, 0.010), Link(8e6, 0.030), Link(4e6, 0.060))),
        Case("2x16", "2 x 16 Mbit/s, 10/20 ms, no failure", two),
        Case("2x16-cut", f"2 x 16 Mbit/s, 10 ms link cut at {cut_at:g} s",
             (replace(two[0], cut_at=cut_at), two[1])),
        Case("loss-bbr1", "20 Mbit/s, 15 ms, 2 % loss each way, bbr1", lossy, "bbr1"),
        Case("loss-bbr3", "20 Mbit/s, 15 ms, 2 % loss each way, bbr3", lossy, "bbr3"),
    ]


CASE_KEYS = tuple(c.key for c in cases(CUT_AT))


def with_queue(links: Sequence[Link], queue: str) -> tuple[Link, ...]:
    """Deep: 1,000 packets; bdp: one bandwidth-delay product of 1500-byte packets."""
    if queue == "deep":
        return tuple(replace(link, queue_packets=DEEP_QUEUE) for link in links)
    return tuple(replace(link, queue_packets=max(8, math.ceil(
        link.rate_bps * 2 * link.delay / 8 / BDP_PACKET))) for link in links)


def ideal_time(links: Sequence[Link], size: int) -> float:
    """Seconds to move ``size`` bytes at the full rate of every live link."""
    bits = size * 8.0
    now = 0.0
    for cut in sorted({link.cut_at for link in links if link.cut_at is not None}):
        rate = sum(link.rate_bps for link in links if link.cut_at is None or link.cut_at > now)
        if bits <= rate * (cut - now):
            return now + bits / rate
        bits -= rate * (cut - now)
        now = cut
    rate = sum(link.rate_bps for link in links if link.cut_at is None or link.cut_at > now)
    return now + bits / rate if rate > 0 else math.inf


# -- the table --------------------------------------------------------------------------------

HEADER = (f"{'scenario':<10} {'queue':<5} {'run':>3} {'wall s':>7} {'ratio':>6} {'xfer':>6} "
          f"{'gap %':>6} {'xgap %':>6} {'1st ms':>6} {'stall ms':>8} {'exit ms':>7} {'start s':>7} "
          f"{'intact':>6} {'load':>5} {'cpu c/s/n':>14} {'runq c/s/n':>14} {'late %':>6} "
          f"{'kdrop':>5}")


def _f(value: float | None, fmt: str, width: int) -> str:
    return f"{'-':>{width}}" if value is None or not math.isfinite(value) else \
        format(value, f">{width}{fmt}")


def _pct(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den <= 0:
        return None
    return (num / den - 1.0) * 100.0


def real_row(key: str, queue: str, run: int, r: RealRun, ideal: float,
             sim: float | None) -> str:
    ratio = ideal / r.wall if r.wall else None
    xfer = ideal / r.transfer if r.transfer else None
    cpu = f"{r.cpu_client:.1f}/{r.cpu_server:.1f}/{r.cpu_netem:.1f}"
    runq = f"{r.wait_client:.1f}/{r.wait_server:.1f}/{r.wait_netem:.1f}"
    late = r.netem_late / r.netem_delivered * 100 if r.netem_delivered else None
    line = (f"{key:<10} {queue:<5} {run:>3} {r.wall:>7.2f} {_f(ratio, '.3f', 6)} "
            f"{_f(xfer, '.3f', 6)} {_f(_pct(sim, r.wall), '.1f', 6)} "
            f"{_f(_pct(sim, r.transfer), '.1f', 6)} "
            f"{_f(None if r.first_byte is None else r.first_byte * 1000, '.0f', 6)} "
            f"{r.stall * 1000:>8.0f} "
            f"{_f(None if r.exit_delay is None else r.exit_delay * 1000, '.0f', 7)} "
            f"{_f(r.startup, '.2f', 7)} {'yes' if r.intact else 'NO':>6} "
            f"{r.other_load:>5.2f} {cpu:>14} {runq:>14} {_f(late, '.1f', 6)} "
            f"{r.rcvbuf_drops:>5}")
    return line + (f"  error: {r.error}" if r.error else "")


def sim_row(key: str, queue: str, sim: dict[str, Any] | None, ideal: float) -> str:
    if sim is None:
        return f"{key:<10} {queue:<5} {'sim':>3} (not run)"
    done = sim["completion"]
    ratio = ideal / done if done else None
    first = sim["first_byte"]
    text = (f"{key:<10} {queue:<5} {'sim':>3} {_f(done, '.2f', 7)} {_f(ratio, '.3f', 6)} "
            f"{_f(ratio, '.3f', 6)} {'':>6} {'':>6} "
            f"{_f(None if first is None else first * 1000, '.0f', 6)} "
            f"{sim['stall'] * 1000:>8.0f} {'':>7} "
            f"{'':>7} {'yes' if sim['intact'] else 'NO':>6}")
    spread = ""
    if len(sim["completions"]) > 1 and all(c is not None for c in sim["completions"]):
        spread = f"  seeds {min(sim['completions']):.2f}-{max(sim['completions']):.2f} s;"
    return text + f"{spread}  (simulated in {sim['wall']:.1f} s)" + (
        f"  failure: {sim['failure']}" if sim["failure"] else "")


def failure_costs(rows: list[dict[str, Any]], sims: dict[str, Any],
                  out: Callable[[str], None]) -> list[dict[str, Any]]:
    """(time with the cut - ideal) - (time without - ideal), per cut run, per queue."""
    costs: list[dict[str, Any]] = []
    for queue in QUEUES:
        base = [r for r in rows if r["case"] == "2x16" and r["queue"] == queue and r["ok"]]
        cut = [r for r in rows if r["case"] == "2x16-cut" and r["queue"] == queue]
        if not base or not cut:
            continue
        ideal_base, ideal_cut = base[0]["ideal"], cut[0]["ideal"]
        wall_base = statistics.mean(r["wall"] for r in base) - ideal_base
        xfer_base = statistics.mean(r["transfer"] for r in base) - ideal_base
        per_run = [(r["wall"] - ideal_cut - wall_base, r["transfer"] - ideal_cut - xfer_base,
                    r["stall"]) for r in cut if r["ok"]]
        sim_base, sim_cut = sims.get(f"2x16/{queue}"), sims.get(f"2x16-cut/{queue}")
        sim_cost = None
        if sim_base and sim_cut and sim_base["completion"] and sim_cut["completion"]:
            sim_cost = ((sim_cut["completion"] - ideal_cut)
                        - (sim_base["completion"] - ideal_base))
        runs = ", ".join(f"{w:.2f} ({x:.2f}) stall {s * 1000:.0f} ms" for w, x, s in per_run)
        out(f"failure cost, {queue} queues: {runs or 'no intact run'}; "
            f"simulator {_f(sim_cost, '.2f', 0)} s  [wall (transfer) s per run; ideal "
            f"{ideal_cut:.2f} s with the cut, {ideal_base:.2f} s without]")
        costs.append({"queue": queue, "runs": [{"wall": w, "transfer": x, "stall": s}
                                               for w, x, s in per_run], "sim": sim_cost})
    return costs


# -- running ----------------------------------------------------------------------------------


def simulate(selected: list[Case], queues: Sequence[str], size: int, seeds: int,
             out: Callable[[str], None]) -> dict[str, Any]:
    """The simulator's figures per scenario and queue.  A lossy scenario is a different
    loss pattern per seed, so it runs ``seeds`` times and the figures are means (the
    single runs are kept); a loss-free one is the same every time and runs once."""
    from realtime_sim import predict

    sims: dict[str, Any] = {}
    for case in selected:
        lossy = any(link.loss for link in case.links)
        for queue in queues:
            runs = [predict(with_queue(case.links, queue), size, case.cc or default_cc(),
                            seed=seed)
                    for seed in range(1, (seeds if lossy else 1) + 1)]
            done = [p.completion for p in runs if p.completion is not None]
            entry: dict[str, Any] = {
                "completion": statistics.mean(done) if len(done) == len(runs) else None,
                "completions": [p.completion for p in runs],
                "stall": statistics.mean(p.stall for p in runs),
                "first_byte": runs[0].first_byte,
                "stalls": [p.stall for p in runs],
                "intact": all(p.intact for p in runs),
                "wall": sum(p.wall for p in runs),
                "failure": next((p.failure for p in runs if p.failure), None),
                "seeds": [p.as_dict() for p in runs],
            }
            sims[f"{case.key}/{queue}"] = entry
            each = ", ".join(_f(c, ".2f", 0) for c in entry["completions"])
            out(f"  simulated {case.key}/{queue}: {each} s, stall "
                f"{entry['stall'] * 1000:.0f} ms ({entry['wall']:.1f} s wall)")
    return sims


def run(args: argparse.Namespace, out: Callable[[str], None]) -> dict[str, Any]:
    size = args.size
    cut_at = args.cut_at if args.cut_at is not None else CUT_AT * size / DEFAULT_SIZE
    selected = [c for c in cases(cut_at) if c.key in args.only]
    queues = list(args.queues)
    started = time.monotonic()
    sims: dict[str, Any] = {}
    if not args.no_sim:
        # Before the real runs, so that the simulator's CPU never loads them.
        out("simulator predictions:")
        sims = simulate(selected, queues, size, args.sim_seeds, out)
    expected = expected_sha256(size)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="tquic-realtime-certs-") as tmp:
        import subprocess

        use_bytecode_cache(Path(tmp) / "pycache")
        subprocess.run(tquic_cmd("certs", tmp), check=True, capture_output=True)
        out(f"\nreal time: {size / MB:g} MB per run, {args.runs} run(s) per scenario, "
            f"SCHED_FIFO for: {RT_WHAT[args.rt]}")
        out(HEADER)
        for case in selected:
            for queue in queues:
                links = with_queue(case.links, queue)
                ideal = ideal_time(links, size)
                sim = sims.get(f"{case.key}/{queue}")
                for index in range(args.runs):
                    try:
                        r = run_once(links, size, case.cc, index + 1, Path(tmp), expected,
                                     args.rt)
                    except RuntimeError as exc:
                        r = RealRun(error=str(exc))
                    out(real_row(case.key, queue, index + 1, r, ideal,
                                 sim["completion"] if sim else None))
                    rows.append({"case": case.key, "title": case.title, "queue": queue,
                                 "run": index + 1, "cc": case.cc or default_cc(), "ideal": ideal,
                                 "links": [link.netem_profile() for link in links],
                                 "ok": r.intact and r.error is None and r.transfer is not None,
                                 **r.as_dict()})
                if sims or not args.no_sim:
                    out(sim_row(case.key, queue, sim, ideal))
    costs = failure_costs(rows, sims, out)
    out(f"total wall time {time.monotonic() - started:.0f} s")
    return {"size": size, "cut_at": cut_at, "priority": args.rt, "runs": rows, "sim": sims,
            "failure_cost": costs}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help=f"a smoke run: {QUICK_SIZE // MB} MB, one run, deep queues only "
                             "(explicit --size/--runs/--queues still win)")
    parser.add_argument("--size", type=int, help=f"bytes per download (default {DEFAULT_SIZE})")
    parser.add_argument("--runs", type=int, help="runs per scenario and queue (default 3)")
    parser.add_argument("--only", nargs="+", choices=CASE_KEYS, default=list(CASE_KEYS),
                        help="scenarios to run (default all)")
    parser.add_argument("--queues", nargs="+", choices=QUEUES,
                        help="deep (1,000 packets) and/or bdp (one BDP); default both")
    parser.add_argument("--cut-at", type=float, metavar="SECONDS",
                        help=f"when 2x16-cut loses its fast link, after the first datagram "
                             f"(default {CUT_AT:g} s x size / 20 MB)")
    parser.add_argument("--no-sim", action="store_true", help="skip the simulator's predictions")
    parser.add_argument("--sim-seeds", type=int, default=3, metavar="N",
                        help="simulate a lossy scenario with N seeds and compare with the "
                             "mean (default 3; loss-free scenarios are deterministic)")
    parser.add_argument("--rt", choices=PRIORITIES, default=None,
                        help="what runs at SCHED_FIFO priority (needs root): 'netem' (default "
                             "when allowed) = the emulated network and the output reader, so a "
                             "loaded machine does not bend the links' delays; 'all' = also "
                             "the tquic server and client (tquic as on an idle machine); "
                             "'none' = everything at normal priority")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write every figure here")
    args = parser.parse_args(argv)
    if args.size is None:
        args.size = QUICK_SIZE if args.quick else DEFAULT_SIZE
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    if args.rt is None:
        args.rt = "netem" if realtime_available() else "none"
    elif args.rt != "none" and not realtime_available():
        parser.error(f"--rt {args.rt}: SCHED_FIFO is not allowed here (needs root or "
                     "CAP_SYS_NICE); use --rt none")
    if args.queues is None:
        args.queues = ["deep"] if args.quick else list(QUEUES)
    if args.size < 1 or args.runs < 1 or args.sim_seeds < 1:
        parser.error("--size, --runs and --sim-seeds must be at least 1")
    if args.cut_at is not None and args.cut_at <= 0:
        parser.error("--cut-at must be more than 0 seconds")
    result = run(args, lambda line: print(line, flush=True))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    failed = [r for r in result["runs"] if not r["ok"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
