"""Multipath bonding on the simulator: aggregate goodput, failover, flapping, backup.

Every run is a QUIC download through the real engine over tquic.sim links; the
client opens one path per link (draft-ietf-quic-multipath).  Rows:

- ``hetero3``: links of 50 Mbit/s / 20 ms RTT, 20 Mbit/s / 60 ms, 10 Mbit/s /
  120 ms, each with a drop-tail queue of one BDP; a 60 MB download (--quick:
  15 MB); goodput / 80 Mbit/s for every scheduler x congestion controller
  (cubic, newreno and the registered BBRs); then the same with 1 % random loss
  on the third link.  ``mid`` is how full the links ran in the middle half of
  the transfer (start-up and tail excluded).  Single-path rows (the 50 Mbit/s link alone, goodput /
  50 Mbit/s) are the baseline.
- ``failover``: two 30 Mbit/s links (20 and 40 ms RTT); the first is
  blackholed at t = 5 s for good; 40 MB arrive SHA-256-identical; the longest
  stall of in-order delivery (target <= 250 ms).
- ``flap``: the same two links, the first down 1 s after every 2 s up; the
  transfer completes; goodput / time-averaged capacity.
- ``backup``: the second link opened as a backup path (PATH_STATUS_BACKUP);
  what it carried while the primary was up, and the stall when the primary
  dies at t = 3 s.

    python benchmarks/multipath.py [--quick] [--json FILE] [--schedulers A B]
        [--cc X Y] [--only hetero3 failover flap backup]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tquic.cc import available_controllers
from tquic.demo import scenarios as sc
from tquic.demo.scenarios import MB, ScenarioResult
from tquic.paths.manager import PathManager
from tquic.paths.schedulers import available_schedulers

del PathManager  # imported for its side effect: the built-in schedulers are registered

DEFAULT_SCHEDULER = "minrtt"
DEFAULT_CC = "cubic"
GOODPUT_TARGET = 0.90
STALL_TARGET = 0.250
SCENARIOS = ("hetero3", "failover", "flap", "backup")


def controllers() -> list[str]:
    """cubic, newreno and every registered BBR (``bbr`` itself only if it is not an
    alias of a numbered one)."""
    names = available_controllers()
    out: list[str] = [n for n in ("cubic", "newreno") if n in names]
    out += [n for n in names if n.startswith("bbr") and n != "bbr"]
    if "bbr" in names and not out[2:]:
        out.append("bbr")
    return out


def _fmt_ratio(r: ScenarioResult) -> str:
    ratio = r.goodput_ratio
    if not r.completed or ratio is None:
        return "FAIL"
    return f"{ratio:.3f}" + ("" if r.intact else "!")


def _row(scenario: str, variant: str, r: ScenarioResult, extra: str = "") -> str:
    share = "/".join(f"{b / max(1, sum(r.link_bytes)) * 100:.0f}" for b in r.link_bytes)
    goodput = "-" if r.goodput_bps is None else f"{r.goodput_bps / 1e6:.1f}"
    done = "-" if r.completion_time is None else f"{r.completion_time:.2f}"
    steady = "-" if r.steady_utilisation is None else f"{r.steady_utilisation:.2f}"
    return (f"{scenario:<16} {variant:<20} {goodput:>8} {_fmt_ratio(r):>7} {steady:>6} "
            f"{r.max_stall * 1000:>7.0f} {done:>7} {share:>11} {r.wall_time:>6.1f}  {extra}")


HEADER = (f"{'scenario':<16} {'scheduler/cc':<20} {'Mbit/s':>8} {'ratio':>7} {'mid':>6} "
          f"{'stall':>7} {'done s':>7} {'share %':>11} {'wall':>6}  notes")


def run(args: argparse.Namespace, out: Callable[[str], None]) -> list[dict[str, object]]:
    quick = bool(args.quick)
    schedulers = args.schedulers or available_schedulers()
    ccs = args.cc or controllers()
    only = args.only or SCENARIOS
    rows: list[dict[str, object]] = []

    def record(scenario: str, variant: str, r: ScenarioResult, notes: str = "") -> None:
        out(_row(scenario, variant, r, notes))
        rows.append({"scenario": scenario, "variant": variant, "notes": notes, **r.as_dict()})

    out(HEADER)
    if "hetero3" in only:
        size = (15 if quick else 60) * MB
        for cc in ccs:
            base = sc.hetero3(size, congestion_control=cc, multipath=False)
            record("single 50M", f"-/{cc}", base, "goodput / 50 Mbit/s")
        for loss in (0.0, 0.01):
            name = "hetero3" if not loss else "hetero3 1%loss"
            for scheduler in schedulers:
                for cc in ccs:
                    r = sc.hetero3(size, scheduler=scheduler, congestion_control=cc,
                                   loss_on_third=loss)
                    notes = ""
                    if scheduler == DEFAULT_SCHEDULER and cc == DEFAULT_CC and loss:
                        notes = "default (the target is for the loss-free links)"
                    elif scheduler == DEFAULT_SCHEDULER and cc == DEFAULT_CC:
                        ok = (r.goodput_ratio or 0) >= GOODPUT_TARGET and r.intact
                        notes = f"default; target >= {GOODPUT_TARGET}: {'met' if ok else 'MISSED'}"
                    record(name, f"{scheduler}/{cc}", r, notes)
    scheds = [DEFAULT_SCHEDULER, *(s for s in schedulers if s != DEFAULT_SCHEDULER)]
    if not args.all_schedulers_for_failover:
        scheds = scheds[:1] + [s for s in ("blest", "roundrobin") if s in scheds[1:]]
    if "failover" in only:
        for scheduler in scheds:
            r = sc.failover((15 if quick else 40) * MB, fail_at=2.0 if quick else 5.0,
                            scheduler=scheduler)
            ok = r.completed and r.intact and r.max_stall <= STALL_TARGET
            record("failover", f"{scheduler}/{DEFAULT_CC}", r,
                   f"stall target <= {STALL_TARGET * 1000:.0f} ms: {'met' if ok else 'MISSED'}"
                   + ("" if r.intact else "; DATA MISMATCH"))
    if "flap" in only:
        for scheduler in scheds:
            r = sc.flap((25 if quick else 40) * MB, scheduler=scheduler)
            record("flap 2s up/1s dn", f"{scheduler}/{DEFAULT_CC}", r,
                   f"completed: {r.completed and r.intact}; paths opened {r.paths_opened}")
    if "backup" in only:
        for scheduler in scheds:
            fail_at = 1.5 if quick else 3.0
            r = sc.backup((10 if quick else 20) * MB, fail_at=fail_at, scheduler=scheduler)
            before = dict(r.link_bytes_at).get(fail_at)
            standby = "?" if before is None else str(before[1])
            ok = r.completed and r.intact and r.max_stall <= STALL_TARGET and before is not None
            record("backup", f"{scheduler}/{DEFAULT_CC}", r,
                   f"standby carried {standby} B before t={fail_at:g}s; "
                   f"takeover {'met' if ok else 'MISSED'} the {STALL_TARGET * 1000:.0f} ms target")
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="15 MB instead of 60 MB, etc.")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write every row here")
    parser.add_argument("--schedulers", nargs="*", help="schedulers for hetero3 (default all)")
    parser.add_argument("--cc", nargs="*", help="controllers for hetero3 (default cubic, "
                                                "newreno and the BBRs)")
    parser.add_argument("--only", nargs="*", choices=SCENARIOS, help="scenarios to run")
    parser.add_argument("--all-schedulers-for-failover", action="store_true",
                        help="failover/flap/backup with every scheduler (default: minrtt, "
                             "blest, roundrobin)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    print("columns: goodput, ratio = goodput / link capacity (time-averaged for flap), "
          "mid = link use in the middle half of the transfer (UDP bytes / capacity), "
          "longest in-order delivery stall (ms), completion time, bytes per link (%), "
          "wall seconds", flush=True)
    rows = run(args, lambda line: print(line, flush=True))
    print(f"total wall time {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
