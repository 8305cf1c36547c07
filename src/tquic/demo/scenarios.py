"""Multipath scenarios on the simulator: bonding, failover, flapping, backup.

Each scenario is a small set of links between one client and one server
(tquic.sim), a download of ``size`` bytes over a QUIC connection that opens
one path per link (``QuicConnection.add_path`` from each extra link's client
address, draft-ietf-quic-multipath §"Path Initiation and Validation"), and a
result value with what a user of a bonded link would look at: goodput against
the links' capacity, the longest stall of in-order delivery, what each link
carried.

    from tquic.demo.scenarios import hetero3
    result = hetero3(size=15_000_000, scheduler="blest")
    print(result.goodput_ratio, result.max_stall)

The runner routes each datagram by the NetworkPath the engine gives it, so a
path opened from link k's client address travels over link k.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from tquic.core.config import QuicConfiguration
from tquic.core.events import PathAbandoned, PathFailed, PathValidated
from tquic.core.multipath import PathError
from tquic.crypto.tls.certs import generate_self_signed
from tquic.paths.network_path import Address
from tquic.sim import LinkProfile, LinkSpec, Outage, Scenario, Side, blackhole_outages
from tquic.sim.quic import ConnEvent, QuicClientEndpoint, QuicServerEndpoint
from tquic.sim.workload import Download

if TYPE_CHECKING:
    from tquic.sim.runner import Flow

__all__ = [
    "LinkDef",
    "MultipathDownload",
    "ScenarioResult",
    "backup",
    "failover",
    "flap",
    "hetero3",
    "link_profile",
    "run_download",
]

MB = 1_000_000
SERVER: Address = ("10.0.1.1", 443)
ALPN = ("hq-interop",)
PACKET = 1500  # bytes per queued datagram when sizing a queue of one BDP
MAX_PATH_ID = 8
ADD_PATH_RETRY = 0.01  # seconds between attempts while the handshake is not confirmed
# After a link's path is abandoned the client tries a new path on that link this often
# (a bonding client keeps probing a dead link so it rejoins when it comes back).
REOPEN_INTERVAL = 0.5
# Flow-control ceilings high enough that the windows never limit a bonded download
# (the receive window auto-tunes up to these; RFC 9000 §4.2 leaves that to us).
WINDOW = 64 << 20


@dataclass(frozen=True, slots=True)
class LinkDef:
    """One access link: rate (bit/s), round-trip time, random loss, outages."""

    rate_bps: float
    rtt: float
    loss: float = 0.0
    outages: tuple[Outage, ...] = ()
    backup: bool = False  # the client opens its path as a backup path
    queue_packets: int | None = None  # drop-tail queue; None: one BDP (at least 8)

    @property
    def label(self) -> str:
        text = f"{self.rate_bps / 1e6:g}M/{self.rtt * 1000:g}ms"
        if self.loss:
            text += f"/{self.loss * 100:g}%"
        return text


def link_profile(link: LinkDef) -> LinkProfile:
    """One direction of ``link``: half the RTT each way, a drop-tail queue of one BDP
    unless the link says how deep."""
    queue = link.queue_packets
    if queue is None:
        queue = max(math.ceil(link.rate_bps * link.rtt / 8 / PACKET), 8)
    return LinkProfile(rate_bps=link.rate_bps, delay=link.rtt / 2, loss=link.loss,
                       queue_packets=queue, outages=link.outages,
                       overhead_bytes=28)


def client_address(index: int) -> Address:
    return (f"10.0.{index + 10}.2", 50000)


@lru_cache(maxsize=1)
def _certificate() -> tuple[bytes, bytes]:
    return generate_self_signed(("localhost",))


def configs(scheduler: str, congestion_control: str,
            max_path_id: int | None = MAX_PATH_ID) -> tuple[QuicConfiguration, QuicConfiguration]:
    """(client, server) configurations for a bonded download."""
    cert, key = _certificate()
    common = dict(alpn_protocols=ALPN, scheduler=scheduler,
                  congestion_control=congestion_control, max_path_id=max_path_id,
                  max_data=WINDOW, max_stream_data=WINDOW, token_key=bytes(32),
                  stateless_reset_key=bytes(32))
    client = QuicConfiguration(is_client=True, verify_peer=False, server_name="localhost",
                               **common)  # type: ignore[arg-type]
    server = QuicConfiguration(is_client=False, certificate=cert, private_key=key,
                               **common)  # type: ignore[arg-type]
    return client, server


class MultipathDownload(Download):
    """A :class:`~tquic.sim.workload.Download` whose client opens a path on every
    further link of the flow once the handshake is confirmed (the engine refuses
    ``add_path`` before), and records path events and per-link bytes at chosen times."""

    def __init__(self, client: QuicClientEndpoint, server: QuicServerEndpoint,
                 client_config: QuicConfiguration, size: int, links: Sequence[LinkDef],
                 *, seed: int = 0, probe_times: Sequence[float] = (),
                 sample_every: float | None = None,
                 reopen: float | None = REOPEN_INTERVAL) -> None:
        super().__init__(client, server, client_config, [size], seed=seed)
        self.reopen = reopen
        self.link_defs = tuple(links)
        self._pending = list(range(1, len(self.link_defs)))
        self.path_ids: dict[int, int] = {0: 0}  # link index -> current path ID
        self.paths_opened = 1
        self.path_errors: list[str] = []
        self.path_events: list[tuple[float, object]] = []
        self.probe_times = tuple(probe_times)
        self.sample_every = sample_every
        # time -> bytes delivered downstream by each link so far
        self.link_bytes_at: dict[float, tuple[int, ...]] = {}

    def start(self, flow: Flow) -> None:
        super().start(flow)
        for at in self.probe_times:
            flow.loop.call_at(at, self._probe, at)
        if self.sample_every is not None:
            flow.loop.call_at(flow.now + self.sample_every, self._sample, None)
        if self._pending:
            flow.loop.call_at(flow.now + ADD_PATH_RETRY, self._retry_paths, None)

    def _probe(self, at: float) -> None:
        links = self.flow.links
        self.link_bytes_at[at] = tuple(link.down.stats().delivered_bytes for link in links)

    def _sample(self, _: object) -> None:
        flow = self.flow
        if flow.finished or self.sample_every is None:
            return
        self._probe(flow.now)
        flow.loop.call_at(flow.now + self.sample_every, self._sample, None)

    def _retry_paths(self, _: object) -> None:
        flow = self.flow
        if flow.finished or not self._pending:
            return
        self._open_paths()
        if self._pending:
            flow.loop.call_at(flow.now + ADD_PATH_RETRY, self._retry_paths, None)

    def _open_paths(self) -> None:
        if not self.results:
            return
        conn = self.results[-1].connection
        flow = self.flow
        while self._pending:
            index = self._pending[0]
            link = flow.links[index]
            try:
                path_id = conn.add_path(link.client, link.server, flow.now,
                                        backup=self.link_defs[index].backup)
            except PathError as exc:
                if "not confirmed" not in str(exc):
                    self.path_errors.append(f"link {index}: {exc}")
                    self._pending.clear()
                return
            self._pending.pop(0)
            self.path_ids[index] = path_id
            self.paths_opened += 1
            flow.wake(Side.CLIENT)

    def _reopen(self, index: int) -> None:
        flow = self.flow
        if flow.finished or index in self._pending:
            return
        self._pending.append(index)
        self._open_paths()
        if self._pending and index in self._pending:
            flow.loop.call_at(flow.now + ADD_PATH_RETRY, self._retry_paths, None)

    def _on_path_gone(self, path_id: int) -> None:
        for index, current in self.path_ids.items():
            if current == path_id and self.reopen is not None:
                flow = self.flow
                flow.loop.call_at(flow.now + self.reopen, self._reopen, index)

    def on_event(self, side: Side, event: object) -> None:
        super().on_event(side, event)
        if side is Side.CLIENT and isinstance(event, ConnEvent):
            inner = event.event
            if isinstance(inner, PathValidated | PathFailed | PathAbandoned):
                self.path_events.append((self.flow.now, inner))
            if isinstance(inner, PathAbandoned):
                self._on_path_gone(inner.path_id)
            if self._pending:
                self._open_paths()


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    """What one bonded download did."""

    name: str
    scheduler: str
    congestion_control: str
    links: tuple[str, ...]
    size: int
    completed: bool
    intact: bool  # every byte arrived and the SHA-256 matches what the server sent
    failure: str | None
    completion_time: float | None
    goodput_bps: float | None
    capacity_bps: float  # the links' time-averaged rate over the transfer
    max_stall: float  # longest gap in in-order delivery (seconds)
    link_bytes: tuple[int, ...]  # bytes each link delivered downstream
    paths_opened: int
    path_errors: tuple[str, ...]
    path_events: tuple[str, ...]
    link_bytes_at: tuple[tuple[float, tuple[int, ...]], ...] = field(default=())
    wall_time: float = 0.0
    # UDP bytes the links delivered in the middle half of the transfer / their capacity
    # there: how full the bonded links run once every path is up (None: not sampled)
    steady_utilisation: float | None = None

    @property
    def goodput_ratio(self) -> float | None:
        if self.goodput_bps is None:
            return None
        return self.goodput_bps / self.capacity_bps

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name, "scheduler": self.scheduler,
            "congestion_control": self.congestion_control, "links": list(self.links),
            "size": self.size, "completed": self.completed, "intact": self.intact,
            "failure": self.failure, "completion_time": self.completion_time,
            "goodput_bps": self.goodput_bps, "capacity_bps": self.capacity_bps,
            "goodput_ratio": self.goodput_ratio, "max_stall": self.max_stall,
            "link_bytes": list(self.link_bytes), "paths_opened": self.paths_opened,
            "path_errors": list(self.path_errors), "path_events": list(self.path_events),
            "link_bytes_at": [[t, list(b)] for t, b in self.link_bytes_at],
            "wall_time": self.wall_time, "steady_utilisation": self.steady_utilisation,
        }


def _up_fraction(link: LinkDef, until: float) -> float:
    """Share of [0, until] the link is up (for the time-averaged capacity)."""
    if until <= 0:
        return 1.0
    down = sum(max(0.0, min(o.end, until) - o.start) for o in link.outages if o.start < until)
    return max(0.0, 1.0 - down / until)


def _steady(samples: list[tuple[float, tuple[int, ...]]], end: float | None,
            capacity: float) -> float | None:
    """Delivered bits over [end/4, 3 end/4] / (capacity x that span), from periodic samples."""
    if end is None or len(samples) < 4:
        return None
    lo = [x for x in samples if x[0] >= end / 4]
    hi = [x for x in samples if x[0] <= 3 * end / 4]
    if not lo or not hi or hi[-1][0] <= lo[0][0]:
        return None
    (t0, b0), (t1, b1) = lo[0], hi[-1]
    return (sum(b1) - sum(b0)) * 8 / (capacity * (t1 - t0))


def run_download(name: str, links: Sequence[LinkDef], size: int, *, scheduler: str = "minrtt",
                 congestion_control: str = "cubic", seed: int = 1, max_time: float = 120.0,
                 multipath: bool = True, probe_times: Sequence[float] = (),
                 stall_threshold: float = 0.05, max_path_id: int = MAX_PATH_ID,
                 sample_every: float | None = None) -> ScenarioResult:
    """Download ``size`` bytes over ``links`` (a path per link) and measure it."""
    specs = tuple(LinkSpec.symmetric(link_profile(link), client_address(i), SERVER)
                  for i, link in enumerate(links))
    scenario = Scenario(name, specs, seed=seed, max_time=max_time,
                        stall_threshold=stall_threshold)
    cconf, sconf = configs(scheduler, congestion_control, max_path_id if multipath else None)
    client = QuicClientEndpoint()
    server = QuicServerEndpoint(sconf)
    workload = MultipathDownload(client, server, cconf, size,
                                 links if multipath else links[:1], seed=seed,
                                 probe_times=probe_times, sample_every=sample_every)
    runner = scenario.build()
    flow_links = runner.links if multipath else runner.links[:1]
    runner.add_flow(client, server, workload, flow_links)
    wall = time.perf_counter()
    report = runner.run()
    wall = time.perf_counter() - wall
    used = links if multipath else links[:1]
    end = report.completion_time or report.sim_time
    capacity = sum(link.rate_bps * _up_fraction(link, end) for link in used)
    events = tuple(f"{t:.3f}s {type(e).__name__}({getattr(e, 'path_id', '?')})"
                   for t, e in workload.path_events)
    return ScenarioResult(
        name=name, scheduler=scheduler, congestion_control=congestion_control,
        links=tuple(link.label for link in used), size=size, completed=report.completed,
        intact=workload.files_ok == 1, failure=report.failure,
        completion_time=report.completion_time, goodput_bps=report.goodput_bps,
        capacity_bps=capacity, max_stall=report.max_stall,
        link_bytes=tuple(ls.down.delivered_bytes for ls in report.links[:len(used)]),
        paths_opened=workload.paths_opened, path_errors=tuple(workload.path_errors),
        path_events=events, link_bytes_at=tuple(sorted(workload.link_bytes_at.items())),
        wall_time=wall,
        steady_utilisation=None if sample_every is None else _steady(
            sorted(workload.link_bytes_at.items()), report.completion_time, capacity),
    )


# -- the four scenarios of benchmarks/multipath.py ----------------------------------------

HETERO3 = (LinkDef(50e6, 0.020), LinkDef(20e6, 0.060), LinkDef(10e6, 0.120))


def hetero3(size: int = 60 * MB, *, scheduler: str = "minrtt",
            congestion_control: str = "cubic", loss_on_third: float = 0.0,
            multipath: bool = True, seed: int = 1) -> ScenarioResult:
    """Three unequal links (50/20/10 Mbit/s, 20/60/120 ms RTT, queues of one BDP)."""
    links = list(HETERO3)
    if loss_on_third:
        links[2] = LinkDef(links[2].rate_bps, links[2].rtt, loss=loss_on_third)
    name = "hetero3" + (f"+loss{loss_on_third * 100:g}%" if loss_on_third else "")
    return run_download(name, links, size, scheduler=scheduler,
                        congestion_control=congestion_control, multipath=multipath, seed=seed,
                        sample_every=0.25)


def failover(size: int = 40 * MB, *, fail_at: float = 5.0, scheduler: str = "minrtt",
             congestion_control: str = "cubic", seed: int = 1) -> ScenarioResult:
    """Two 30 Mbit/s links (20 and 40 ms RTT); the first is blackholed at ``fail_at``
    for good, both directions."""
    links = (LinkDef(30e6, 0.020, outages=(Outage(fail_at, math.inf),)),
             LinkDef(30e6, 0.040))
    return run_download("failover", links, size, scheduler=scheduler,
                        congestion_control=congestion_control, seed=seed)


def flap(size: int = 40 * MB, *, up: float = 2.0, down: float = 1.0, scheduler: str = "minrtt",
         congestion_control: str = "cubic", seed: int = 1,
         max_time: float = 120.0, max_path_id: int = MAX_PATH_ID) -> ScenarioResult:
    """Two 30 Mbit/s links (20 and 40 ms RTT); the first goes down ``down`` s after
    every ``up`` s, for the whole run."""
    outages = blackhole_outages(up, down, max_time)
    links = (LinkDef(30e6, 0.020, outages=outages), LinkDef(30e6, 0.040))
    return run_download("flap", links, size, scheduler=scheduler,
                        congestion_control=congestion_control, seed=seed, max_time=max_time,
                        max_path_id=max_path_id)


def backup(size: int = 20 * MB, *, fail_at: float = 3.0, scheduler: str = "minrtt",
           congestion_control: str = "cubic", seed: int = 1) -> ScenarioResult:
    """A primary 30 Mbit/s 20 ms link and a standby 30 Mbit/s 40 ms link opened as a
    backup path (PATH_STATUS_BACKUP); the primary dies at ``fail_at``.  The bytes
    each link delivered just before the failure are in ``link_bytes_at``."""
    links = (LinkDef(30e6, 0.020, outages=(Outage(fail_at, math.inf),)),
             LinkDef(30e6, 0.040, backup=True))
    return run_download("backup", links, size, scheduler=scheduler,
                        congestion_control=congestion_control, seed=seed,
                        probe_times=(fail_at,))
