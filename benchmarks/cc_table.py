"""Congestion controllers compared in one table, through the real engine over tquic.sim.

Every run is a QUIC download (``tquic.sim.workload.Download``) from a
``QuicServerEndpoint`` whose configuration names the controller, over a
simulated 20 Mbit/s link with 30 ms of round-trip propagation delay.  Columns:

- ``0% .. 5%``: goodput (application bytes delivered) / link rate over the
  run, one-BDP drop-tail queue, random loss on the data direction;
- ``q p50/p95``: RTT / min RTT with a 4-BDP queue and no loss, sampled every
  5 ms from the bottleneck's queue length after the first second;
- ``jain``: Jain's fairness index of two flows of the controller sharing the
  bottleneck (second flow starts 0.5 s later), over the second half of the run;
- ``vs cubic``: this controller's share of the bottleneck against one CUBIC flow;
- ``conv``: capacity 20 -> 5 -> 20 Mbit/s at 1/3 and 2/3 of the run: utilisation
  of the 5 Mbit/s phase (from 0.5 s after the step), and seconds after the step up
  until a 0.5 s window reaches 80 % of 20 Mbit/s -- both from the bytes the
  bottleneck delivered (engine: datagrams with UDP/IP overhead, retransmissions
  included; testbed: unique packets);
- ``bond`` (engine only): a multipath download of 40 MB (minrtt scheduler, this
  controller on every path) over three WAN links with random loss -- 50 Mbit/s /
  40 ms / 2 %, 20 Mbit/s / 60 ms / 1 %, 10 Mbit/s / 25 ms / 0 % -- goodput / 80 Mbit/s.

``--quick`` shortens every run (8 s instead of 20 s); ``--seeds N`` averages the
loss columns over N seeds (BBR at 2 % loss varies by about +-0.05 from run to
run: the loss pattern and the random probe timing); ``--harness`` uses the
controller-level testbed (``cc_harness.py``: PathRecovery + controller over a
modelled bottleneck) instead of the engine; ``--cc`` picks controllers.

    python benchmarks/cc_table.py          # all eight: ~5 min of CPU (9 min wall
                                           # on a shared, loaded 2-core machine)
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests" / "sim"))

CONTROLLERS = ("newreno", "cubic", "bbr1", "bbr2", "bbr3", "copa", "westwood", "prague")
RATE = 20e6
RTT = 0.03
BDP = int(RATE / 8 * RTT)
LOSSES = (0.0, 0.001, 0.01, 0.02, 0.05)
SAMPLE_EVERY = 0.005


def jain(xs: Sequence[float]) -> float:
    s = sum(xs)
    q = sum(x * x for x in xs)
    return s * s / (len(xs) * q) if q > 0 else 0.0


def percentile(xs: Sequence[float], p: float) -> float:
    if not xs:
        return float("nan")
    ys = sorted(xs)
    return ys[min(len(ys) - 1, int(p * len(ys)))]


# -- the engine over tquic.sim --------------------------------------------------------------


class EngineBench:
    """Runs through QuicConnection over tquic.sim links."""

    def __init__(self) -> None:
        from interop_cases import client_config, server_config

        from tquic.paths.network_path import Address
        from tquic.sim.profile import LinkProfile, LinkSpec
        from tquic.sim.quic import QuicClientEndpoint, QuicServerEndpoint
        from tquic.sim.runner import Runner
        from tquic.sim.workload import Download

        self.client_config = client_config
        self.server_config = server_config
        self.LinkProfile = LinkProfile
        self.LinkSpec = LinkSpec
        self.Runner = Runner
        self.Client = QuicClientEndpoint
        self.Server = QuicServerEndpoint
        self.Download = Download
        self._server_configs: dict[str, Any] = {}
        self.addr: Callable[[int], tuple[Address, Address]] = lambda i: (
            (f"10.0.{i}.1", 50000), (f"10.1.{i}.1", 443)
        )

    def _run(
        self,
        ccs: Sequence[str],
        duration: float,
        *,
        loss: float = 0.0,
        queue: int = BDP,
        starts: Sequence[float] = (),
        sampler: Callable[[Any, Any, list[Any]], None] | None = None,
        seed: int = 1,
    ) -> tuple[list[list[tuple[float, int]]], Any]:
        random.seed(seed)  # controllers draw their random choices from it (BBR probe waits)
        runner = self.Runner(seed=seed, name="cc", max_time=duration, stall_threshold=1.0)
        down = self.LinkProfile(rate_bps=RATE, delay=RTT / 2, loss=loss, queue_bytes=queue)
        up = self.LinkProfile(rate_bps=RATE, delay=RTT / 2, queue_bytes=queue)
        flows = []
        for i, cc in enumerate(ccs):
            client_addr, server_addr = self.addr(i)
            spec = self.LinkSpec(up, down, client_addr, server_addr, (), share_with=0 if i else None)
            link = runner.add_link(spec)
            if cc not in self._server_configs:
                self._server_configs[cc] = self.server_config(congestion_control=cc)
            client = self.Client()
            server = self.Server(self._server_configs[cc])
            # More than the link can carry in the run: the download never completes.
            size = int(RATE / 8 * duration * 1.2)
            wl = self.Download(client, server, self.client_config(), [size], seed=seed + i)
            start = starts[i] if i < len(starts) else 0.0
            flows.append(runner.add_flow(client, server, wl, [link], start=start))
        # Bytes delivered per flow every SAMPLE_EVERY seconds.
        series: list[list[tuple[float, int]]] = [[] for _ in flows]

        def tick(_: object) -> None:
            now = runner.loop.now
            for k, flow in enumerate(flows):
                series[k].append((now, flow.stats().bytes_delivered))
            if sampler is not None:
                sampler(runner, now, series)
            runner.loop.call_at(now + SAMPLE_EVERY, tick, None)

        runner.loop.call_at(SAMPLE_EVERY, tick, None)
        self._last_runner = runner
        runner.run()
        return series, runner


def rate_between(series: list[tuple[float, int]], start: float, end: float) -> float:
    """Bytes per second delivered in [start, end] from (time, cumulative bytes) samples."""
    a = next((b for t, b in series if t >= start), None)
    pts = [(t, b) for t, b in series if t <= end]
    if a is None or not pts:
        return 0.0
    t1, b1 = pts[-1]
    t0 = next(t for t, _ in series if t >= start)
    return (b1 - a) / (t1 - t0) if t1 > t0 else 0.0


class HarnessBench:
    """The same experiments on cc_harness.Testbed (controller + PathRecovery only)."""

    def __init__(self) -> None:
        import cc_harness

        self.h = cc_harness

    def _run(
        self,
        ccs: Sequence[str],
        duration: float,
        *,
        loss: float = 0.0,
        queue: int = BDP,
        starts: Sequence[float] = (),
        sampler: Callable[[Any, Any, list[Any]], None] | None = None,
        seed: int = 1,
        rate_changes: tuple[tuple[float, float], ...] = (),
    ) -> tuple[list[list[tuple[float, int]]], Any]:
        random.seed(seed)
        link = self.h.Bottleneck(RATE, RTT, queue, loss=loss, rate_changes=rate_changes)
        tb = self.h.Testbed(link, seed=seed)
        results = [
            tb.add_flow(f"f{i}", cc, starts[i] if i < len(starts) else 0.0)
            for i, cc in enumerate(ccs)
        ]
        tb.run(duration)
        series: list[list[tuple[float, int]]] = []
        for res in results:
            pts: list[tuple[float, int]] = []
            total = 0
            idx = 0
            deliv = res.delivered
            t = SAMPLE_EVERY
            while t <= duration:
                while idx < len(deliv) and deliv[idx][0] <= t:
                    total += deliv[idx][1]
                    idx += 1
                pts.append((t, total))
                t += SAMPLE_EVERY
            series.append(pts)
        return series, (tb, results)


def measure(
    bench: Any, cc: str, duration: float, engine: bool, seeds: int = 1
) -> dict[str, float]:
    out: dict[str, float] = {}
    for loss in LOSSES:
        # Mean over ``seeds`` runs (different loss patterns and random probe timing).
        total = 0.0
        for seed in range(1, seeds + 1):
            series, _ = bench._run([cc], duration, loss=loss, seed=seed)
            total += series[0][-1][1] * 8 / (RATE * series[0][-1][0])
        out[f"loss{loss}"] = total / seeds
    # Queueing delay with a 4-BDP queue.
    qd: list[float] = []
    if engine:
        def sample_queue(runner: Any, now: float, _: list[Any]) -> None:
            if now >= 1.0:
                n = runner.links[0].down.queue_length(now)
                qd.append((RTT + n * 1228 * 8 / RATE) / RTT)

        bench._run([cc], duration, queue=4 * BDP, sampler=sample_queue)
    else:
        _, (_tb, results) = bench._run([cc], duration, queue=4 * BDP)
        qd = [r / RTT for r in results[0].rtts[len(results[0].rtts) // 10 :]]
    out["q50"] = percentile(qd, 0.5)
    out["q95"] = percentile(qd, 0.95)
    # Fairness: two of the same; then against CUBIC.
    half = duration / 2
    series, _ = bench._run([cc, cc], duration, starts=(0.0, 0.5))
    rates = [rate_between(s, half, duration) for s in series]
    out["jain"] = jain(rates)
    if cc != "cubic":
        series, _ = bench._run([cc, "cubic"], duration, starts=(0.0, 0.5))
        rates = [rate_between(s, half, duration) for s in series]
    # (For cubic itself: the first flow's share of the two-CUBIC run.)
    a, b = rates
    out["vs_cubic"] = a / (a + b) if a + b > 0 else float("nan")
    # Convergence: 20 -> 5 -> 20 Mbit/s.
    t1, t2 = duration / 3, 2 * duration / 3
    if engine:
        # Judged on the bottleneck's delivered wire bytes: the application's
        # in-order byte count stalls behind a loss and then jumps (head-of-line),
        # which would credit a window with data the link carried before it.
        wire: list[tuple[float, int]] = []

        def step(runner: Any, now: float, _: list[Any]) -> None:
            pipe = runner.links[0].down
            want = 5e6 if t1 <= now < t2 else RATE
            if pipe.profile.rate_bps != want:
                pipe.profile = replace(pipe.profile, rate_bps=want)
            wire.append((now, pipe.delivered_bytes))

        bench._run([cc], duration, sampler=step)
        s = wire
    else:
        series, _ = bench._run([cc], duration, rate_changes=((t1, 5e6), (t2, RATE)))
        s = series[0]
    out["util5"] = rate_between(s, t1 + 0.5, t2) * 8 / 5e6
    t80 = float("nan")
    t = t2
    while t + 0.5 <= duration:
        if rate_between(s, t, t + 0.5) * 8 >= 0.8 * RATE:
            t80 = t + 0.5 - t2
            break
        t += 0.05
    out["t80"] = t80
    out["bond"] = bond(cc) if engine else float("nan")
    return out


BOND_LINKS = ((50e6, 0.040, 0.02), (20e6, 0.060, 0.01), (10e6, 0.025, 0.0))


def bond(cc: str, seed: int = 1) -> float:
    """Goodput / capacity of a bonded download over lossy links (tquic.demo.scenarios)."""
    from tquic.demo.scenarios import MB, LinkDef, run_download

    random.seed(seed)
    links = [LinkDef(rate, rtt, loss=loss) for rate, rtt, loss in BOND_LINKS]
    r = run_download("bond", links, 40 * MB, congestion_control=cc, seed=seed, max_time=60.0)
    return r.goodput_ratio if r.completed and r.goodput_ratio is not None else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="8 s runs instead of 20 s")
    ap.add_argument("--harness", action="store_true", help="controller testbed, not the engine")
    ap.add_argument("--cc", default=",".join(CONTROLLERS), help="comma-separated controllers")
    ap.add_argument(
        "--seeds", type=int, default=1, help="average the loss columns over this many seeds"
    )
    args = ap.parse_args(argv)
    duration = 8.0 if args.quick else 20.0
    engine = not args.harness
    bench: Any
    if engine:
        try:
            bench = EngineBench()
        except ImportError as exc:  # the engine or the simulator is not there
            print(f"engine/sim not available ({exc}); using the controller testbed")
            engine = False
    if not engine:
        bench = HarnessBench()
    what = "engine over tquic.sim" if engine else "controller testbed (PathRecovery + cc)"
    print(
        f"{what}: {RATE / 1e6:.0f} Mbit/s, RTT {RTT * 1e3:.0f} ms, "
        f"{duration:.0f} s runs; goodput/link rate with a 1-BDP queue"
        + (f" (mean of {args.seeds} seeds)" if args.seeds > 1 else "")
    )
    head = (
        f"{'cc':9s} " + " ".join(f"{f'{loss * 100:g}%':>6s}" for loss in LOSSES)
        + f" {'q p50':>6s} {'q p95':>6s} {'jain':>5s} {'vs cubic':>8s} {'util5M':>6s} {'t80 up':>6s}"
        + f" {'bond':>6s}"
    )
    print(head)
    print("-" * len(head))
    for cc in args.cc.split(","):
        started = time.perf_counter()
        m = measure(bench, cc, duration, engine, max(1, args.seeds))
        row = (
            f"{cc:9s} " + " ".join(f"{m[f'loss{loss}']:6.3f}" for loss in LOSSES)
            + f" {m['q50']:6.2f} {m['q95']:6.2f} {m['jain']:5.3f} {m['vs_cubic']:8.2f}"
            + f" {m['util5']:6.2f} {m['t80']:6.2f} {m['bond']:6.3f}"
        )
        print(row + f"   ({time.perf_counter() - started:.0f} s)", flush=True)
    print(
        "q = RTT/min RTT with a 4-BDP queue; jain = 2 flows of the cc; vs cubic = its share "
        "against CUBIC; util5M = bottleneck use at 5 Mbit/s; t80 up = s to 80 % after 5->20;\n"
        "bond = goodput/capacity of a 3-path download over 50M/40ms/2%, 20M/60ms/1%, 10M/25ms/0%"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
