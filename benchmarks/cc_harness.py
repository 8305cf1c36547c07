"""A controller-level testbed: real PathRecovery + controller + pacer over a modelled bottleneck.

This is the fallback for ``cc_table.py`` while the engine cannot yet run a
transfer through ``tquic.sim``: it keeps everything the congestion controller
sees real (``tquic.paths.recovery.PathRecovery`` loss detection, RTT
estimation, pacing, ACK ranges with ECN-CE counts) and models only the
network and the peer:

- one bottleneck shared by every flow: rate (which may change at given
  times), drop-tail queue limit in bytes, Bernoulli random loss on entry, an
  optional L4S step marker (CE on ECT(1) packets when the queue delay exceeds
  ``ce_threshold``), then propagation delay; ACKs return loss-free;
- a receiver per flow that acknowledges every second packet, immediately on a
  gap, or after ``ack_delay`` (RFC 9000 §13.2.1), up to 32 ranges.

Every packet carries new data (a bulk transfer), so delivered unique packets
are the goodput.  Deterministic for a given seed.
"""

from __future__ import annotations

import functools
import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from tquic.cc import create_controller
from tquic.paths.ackranges import RangeSet
from tquic.paths.recovery import PathRecovery, SentPacket, SpaceId

MDS = 1200
APP = SpaceId.APPLICATION


@dataclass(frozen=True, slots=True)
class Bottleneck:
    rate_bps: float
    rtt: float  # two-way propagation delay, seconds
    queue_bytes: int
    loss: float = 0.0
    ce_threshold: float | None = None  # seconds of queue delay above which ECT(1) is marked
    rate_changes: tuple[tuple[float, float], ...] = ()  # (time, new rate_bps)


@dataclass(slots=True)
class FlowResult:
    name: str
    cc: str
    delivered: list[tuple[float, int]] = field(default_factory=list)  # (time, bytes) per packet
    rtts: list[float] = field(default_factory=list)
    min_rtt: float = 0.0
    sent: int = 0
    lost: int = 0

    def bytes_between(self, start: float, end: float) -> int:
        return sum(b for t, b in self.delivered if start <= t < end)


class _Flow:
    __slots__ = (
        "ack_deadline",
        "ce_count",
        "ect1",
        "next_pn",
        "received",
        "recovery",
        "result",
        "start",
        "unacked",
        "wake_at",
    )

    def __init__(self, name: str, cc: str, start: float) -> None:
        controller = create_controller(cc, MDS)
        self.recovery = PathRecovery(controller, MDS, is_client=False, path_id=1)
        self.ect1 = getattr(controller, "ecn_codepoint", None) == "ect1"
        self.result = FlowResult(name, cc)
        self.next_pn = 0
        self.received = RangeSet()
        self.unacked = 0
        self.ack_deadline: float | None = None
        self.ce_count = 0
        self.start = start
        self.wake_at: float | None = None


class Testbed:
    """Flows through one bottleneck, in virtual time."""

    def __init__(self, link: Bottleneck, seed: int = 1, ack_delay: float = 0.005) -> None:
        self.link = link
        self.rng = random.Random(seed)
        # Controllers created without a seed draw theirs from the global generator
        # (BBR's random probe timing): seed it too, so that a run replays exactly.
        random.seed(seed)
        self.ack_delay = ack_delay
        self.now = 0.0
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0
        self._busy_until = 0.0
        self._queue: list[tuple[float, int]] = []  # (departure, size) FIFO, as a heap by time
        self._queued_bytes = 0
        self.rate = link.rate_bps
        self.flows: list[_Flow] = []
        for at, rate in link.rate_changes:
            self._at(at, functools.partial(self._set_rate, rate))

    def add_flow(self, name: str, cc: str, start: float = 0.0) -> FlowResult:
        flow = _Flow(name, cc, start)
        self.flows.append(flow)
        self._at(start, lambda: self._wake(flow))
        return flow.result

    def _set_rate(self, rate: float) -> None:
        self.rate = rate

    def _at(self, t: float, fn: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._events, (t, self._seq, fn))

    def run(self, duration: float) -> None:
        events = self._events
        while events and events[0][0] <= duration:
            t, _, fn = heapq.heappop(events)
            self.now = max(self.now, t)
            fn()
        for flow in self.flows:
            r = flow.recovery
            flow.result.sent = r.packets_sent
            flow.result.lost = r.packets_lost
            flow.result.min_rtt = r.rtt.min_rtt

    # -- sender ---------------------------------------------------------------

    def _wake(self, flow: _Flow) -> None:
        now = self.now
        flow.wake_at = None
        r = flow.recovery
        deadline = r.loss_detection_deadline()
        if deadline is not None and deadline <= now:
            outcome = r.on_loss_detection_timeout(now)
            for _ in range(outcome.probe_packets):
                self._send(flow, now)  # PTO probes ignore the window (RFC 9002 §7.5)
        while r.can_send(MDS):
            t = r.next_send_time(now, MDS)
            if t > now:
                self._schedule_wake(flow, t)
                break
            self._send(flow, now)
        deadline = r.loss_detection_deadline()
        if deadline is not None:
            self._schedule_wake(flow, max(deadline, now))

    def _schedule_wake(self, flow: _Flow, t: float) -> None:
        if flow.wake_at is not None and flow.wake_at <= t:
            return
        flow.wake_at = t
        self._at(t, lambda: self._maybe_wake(flow, t))

    def _maybe_wake(self, flow: _Flow, t: float) -> None:
        if flow.wake_at == t:
            self._wake(flow)

    def _send(self, flow: _Flow, now: float) -> None:
        pn = flow.next_pn
        flow.next_pn += 1
        flow.recovery.on_packet_sent(SentPacket(pn, now, MDS, True, True, APP), now)
        self._offer(flow, pn, now)

    # -- bottleneck -----------------------------------------------------------------

    def _offer(self, flow: _Flow, pn: int, now: float) -> None:
        link = self.link
        if link.loss and self.rng.random() < link.loss:
            return
        q = self._queue
        while q and q[0][0] <= now:
            self._queued_bytes -= heapq.heappop(q)[1]
        if self._queued_bytes + MDS > link.queue_bytes:
            return  # drop-tail
        start = max(now, self._busy_until)
        ce = (
            flow.ect1
            and link.ce_threshold is not None
            and start - now > link.ce_threshold
        )
        departure = start + MDS * 8.0 / self.rate
        self._busy_until = departure
        heapq.heappush(q, (departure, MDS))
        self._queued_bytes += MDS
        self._at(departure + link.rtt / 2, lambda: self._arrive(flow, pn, ce))

    # -- receiver ---------------------------------------------------------------------

    def _arrive(self, flow: _Flow, pn: int, ce: bool) -> None:
        now = self.now
        received = flow.received
        largest = received.largest
        out_of_order = largest is not None and pn != largest + 1
        if not received.add(pn):
            return
        flow.result.delivered.append((now, MDS))
        if ce:
            flow.ce_count += 1
        flow.unacked += 1
        if flow.unacked >= 2 or out_of_order or ce:
            self._send_ack(flow)
        elif flow.ack_deadline is None:
            flow.ack_deadline = now + self.ack_delay
            self._at(flow.ack_deadline, lambda: self._ack_timer(flow))

    def _ack_timer(self, flow: _Flow) -> None:
        if flow.ack_deadline is not None and flow.ack_deadline <= self.now and flow.unacked:
            self._send_ack(flow)

    def _send_ack(self, flow: _Flow) -> None:
        flow.unacked = 0
        flow.ack_deadline = None
        ranges = flow.received.to_ack_ranges(32)
        ce = flow.ce_count
        self._at(self.now + self.link.rtt / 2, lambda: self._on_ack(flow, ranges, ce))

    def _on_ack(self, flow: _Flow, ranges: tuple[tuple[int, int], ...], ce: int) -> None:
        r = flow.recovery
        outcome = r.on_ack_received(APP, ranges, 0.0, self.now, ecn_ce=ce if flow.ect1 else None)
        if outcome.rtt_sampled:
            flow.result.rtts.append(r.rtt.latest_rtt)
        self._wake(flow)
