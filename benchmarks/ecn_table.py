"""ECN through the real engine over tquic.sim: classic ECN and L4S against drop-tail.

One QUIC download per row (``tquic.sim.workload.Download``, the server sends) over
a 20 Mbit/s link with 30 ms of round-trip propagation delay and a deep 4-BDP
queue; the bottleneck either drops when full (``drop-tail``), CE-marks ECT
datagrams beyond 5 ms of queue delay (``classic``, RFC 3168 step AQM), or marks
ECT(1) beyond 1 ms and ECT(0) beyond 5 ms (``l4s``, RFC 9332's idea for the L4S
queue).  The sender's ECN validation (RFC 9000 §13.4.2) runs as it would on the
internet.  Columns:

- ``goodput``: application bytes delivered / link rate over the whole run;
  ``steady``: the same after the first 2 s (slow start and ECN testing done);
- ``q p50/p95``: queueing delay at the bottleneck in ms (the wait a datagram
  entering the queue would have), sampled every 5 ms after the first second;
- ``drops``: datagrams the full queue dropped; ``CE``: datagrams marked CE;
- ``ecn``: the server path's ECN validation state at the end, and its codepoint.

``--quick`` runs 6 s instead of 15 s.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "sim"))

RATE = 20e6
RTT = 0.03
BDP = int(RATE / 8 * RTT)
SAMPLE_EVERY = 0.005
STEADY_FROM = 2.0

# (label, controller, link ECN mode)
ROWS = (
    ("newreno", "newreno", "none"),
    ("newreno", "newreno", "classic"),
    ("cubic", "cubic", "none"),
    ("cubic", "cubic", "classic"),
    ("prague", "prague", "none"),
    ("prague", "prague", "l4s"),
)


def percentile(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    ys = sorted(xs)
    return ys[min(len(ys) - 1, int(p * len(ys)))]


def run(cc: str, ecn: str, duration: float, seed: int = 1) -> dict[str, Any]:
    from interop_cases import client_config, server_config

    from tquic.sim.profile import LinkProfile, LinkSpec
    from tquic.sim.quic import QuicClientEndpoint, QuicServerEndpoint
    from tquic.sim.runner import Runner
    from tquic.sim.workload import Download

    runner = Runner(seed=seed, name="ecn", max_time=duration, stall_threshold=1.0)
    down = LinkProfile(rate_bps=RATE, delay=RTT / 2, queue_bytes=4 * BDP, ecn=ecn)
    up = LinkProfile(rate_bps=RATE, delay=RTT / 2, queue_bytes=4 * BDP)
    link = runner.add_link(LinkSpec(up, down, ("10.0.0.1", 50000), ("10.1.0.1", 443)))
    client = QuicClientEndpoint()
    server = QuicServerEndpoint(server_config(congestion_control=cc))
    size = int(RATE / 8 * duration * 1.2)  # more than the run can carry
    flow = runner.add_flow(client, server,
                           Download(client, server, client_config(), [size], seed=seed), [link])
    delays: list[float] = []
    delivered: list[tuple[float, int]] = []

    def tick(_: object) -> None:
        now = runner.loop.now
        delivered.append((now, flow.stats().bytes_delivered))
        if now >= 1.0:
            delays.append(link.down.queue_delay(now))
        runner.loop.call_at(now + SAMPLE_EVERY, tick, None)

    runner.loop.call_at(SAMPLE_EVERY, tick, None)
    runner.run()
    end_t, end_b = delivered[-1]
    steady = next((p for p in delivered if p[0] >= STEADY_FROM), delivered[0])
    stats = link.down.stats()
    path = server.connections[0].paths.primary
    return {
        "goodput": end_b * 8 / (RATE * end_t),
        "steady": (end_b - steady[1]) * 8 / (RATE * (end_t - steady[0])),
        "q50": percentile(delays, 0.5) * 1e3,
        "q95": percentile(delays, 0.95) * 1e3,
        "drops": stats.drops("queue"),
        "ce": stats.ce_marked,
        "ecn": f"{path.recovery.ecn.state.value}/{path.recovery.ecn.codepoint}",
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="6 s runs instead of 15 s")
    args = ap.parse_args(argv)
    duration = 6.0 if args.quick else 15.0
    print(f"ECN: engine over tquic.sim, {RATE / 1e6:.0f} Mbit/s, RTT {RTT * 1e3:.0f} ms, "
          f"4-BDP queue ({4 * BDP} B), {duration:.0f} s download")
    head = (f"{'cc':8s} {'link':9s} {'goodput':>7s} {'steady':>6s} {'q p50':>6s} {'q p95':>6s} "
            f"{'drops':>5s} {'CE':>5s}  ecn state/codepoint")
    print(head)
    print("-" * len(head))
    for label, cc, ecn in ROWS:
        started = time.process_time()
        m = run(cc, ecn, duration)
        link = {"none": "drop-tail", "classic": "classic", "l4s": "L4S"}[ecn]
        print(f"{label:8s} {link:9s} {m['goodput']:7.3f} {m['steady']:6.3f} {m['q50']:6.2f} "
              f"{m['q95']:6.2f} {m['drops']:5d} {m['ce']:5d}  {m['ecn']:12s}"
              f" ({time.process_time() - started:.1f} s CPU)", flush=True)
    print("goodput/steady = delivered / link rate (whole run / after 2 s); q = queueing delay "
          "in ms at the bottleneck; codepoint 2 = ECT(0), 1 = ECT(1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
