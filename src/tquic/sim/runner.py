"""Drive sans-I/O endpoints over simulated links in virtual time.

The :class:`Runner` owns the event loop, the links and one or more
:class:`Flow` s (a client endpoint, a server endpoint and the workload that is
their application).  Each endpoint sits behind an :class:`EndpointDriver`,
which does what a real I/O layer does, in virtual time:

- hand arriving datagrams to ``receive_datagram`` (with the ECN field they
  arrived with, when it is not Not-ECT);
- *flush*: pass the endpoint's events to the workload, then put everything
  ``datagrams_to_send`` returns on the link the datagram's ``NetworkPath``
  names, with the ECN codepoint the endpoint's ``ecn_codepoint(network_path)``
  gives (Not-ECT without one).  Datagrams arriving at the same instant are received first and
  flushed once, like a batch read with recvmmsg;
- keep one timer armed at ``next_timeout()`` and call ``handle_timeout``.

Routing is by address, so multipath needs nothing special: the client names a
link by its local address; the server's replies go back over the link whose
NAT binding owns the destination address.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any

from tquic.paths.network_path import Address, NetworkPath
from tquic.sim.clock import EventLoop, SimulationError
from tquic.sim.link import Link, Pipe
from tquic.sim.profile import LinkSpec
from tquic.sim.protocols import Endpoint, Side, Workload
from tquic.sim.report import FlowStats, Report, build_report

UNSPECIFIED: Address = ("", 0)
# Timer granularity: an endpoint that asks to be woken again at the instant its
# timer just ran is woken one tick later (as an OS timer would); this many such
# spins in a row mean it is stuck, and the run stops with an error.
TIMER_TICK = 1e-6
MAX_TIMER_SPINS = 10_000


class EndpointDriver:
    """The virtual-time I/O layer of one endpoint."""

    __slots__ = (
        "_flow",
        "_flush_pending",
        "_last_fire",
        "_loop",
        "_send",
        "_spin_run",
        "_timer_at",
        "_timer_gen",
        "endpoint",
        "side",
        "timer_spins",
    )

    def __init__(self, flow: Flow, endpoint: Endpoint, side: Side) -> None:
        self._flow = flow
        self._loop = flow.loop
        self.endpoint = endpoint
        self.side = side
        self._send = flow._from_client if side is Side.CLIENT else flow._from_server
        self._flush_pending = False
        self._timer_at: float | None = None
        self._timer_gen = 0
        self._spin_run = 0
        self._last_fire = -1.0
        self.timer_spins = 0

    def deliver(self, data: bytes, network_path: NetworkPath, ecn: int = 0) -> None:
        if ecn:
            self.endpoint.receive_datagram(data, network_path, self._loop.now, ecn=ecn)
        else:
            self.endpoint.receive_datagram(data, network_path, self._loop.now)
        self.wake()

    def wake(self) -> None:
        """Flush this endpoint at the current instant, after already-due arrivals."""
        if not self._flush_pending:
            self._flush_pending = True
            self._loop.call_at(self._loop.now, self._flush, None)

    def _drain_events(self) -> None:
        ep = self.endpoint
        on_event = self._flow.workload.on_event
        side = self.side
        event = ep.next_event()
        while event is not None:
            on_event(side, event)
            event = ep.next_event()

    def _flush(self, _: Any) -> None:
        self._flush_pending = False
        now = self._loop.now
        self._drain_events()
        send = self._send
        ecn_of = getattr(self.endpoint, "ecn_codepoint", None)
        datagrams = self.endpoint.datagrams_to_send(now)
        if ecn_of is None:
            for data, network_path in datagrams:
                send(data, network_path, 0)
        else:
            # RFC 9000 §13.4.2: the mark the engine chose for the path (one per batch).
            marks: dict[NetworkPath, int] = {}
            for data, network_path in datagrams:
                ecn = marks.get(network_path)
                if ecn is None:
                    ecn = marks[network_path] = ecn_of(network_path)
                send(data, network_path, ecn)
        self._drain_events()
        self._arm_timer(now)

    def _arm_timer(self, now: float) -> None:
        at = self.endpoint.next_timeout()
        if at == self._timer_at:
            return
        self._timer_gen += 1
        self._timer_at = at
        if at is None:
            return
        when = at if at > now else now
        if when <= self._last_fire:
            # The endpoint asks again for the instant its timer has just run at: it
            # made no progress there (e.g. a deadline recomputed with a rounding
            # error).  A real timer fires a tick later; so does this one, and the
            # spin is counted in the report so such engine bugs stay visible.
            when = self._last_fire + TIMER_TICK
            self.timer_spins += 1
            self._spin_run += 1
            if self._spin_run > MAX_TIMER_SPINS:
                raise SimulationError(
                    f"{self.side.value} endpoint keeps asking for a timeout at t={now:.6f} "
                    "without making progress"
                )
        else:
            self._spin_run = 0
        self._loop.call_at(when, self._on_timer, self._timer_gen)

    def _on_timer(self, gen: int) -> None:
        if gen != self._timer_gen:
            return  # re-armed or cancelled since
        now = self._loop.now
        self._last_fire = now
        self._timer_at = None
        self.endpoint.handle_timeout(now)
        self._flush(None)


class Flow:
    """One client-server pair, its links and its workload; what a workload talks to."""

    def __init__(
        self,
        runner: Runner,
        client: Endpoint,
        server: Endpoint,
        workload: Workload,
        links: Sequence[Link],
        name: str,
        primary: bool,
    ) -> None:
        if not links:
            raise SimulationError(f"flow {name!r} has no link")
        self.runner = runner
        self.loop = runner.loop
        self.name = name
        self.primary = primary
        self.workload = workload
        self.links = tuple(links)
        self.client_driver = EndpointDriver(self, client, Side.CLIENT)
        self.server_driver = EndpointDriver(self, server, Side.SERVER)
        self._by_client = {link.client: link for link in self.links}
        self._by_server: dict[Address, Link] = {}
        for link in self.links:
            self._by_server.setdefault(link.server, link)
        # server-visible client address -> (link, client local address)
        self._bindings: dict[Address, tuple[Link, Address]] = {}
        self.started_at = 0.0
        self.done_at: float | None = None
        self.failure: str | None = None
        self.delivery_times: list[float] = []
        self.bytes_delivered = 0
        self.handshakes: list[tuple[Side, int | None]] = []
        self.unroutable = 0

    # -- what workloads use -------------------------------------------------------
    @property
    def client(self) -> Endpoint:
        return self.client_driver.endpoint

    @property
    def server(self) -> Endpoint:
        return self.server_driver.endpoint

    @property
    def now(self) -> float:
        return self.loop.now

    def client_path(self, link_index: int = 0) -> NetworkPath:
        """The path the client uses on link ``link_index`` (for ``connect``)."""
        link = self.links[link_index]
        return NetworkPath(local=link.client, remote=link.server)

    def wake(self, side: Side) -> None:
        """The application acted on an endpoint: let it send."""
        (self.client_driver if side is Side.CLIENT else self.server_driver).wake()

    def record_delivery(self, nbytes: int) -> None:
        """``nbytes`` of application data reached the sink in order, now."""
        self.bytes_delivered += nbytes
        self.delivery_times.append(self.loop.now)

    def record_handshake(self, side: Side, version: int | None) -> None:
        self.handshakes.append((side, version))

    def finish(self) -> None:
        if self.done_at is None:
            self.done_at = self.loop.now
            self.runner._flow_done()

    def fail(self, reason: str) -> None:
        if self.done_at is None and self.failure is None:
            self.failure = reason
            self.runner._flow_done()

    @property
    def finished(self) -> bool:
        return self.done_at is not None or self.failure is not None

    def stats(self) -> FlowStats:
        elapsed = None if self.done_at is None else self.done_at - self.started_at
        goodput = (
            self.bytes_delivered * 8.0 / elapsed if elapsed is not None and elapsed > 0 else None
        )
        return FlowStats(
            self.name, self.done_at is not None, elapsed, self.bytes_delivered, goodput,
            self.failure,
        )

    # -- routing --------------------------------------------------------------------
    def _from_client(self, data: bytes, network_path: NetworkPath, ecn: int = 0) -> None:
        local = network_path.local
        link = self._by_client.get(local)
        if link is None:
            link = self._by_server.get(network_path.remote)
            if link is None and local == UNSPECIFIED and len(self.links) == 1:
                link = self.links[0]
            if link is None:
                self.unroutable += 1
                return
        if local == link.client or local == UNSPECIFIED:
            local = link.client
            external = link.external(self.loop.now)  # behind the link's NAT
        else:
            external = local  # an extra address of the client on this network: no NAT
        self._bindings[external] = (link, local)
        link.up.offer(data, self.server_driver, NetworkPath(network_path.remote, external), ecn)

    def _from_server(self, data: bytes, network_path: NetworkPath, ecn: int = 0) -> None:
        binding = self._bindings.get(network_path.remote)
        if binding is None:
            self.unroutable += 1
            return
        link, local = binding
        if local == link.client and link.external(self.loop.now) != network_path.remote:
            link.down.dropped["nat"] += 1  # the NAT forgot this binding when it rebound
            return
        source = network_path.local if network_path.local != UNSPECIFIED else link.server
        link.down.offer(data, self.client_driver, NetworkPath(local, source), ecn)


class Runner:
    """Links, flows and the loop of one simulated run; ``run()`` returns a Report."""

    def __init__(
        self,
        *,
        seed: int,
        name: str = "",
        max_time: float = 60.0,
        stall_threshold: float = 0.1,
    ) -> None:
        self.name = name
        self.seed = seed
        self.max_time = max_time
        self.stall_threshold = stall_threshold
        self.loop = EventLoop()
        self.rng = random.Random(seed)
        self.links: list[Link] = []
        self.flows: list[Flow] = []
        self.qlog_files: list[str] = []

    def add_link(self, spec: LinkSpec, name: str | None = None) -> Link:
        """A link; with ``spec.share_with`` set it reuses that link's pipes."""
        index = len(self.links)
        label = name or f"link{index}"
        if spec.share_with is not None:
            if spec.share_with >= index:
                raise SimulationError(f"{label}: share_with={spec.share_with} is not an earlier link")
            base = self.links[spec.share_with]
            up, down = base.up, base.down
        else:
            up = Pipe(self.loop, spec.up, random.Random(self.rng.getrandbits(64)), f"{label}.up")
            down = Pipe(
                self.loop, spec.down, random.Random(self.rng.getrandbits(64)), f"{label}.down"
            )
        link = Link(spec, up, down, random.Random(self.rng.getrandbits(64)), label)
        self.links.append(link)
        return link

    def add_flow(
        self,
        client: Endpoint,
        server: Endpoint,
        workload: Workload,
        links: Sequence[Link] | None = None,
        *,
        name: str | None = None,
        primary: bool = True,
        start: float = 0.0,
    ) -> Flow:
        """A client-server pair over ``links`` (default: every link added so far).

        The run ends when every *primary* flow has finished or failed; secondary
        flows (cross traffic) are measured but not waited for.
        """
        flow = Flow(
            self, client, server, workload, self.links if links is None else links,
            name or f"flow{len(self.flows)}", primary,
        )
        flow.started_at = start
        self.flows.append(flow)
        self.loop.call_at(start, self._start_flow, flow)
        return flow

    def _start_flow(self, flow: Flow) -> None:
        flow.workload.start(flow)
        flow.client_driver.wake()
        flow.server_driver.wake()

    def _flow_done(self) -> None:
        if all(f.finished for f in self.flows if f.primary):
            self.loop.stop()

    def run(self) -> Report:
        if not self.flows:
            raise SimulationError("nothing to run: add a flow")
        # Controllers that randomise (BBR's probe timing, cc/bbr1.py and cc/bbr3.py) seed
        # their own generators from the process-wide one when a connection creates them,
        # which happens inside the run: seeding it here makes a run replay exactly (same
        # seed, same report), whatever ran in this process before.
        random.seed(self.seed)
        wall = time.perf_counter()
        self.loop.run(until=self.max_time)
        wall = time.perf_counter() - wall
        for flow in self.flows:
            for endpoint in (flow.client, flow.server):
                # qlog hook: endpoints that write traces (tquic.sim.quic) list their files
                close = getattr(endpoint, "close_qlog", None)
                if close is not None:
                    close()
                self.qlog_files.extend(getattr(endpoint, "qlog_files", ()))
        return build_report(self, wall)
