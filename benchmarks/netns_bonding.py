"""Bonding over real kernel links: two veth pairs between network namespaces, shaped with tbf.

    sudo python3 benchmarks/netns_bonding.py [--quick] [--rates 20,10] [--json]

``tquic server`` runs in one namespace and ``tquic client --path
10.77.k.1%wan{k}`` in the other (each path pinned to its veth with
SO_BINDTODEVICE); each link is a veth pair with a token bucket (tbf) on both
ends, so it has its rate in both directions and a queue of 50 ms, and no
added delay.  Rows: each link alone, both bonded (per scheduler), a bonded
download whose first link goes down after 40 % of the file, and a flap: the
first link goes down after 30 % and comes back (``ip link set … up``, routes
restored) 1.5 s later; once with the client's path keeper re-opening a path
on it (the default), once with ``--no-reopen``.  Columns: goodput, its ratio
to the sum of the used links' rates (for the failover and flap rows: to the
capacity averaged over the time each link was up), the longest delivery stall
(in-order data to the application, from the client's qlog), the share of
bytes per link (the client's interface counters), the share link A carried
after it came back (flap rows), and whether the file arrived intact
(SHA-256).  Each row is the median of ``--repeat`` runs.

Needs root (``ip netns``, ``tc``); without it, it says why and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from tquic.testing.bonding import BondingLab, Transfer
from tquic.testing.netns import unavailable_reason


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    links: tuple[int, ...]
    scheduler: str
    down_link: int | None = None
    down_fraction: float = 0.4
    up_after: float | None = None  # seconds the down link stays down (a flap)
    extra: tuple[str, ...] = ()  # more tquic client options


FLAP_DOWN = 1.5  # seconds link A is down in the flap rows


def _rows(schedulers: list[str]) -> list[Row]:
    rows = [Row("link A alone", (1,), "minrtt"), Row("link B alone", (2,), "minrtt")]
    rows += [Row(f"bonded A+B {s}", (1, 2), s) for s in schedulers]
    rows.append(Row("failover: A down at 40 %", (1, 2), schedulers[0], down_link=1))
    rows.append(Row(f"flap: A down {FLAP_DOWN:g} s", (1, 2), schedulers[0], down_link=1,
                    down_fraction=0.3, up_after=FLAP_DOWN))
    rows.append(Row("flap, --no-reopen", (1, 2), schedulers[0], down_link=1,
                    down_fraction=0.3, up_after=FLAP_DOWN, extra=("--no-reopen",)))
    return rows


def _capacity(row: Row, rates: tuple[float, float], t: Transfer) -> float:
    """Mbit/s the used links offered on average while the transfer ran."""
    total = sum(rates[k - 1] for k in row.links)
    if row.down_link is None or t.down_at is None or t.seconds <= 0:
        return total
    start = min(max(t.down_at, 0.0), t.seconds)
    end = t.seconds if row.up_after is None else min(start + row.up_after, t.seconds)
    lost = rates[row.down_link - 1]
    return (total * t.seconds - lost * (end - start)) / t.seconds


def _summary(row: Row, rates: tuple[float, float], runs: list[Transfer]) -> dict[str, Any]:
    mbps = [t.mbps for t in runs]
    median = statistics.median(mbps)
    # The run that gave the median (lower median for an even count) speaks for the row.
    chosen = min(runs, key=lambda t: abs(t.mbps - median))
    stalls = [t.stall.seconds for t in runs if t.stall is not None]
    link_total = sum(chosen.link_bytes) or 1
    after_up = chosen.link_bytes_after_up
    return {
        "row": row.name, "links": list(row.links), "scheduler": row.scheduler,
        "rates_mbit": [rates[k - 1] for k in row.links],
        "mbps": round(median, 2), "mbps_min": round(min(mbps), 2),
        "mbps_max": round(max(mbps), 2),
        "ratio": round(median / _capacity(row, rates, chosen), 3),
        "longest_stall_ms": round(max(stalls) * 1000, 1) if stalls else None,
        "link_share": [round(b / link_total, 3) for b in chosen.link_bytes],
        "down_at_s": None if chosen.down_at is None else round(chosen.down_at, 2),
        # Of what the links received after link A came back, the share link A carried.
        "a_share_after_up": (None if after_up is None
                             else round(after_up[0] / (sum(after_up) or 1), 3)),
        "intact": all(t.intact for t in runs),
        "errors": [t.error for t in runs if t.error],
        "runs": len(runs),
    }


def _print_table(results: list[dict[str, Any]], rates: tuple[float, float]) -> None:
    print(f"links: A = {rates[0]:g} Mbit/s, B = {rates[1]:g} Mbit/s (tbf both ways, "
          f"50 ms queue, no added delay)")
    print(f"{'row':<26} {'Mbit/s':>7} {'(min-max)':>13} {'ratio':>6} {'stall ms':>9} "
          f"{'A/B share':>11} {'A back':>6} {'intact':>6}")
    for r in results:
        spread = f"{r['mbps_min']:.1f}-{r['mbps_max']:.1f}"
        stall = "-" if r["longest_stall_ms"] is None else f"{r['longest_stall_ms']:.0f}"
        share = "/".join(f"{s:.0%}" for s in r["link_share"])
        back = "-" if r["a_share_after_up"] is None else f"{r['a_share_after_up']:.0%}"
        print(f"{r['row']:<26} {r['mbps']:7.1f} {spread:>13} {r['ratio']:6.2f} {stall:>9} "
              f"{share:>11} {back:>6} {'yes' if r['intact'] else 'NO':>6}")
    print("ratio: goodput / sum of the used links' rates (failover, flap: / the time-averaged "
          "capacity); stall: longest time in-order delivery stood still; A back: link A's "
          "share of the bytes received after it came back up")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="8 MB, one run per row")
    parser.add_argument("--rates", default="20,10", help="Mbit/s of links A,B (default 20,10)")
    parser.add_argument("--size", type=float, help="MB per download (default 20; --quick 8)")
    parser.add_argument("--repeat", type=int, help="runs per row (default 3; --quick 1)")
    parser.add_argument("--schedulers", default="minrtt,blest",
                        help="comma-separated schedulers for the bonded rows (the server's)")
    parser.add_argument("--cc", default="cubic", help="congestion controller (default cubic)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args()
    reason = unavailable_reason()
    if reason is not None:
        print(f"netns_bonding: skipped: {reason}")
        return 0
    try:
        a, b = (float(x) for x in args.rates.split(","))
    except ValueError:
        parser.error(f"--rates: {args.rates!r}; expected two numbers, e.g. 20,10")
    rates = (a, b)
    size = int((args.size or (8 if args.quick else 20)) * 1e6)
    repeat = args.repeat or (1 if args.quick else 3)
    schedulers = [s.strip() for s in args.schedulers.split(",") if s.strip()]
    load = os.getloadavg()[0]
    started = time.monotonic()
    results = []
    with tempfile.TemporaryDirectory(prefix="tquic-netns-") as workdir, \
            BondingLab(rates, workdir, size=size, cc=args.cc) as lab:
        for row in _rows(schedulers):
            runs = [lab.download(row.links, scheduler=row.scheduler, down_link=row.down_link,
                                 down_fraction=row.down_fraction, up_after=row.up_after,
                                 extra=row.extra, timeout=30 + size * 8 / 1e6 / min(rates))
                    for _ in range(repeat)]
            results.append(_summary(row, rates, runs))
            if not args.json:
                print(f"  {row.name}: {[round(t.mbps, 1) for t in runs]} Mbit/s", flush=True)
    meta = {"size_bytes": size, "repeat": repeat, "cc": args.cc, "rates_mbit": list(rates),
            "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2),
            "wall_seconds": round(time.monotonic() - started, 1), "cpus": os.cpu_count()}
    if args.json:
        print(json.dumps({"meta": meta, "rows": results}, indent=1))
    else:
        _print_table(results, rates)
        print(f"{size / 1e6:g} MB per download, {repeat} run(s) per row, cc {args.cc}; "
              f"load average {meta['load_before']} -> {meta['load_after']} on "
              f"{meta['cpus']} CPUs; {meta['wall_seconds']} s")
    return 0 if all(r["intact"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
