"""The simulator's own speed, then the interop-runner scenario suite on the engine.

1. Overhead: a dummy blaster/echo pair (no QUIC) pushes datagrams through a
   rate-limited, lossy, jittery link; prints events/s and datagrams/s of the
   simulator alone -- the ceiling the engine runs under.
2. Scenarios: every case of tests/sim/interop_cases.py (the QUIC interop
   runner's test cases), heavy ones included, in one table: case, result,
   sim time, wall time, goodput ratio.

    python benchmarks/sim_suite.py [--quick] [--only CASE ...] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tquic.paths.network_path import NetworkPath
from tquic.sim import CLIENT_ADDR, SERVER_ADDR, LinkProfile, Side, single_link
from tquic.sim.dummy import Blaster, BlastWorkload, Echo

ROOT = Path(__file__).resolve().parent.parent


def overhead(count: int) -> dict[str, float]:
    profile = LinkProfile(rate_bps=1e9, delay=0.01, jitter=0.001, loss=0.01, queue_packets=1000)
    client = Blaster(NetworkPath(CLIENT_ADDR, SERVER_ADDR), count, 1200, interval=1e-5)
    server = Echo(echo=True)
    wall = time.perf_counter()
    report = single_link("overhead", profile, max_time=1e6).run(
        client, server, BlastWorkload(count, sink=Side.CLIENT)
    )
    wall = time.perf_counter() - wall
    datagrams = sum(ls.up.offered + ls.down.offered for ls in report.links)
    return {
        "events": report.events,
        "datagrams": datagrams,
        "wall": wall,
        "events_per_s": report.events / wall,
        "datagrams_per_s": datagrams / wall,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller overhead run, fast cases")
    parser.add_argument("--only", nargs="*", help="case names to run")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()

    o = overhead(20_000 if args.quick else 100_000)
    print(
        f"simulator overhead (dummy endpoints): {o['events']:.0f} events, "
        f"{o['datagrams']:.0f} datagrams in {o['wall']:.2f} s -> "
        f"{o['events_per_s'] / 1e3:.0f} k events/s, {o['datagrams_per_s'] / 1e3:.0f} k datagrams/s"
    )
    results: dict[str, object] = {"overhead": o}

    sys.path.insert(0, str(ROOT / "tests" / "sim"))
    try:
        import interop_cases
    except ImportError as exc:  # the engine is not there yet
        print(f"scenario suite skipped: {exc}")
        interop_cases = None
    if interop_cases is not None:
        results["cases"] = interop_cases.run_suite(
            quick=args.quick, only=args.only or None, out=sys.stdout
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
