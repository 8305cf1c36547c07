"""The simulator's prediction of a benchmarks/realtime.py scenario.

The same links as the real run (rate with 28 bytes of IPv4+UDP per datagram, one-way
delay, random loss each way, the same queue in packets, the cut at the same time after
the client's first datagram), the same congestion controller on both sides and the
default scheduler, run through the real engine in virtual time (tquic.sim, with
tquic.demo.scenarios' multipath download: one path per link, opened once the
handshake is confirmed).  t = 0 is the client's first Initial, like netem's
``--epoch first``; what the simulator cannot see is the process start-up before it and
the exit after the last byte.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from realtime_procs import Link
from tquic.demo.scenarios import SERVER, LinkDef, MultipathDownload, client_address, configs
from tquic.sim import LinkProfile, LinkSpec, Outage, Scenario
from tquic.sim.quic import QuicClientEndpoint, QuicServerEndpoint

STALL_THRESHOLD = 0.005  # gaps shorter than this are not recorded as stalls at all


@dataclass(frozen=True, slots=True)
class SimPrediction:
    completed: bool
    completion: float | None  # first Initial to the last byte delivered (virtual s)
    first_byte: float | None  # first Initial to the first byte delivered
    stall: float  # longest gap in in-order delivery
    stall_at: float | None
    intact: bool
    link_bytes: tuple[int, ...]  # UDP bytes each link carried downstream
    drops: tuple[tuple[int, int, int], ...]  # per link: (queue, loss, outage) drops down
    wall: float  # how long the simulation took
    failure: str | None

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def profile(link: Link) -> LinkProfile:
    outages = (Outage(link.cut_at, math.inf),) if link.cut_at is not None else ()
    return LinkProfile(rate_bps=link.rate_bps, delay=link.delay, loss=link.loss,
                       queue_packets=link.queue_packets, outages=outages, overhead_bytes=28)


def predict(links: Sequence[Link], size: int, cc: str, *, seed: int = 1,
            scheduler: str = "minrtt") -> SimPrediction:
    specs = tuple(LinkSpec.symmetric(profile(link), client_address(i), SERVER)
                  for i, link in enumerate(links))
    scenario = Scenario("realtime", specs, seed=seed, max_time=300.0,
                        stall_threshold=STALL_THRESHOLD)
    client_config, server_config = configs(scheduler, cc)
    client = QuicClientEndpoint()
    server = QuicServerEndpoint(server_config)
    defs = [LinkDef(link.rate_bps, 2 * link.delay, link.loss) for link in links]
    workload = MultipathDownload(client, server, client_config, size, defs, seed=seed)
    runner = scenario.build()
    runner.add_flow(client, server, workload, runner.links)
    wall = time.perf_counter()
    report = runner.run()
    wall = time.perf_counter() - wall
    longest = max(report.stalls, key=lambda s: s.duration, default=None)
    deliveries = runner.flows[0].delivery_times
    return SimPrediction(
        completed=report.completed, completion=report.completion_time,
        first_byte=deliveries[0] if deliveries else None,
        stall=report.max_stall, stall_at=None if longest is None else longest.start,
        intact=workload.files_ok == 1,
        link_bytes=tuple(ls.down.delivered_bytes for ls in report.links),
        drops=tuple((ls.down.drops("queue"), ls.down.drops("loss"), ls.down.drops("outage"))
                    for ls in report.links),
        wall=wall, failure=report.failure)
