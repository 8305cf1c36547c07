"""Run every benchmark in this folder that is ready, one after another."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Benchmarks in the order a reader wants them: foundation first, then up the stack.
ORDER = [
    "packets.py", "handshake.py", "engine.py", "sim_suite.py", "bulk.py", "bulk_h3.py",
    "multipath.py", "cc_table.py", "ecn_table.py", "realtime.py", "netns_bonding.py",
    "webtransport.py",
]


def main() -> int:
    status = 0
    ran = 0
    for name in ORDER:
        script = HERE / name
        if not script.exists():
            continue
        print(f"\n== {name} ==", flush=True)
        ran += 1
        status |= subprocess.call([sys.executable, str(script), "--quick"])
    if ran == 0:
        print("no benchmarks yet")
    return status


if __name__ == "__main__":
    sys.exit(main())
