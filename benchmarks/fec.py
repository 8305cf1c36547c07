"""FEC on the bond's datagrams: residual loss, overhead and added latency, simulated and real.

One flow per row through ``tquic.bond.fec.FecSession`` (sender and receiver),
its datagrams over links with the simulator's loss models:

- (a) one link, 5 % random loss;
- (b) one link, Gilbert-Elliott bursts averaging 3 % (p = 0.93 %, r = 30 %:
  mean burst 3.3 packets);
- (c) a bond of a clean link and a 5 %-loss link: sources go where the scheduler
  puts them (simulated: alternately; real time: tquic's ``bond`` scheduler),
  repairs and copies prefer the path the FEC picks (the least lossy by its
  feedback); mode ``adaptive-nohint``: no preference at all, the scheduler
  places every datagram (the bond before per-datagram path preferences);
- (d) a bond of a clean link and one with Gilbert-Elliott bursts averaging 5 %
  (mean burst 3.3 packets): where repairs on the other link matter most.

Every link: 50 Mbit/s, 20 ms one way, both directions impaired alike (feedback
is lost too).  Flows: VoIP-like (50 packets/s of 200 bytes) and video-like
(5 Mbit/s: 30 frames/s of 1100-byte packets, 0.3 ms apart).  Modes: ``off``;
``xor`` (8:1); ``rs`` (16:4); ``adaptive`` (the default policy: <= 25 % bytes,
target 0.1 %); ``redundant`` (every packet twice).  All modes close a block 25
ms after its first source at the latest (``max_delay``).

Columns: ``resid`` residual loss (packets never delivered), ``ovh`` extra
bytes on the wire (FEC headers, repairs, copies, feedback) over the packets'
bytes, ``p50``/``p99`` added latency in ms (delivery - send - 20 ms) over the
packets delivered, ``rec`` packets rebuilt.

``--sim`` (default) runs the simulator (seconds); ``--real`` runs the same
driver in real time: each link a ``tquic netem`` relay on loopback, the FEC
payloads carried as QUIC DATAGRAMs (benchmarks/fec_real.py): over one
connection for one link, over one multipath connection for the bond (c), as
the bond runs it, each datagram sent with ``send_datagram(data, path_id)``.
``--quick`` shortens the runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fec_flow import FLOWS, MODES, NOHINT, Flow, FlowDriver, Result
from tquic.netem.spec import parse_profile
from tquic.paths.network_path import NetworkPath
from tquic.sim.clock import EventLoop
from tquic.sim.link import Pipe
from tquic.sim.profile import LinkProfile

DELAY = 0.02
LINK = "rate=50mbit,delay=20ms,queue=1000"
# Gilbert-Elliott averaging 3 %: P(good->bad) = 0.3 * 0.03 / 0.97, P(bad->good) = 30 %
# (5 %: 0.3 * 0.05 / 0.95)
SCENARIOS: dict[str, tuple[str, ...]] = {
    # no loss: the same flow's latency through the same stack, the baseline the added
    # latency of the others is "added" to (--scenarios 0; not in the default table)
    "0 no loss": (LINK,),
    "a 5% random": (f"{LINK},loss=5%",),
    "b GE 3% bursts": (f"{LINK},burst=0.928%:30%",),
    # the lossy link first: path 0, where a bond starts (the FEC must learn to leave it)
    "c clean + 5%": (f"{LINK},loss=5%", LINK),
    "d clean + GE 5%": (f"{LINK},burst=1.58%:30%", LINK),
}
"""Each link as a ``tquic netem`` profile (both directions): the simulated run parses
the same text into tquic.sim LinkProfiles."""


def sim_profiles(texts: tuple[str, ...]) -> tuple[LinkProfile, ...]:
    return tuple(parse_profile(t).up for t in texts)
DURATION = {"voip": 120.0, "video": 20.0}
_PATH = NetworkPath(("10.0.0.1", 1), ("10.0.0.2", 2))


class _Tap:
    __slots__ = ("fn",)

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def deliver(self, data: bytes, network_path: NetworkPath, ecn: int = 0) -> None:
        self.fn(data)


def run_sim(profiles: tuple[LinkProfile, ...], mode: str, flow: Flow, duration: float,
            seed: int = 1) -> Result:
    loop = EventLoop()
    rng = random.Random(seed)
    ups = [Pipe(loop, p, random.Random(rng.random()), f"up{i}") for i, p in enumerate(profiles)]
    downs = [Pipe(loop, p, random.Random(rng.random()), f"down{i}")
             for i, p in enumerate(profiles)]
    driver: FlowDriver | None = None

    turn = [0]

    def up(i: int | None, data: bytes) -> None:
        if i is None:  # no preference: a scheduler stand-in, round robin
            i = turn[0] % len(ups)
            turn[0] += 1
        ups[i].offer(data, to_rx, _PATH)

    def down(i: int, data: bytes) -> None:
        downs[i].offer(data, to_tx, _PATH)

    driver = FlowDriver(loop, mode, flow, len(profiles), up, down, DELAY)
    to_rx, to_tx = _Tap(driver.on_up), _Tap(driver.on_down)
    last = driver.start(duration)
    loop.run(until=last + 2.0)
    return driver.result()


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    ys = sorted(xs)
    return ys[min(len(ys) - 1, int(p * len(ys)))]


def row(result: Result) -> dict[str, float]:
    return {
        "residual_pct": round(100 * result.residual, 3),
        "overhead_pct": round(100 * result.overhead, 1),
        "added_p50_ms": round(1000 * pct(result.added, 0.5), 1),
        "added_p99_ms": round(1000 * pct(result.added, 0.99), 1),
        "recovered": result.recovered,
        "sent": result.sent,
        # the FEC's own share (rebuilt minus would-have-arrived; 0 for a packet that came
        # itself) and the noise floor (packets that came themselves), see fec_flow.Result
        "fec_p99_ms": round(1000 * pct(result.fec_added, 0.99), 1),
        "fec_max_ms": round(1000 * max(result.fec_added, default=0.0), 1),
        "direct_p99_ms": round(1000 * pct(result.direct_added, 0.99), 1),
        "timer_late_max_ms": round(1000 * max(result.timer_late, default=0.0), 1),
        "queued_max": max(result.queued, default=0),
    }


def print_table(rows: list[dict[str, Any]], out: Any = sys.stdout) -> None:
    head = f"{'run':4} {'scenario':15} {'flow':20} {'mode':14} {'resid%':>7} {'ovh%':>6} " \
           f"{'p50ms':>6} {'p99ms':>6} {'rec':>5} {'fec99':>6} {'fecmax':>6} {'src99':>6} " \
           f"{'tlate':>6} {'qmax':>5}"
    print(head, file=out)
    print("-" * len(head), file=out)
    for r in rows:
        print(f"{r['run']:4} {r['scenario']:15} {r['flow']:20} {r['mode']:14} "
              f"{r['residual_pct']:7.2f} {r['overhead_pct']:6.1f} {r['added_p50_ms']:6.1f} "
              f"{r['added_p99_ms']:6.1f} {r['recovered']:5d} {r['fec_p99_ms']:6.1f} "
              f"{r['fec_max_ms']:6.1f} {r['direct_p99_ms']:6.1f} {r['timer_late_max_ms']:6.1f} "
              f"{r['queued_max']:5d}",
              file=out)


VOICE_SWEEP = ("adaptive:32:25:0.25", "adaptive:32:40:0.25", "adaptive:32:60:0.25",
               "adaptive:32:80:0.25", "adaptive:32:120:0.25", "adaptive:32:160:0.25",
               "adaptive:32:25:0.5", "adaptive:32:40:0.5", "adaptive:32:25:1.0")
"""A call's time-bounded blocks: the block closes (repairs leave) ``max_delay`` after its
first packet; the overhead ceiling decides whether it is worth a repair then."""


def sweep(seed: int, quick: bool) -> int:
    """Why blocks, and how big: the latency a block costs against the overhead it saves."""
    profiles = sim_profiles(SCENARIOS["a 5% random"])
    rows = []
    for flow, modes in (
        (FLOWS[0], ("rs:2:1:25", "rs:4:1:70", "rs:8:2:150", *VOICE_SWEEP)),
        (FLOWS[1], ("rs:4:1:10", "rs:8:2:10", "rs:16:4:25", "rs:32:8:50", "adaptive:8:10",
                    "adaptive:16:25", "adaptive:32:25")),
    ):
        duration = DURATION[flow.kind] * (0.25 if quick else 1.0)
        for mode in modes:
            rows.append({"run": "sim", "scenario": "a 5% random", "flow": flow.name,
                         "mode": mode, **row(run_sim(profiles, mode, flow, duration, seed))})
    print_table(rows)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--sim", action="store_true", help="simulated runs (the default)")
    ap.add_argument("--real", action="store_true",
                    help="real-time runs through tquic netem relays and QUIC DATAGRAMs")
    ap.add_argument("--quick", action="store_true", help="shorter runs (noisier figures)")
    ap.add_argument("--modes", default=",".join((*MODES, NOHINT)),
                    help=f"comma-separated subset of modes ({NOHINT}: bonds only)")
    ap.add_argument("--scenarios", default="a,b,c,d", help="subset of a,b,c,d")
    ap.add_argument("--flows", default="voip,video", help="subset of voip,video")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1, metavar="N",
                    help="run every row N times (real time varies from run to run)")
    ap.add_argument("--cc", default=None,
                    help="--real: the QUIC connections' congestion controller (default "
                         "bbr3; the bond's own default is cubic)")
    ap.add_argument("--no-markers", action="store_true",
                    help="RTP marker bits clear (the FEC finds a video frame's end by its "
                         "pause, as for a flow that is not RTP)")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    ap.add_argument("--sweep", action="store_true",
                    help="block size and deadline vs residual, overhead and delay: RS k:k/4 "
                         "and adaptive, video over (a), simulated")
    args = ap.parse_args(argv)
    if args.sweep:
        return sweep(args.seed, args.quick)
    modes = [m for m in args.modes.split(",") if m]
    bad = [m for m in modes if m not in (*MODES, NOHINT)]
    if bad:
        ap.error(f"--modes: unknown {bad[0]!r}; choose from {', '.join((*MODES, NOHINT))}")
    scen = [s for s in SCENARIOS if s[0] in args.scenarios.split(",")]
    flows = [dataclasses.replace(f, markers=not args.no_markers) for f in FLOWS
             if f.kind in args.flows.split(",")]
    runs = (["sim"] if args.sim or not args.real else []) + (["real"] if args.real else [])
    rows: list[dict[str, Any]] = []
    for run in runs:
        for name in scen:
            for flow in flows:
                duration = DURATION[flow.kind] * (0.25 if args.quick else 1.0)
                if run == "real":
                    duration = min(duration, 30.0 if flow.kind == "voip" else 8.0)
                for mode in [m for m in modes for _ in range(max(1, args.repeat))]:
                    if mode == NOHINT and len(SCENARIOS[name]) < 2:
                        continue  # one link: nothing to prefer
                    if run == "sim":
                        result = run_sim(sim_profiles(SCENARIOS[name]), mode, flow, duration,
                                         args.seed)
                    else:
                        from fec_real import CC, run_real

                        result = run_real(SCENARIOS[name], mode, flow, duration, args.seed,
                                          args.cc or CC)
                        if not args.json:
                            print(f"  {name} / {flow.name} / {mode}: resid "
                                  f"{100 * result.residual:.2f} %", file=sys.stderr)
                    rows.append({"run": run, "scenario": name, "flow": flow.name, "mode": mode,
                                 **row(result)})
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print_table(rows)
        if args.real:
            from fec_real import other_load

            print(f"other load now: {other_load():.1f} cores busy (real-time rows suffer "
                  "when the machine is loaded)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
