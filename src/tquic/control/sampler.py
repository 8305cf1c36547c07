"""The control plane's clock: one snapshot of the daemon per interval.

Every read of the API, the dashboard's live feed and ``tquic bond status``
show the same numbered sample (``seq``), so what the page shows can be
compared with what the API answers.  Between two samples the sampler derives
what counters alone cannot tell — each link's rate up and down, its share of
the total, its loss over the interval — and notices changes worth a line in
the event log (a link down or up, a role change, a demotion, a cap reached).
A write through the API takes a fresh sample at once, so it is seen at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tquic.control.model import (
    ClientInfo,
    DaemonView,
    EndpointInfo,
    LinkInfo,
    StatusInfo,
    TunnelInfo,
)

__all__ = ["Event", "LinkRates", "Sample", "Sampler"]

logger = logging.getLogger("tquic.control")

DOWN_STATES = frozenset({"down", "failed", "disabled", "abandoned"})
# Carrying traffic or ready to (a bond's standby link is up, held back by its role).
UP_STATES = frozenset({"up", "standby"})
HISTORY = 300  # samples kept for the dashboard's chart (5 minutes at 1 Hz)
EVENTS = 200
SUBSCRIBER_QUEUE = 64


@dataclass(frozen=True, slots=True)
class LinkRates:
    """What happened on one link since the previous sample."""

    up: float = 0.0  # bit/s sent
    down: float = 0.0  # bit/s received
    share: float = 0.0  # of the bytes all links moved (both ways)
    loss: float | None = None  # packets lost / sent over the interval; None if none sent


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    at: float  # seconds since the epoch
    kind: str  # link-up, link-down, link-state, link-added, link-removed, role, demoted,
    # restored, cap-reached, api, daemon (a line of the daemon's own log)
    link: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at, "kind": self.kind, "link": self.link,
                "message": self.message}


@dataclass(frozen=True, slots=True)
class Sample:
    seq: int
    at: float  # seconds since the epoch
    status: StatusInfo
    links: tuple[LinkInfo, ...]
    rates: dict[str, LinkRates] = field(default_factory=dict)
    tunnel: TunnelInfo | None = None
    clients: tuple[ClientInfo, ...] = ()
    endpoint: EndpointInfo | None = None  # a server's QUIC endpoint (None: no endpoint)

    def link(self, name: str) -> LinkInfo | None:
        return next((link for link in self.links if link.name == name), None)

    def link_json(self, link: LinkInfo) -> dict[str, Any]:
        rates = self.rates.get(link.name, LinkRates())
        return {**link.to_json(), "rate_up": rates.up, "rate_down": rates.down,
                "share": rates.share, "loss": rates.loss}

    def links_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at,
                "links": [self.link_json(link) for link in self.links]}

    def status_json(self) -> dict[str, Any]:
        s = self.status
        up = sum(1 for link in self.links if link.state in UP_STATES)
        return {
            "daemon": s.daemon, "version": s.version, "started_at": s.started_at,
            "uptime": max(0.0, self.at - s.started_at), "tunnel_address": list(s.tunnel_address),
            "peers": list(s.peers), "links": len(self.links), "links_up": up,
            "clients": len(self.clients),
            "rate_up": sum(r.up for r in self.rates.values()),
            "rate_down": sum(r.down for r in self.rates.values()),
            "seq": self.seq, "at": self.at,
            "endpoint": None if self.endpoint is None else self.endpoint.to_json(),
            **dict(s.detail),
        }

    def live_json(self) -> dict[str, Any]:
        """What the dashboard receives every interval."""
        return {"status": self.status_json(), **self.links_json(),
                "tunnel": None if self.tunnel is None else self.tunnel.to_json()}


class Sampler:
    """Polls a DaemonView every ``interval`` seconds; keeps history, events, subscribers."""

    def __init__(self, view: DaemonView, interval: float = 1.0,
                 clock: Callable[[], float] = time.time) -> None:
        if not 0.05 <= interval <= 60:
            raise ValueError(f"sample interval must be 0.05..60 s, not {interval}")
        self.view = view
        self.interval = interval
        self._clock = clock
        self._seq = 0
        self._event_seq = 0
        self.latest: Sample | None = None
        self.history: deque[Sample] = deque(maxlen=HISTORY)
        self.events: deque[Event] = deque(maxlen=EVENTS)
        self._subscribers: set[asyncio.Queue[str | None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    # -- running ---------------------------------------------------------------------------

    def start(self) -> None:
        self.take()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.drop_subscribers()

    def drop_subscribers(self) -> None:
        """End every live stream (a dashboard reconnects by itself)."""
        for queue in list(self._subscribers):
            self._close(queue)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            async with self._lock:
                self.take()

    async def sample_now(self) -> Sample:
        """A fresh sample (after a write, so that the next read shows its effect)."""
        async with self._lock:
            return self.take()

    def current(self) -> Sample:
        return self.latest if self.latest is not None else self.take()

    def take(self) -> Sample:
        """Read the view once; on a failing view keep the previous sample and log why."""
        try:
            status = self.view.status()
            links = tuple(self.view.links())
            tunnel = self.view.tunnel()
            clients = tuple(self.view.clients())
            endpoint = self.view.endpoint()
        except Exception as exc:  # the daemon's view must not take the control plane down
            logger.warning("control: reading the daemon failed: %r", exc)
            if self.latest is not None:
                return self.latest
            raise
        self._seq += 1
        now = self._clock()
        previous = self.latest
        rates = _rates(self._rate_base(now), links, now)
        sample = Sample(self._seq, now, status, links, rates, tunnel, clients, endpoint)
        self._notice(previous, sample)
        self.latest = sample
        self.history.append(sample)
        self._publish("sample", sample.live_json(), sample.seq)
        return sample

    def _rate_base(self, now: float) -> Sample | None:
        """The sample to measure rates against: the newest at least half an interval old,
        so that a sample taken right after a write does not divide by a tiny interval."""
        for sample in reversed(self.history):
            if now - sample.at >= self.interval / 2:
                return sample
        return self.history[0] if self.history else None

    # -- events ----------------------------------------------------------------------------

    def log(self, kind: str, link: str, message: str) -> Event:
        self._event_seq += 1
        event = Event(self._event_seq, self._clock(), kind, link, message)
        self.events.append(event)
        # A write through the API is worth a line in the daemon's log; the rest is what the
        # daemon logs itself (or noticed from its state), kept for the API at DEBUG only.
        if kind == "api":
            logger.info("control: %s", message)
        elif kind != "daemon":
            logger.debug("control: %s", message)
        self._publish("log", event.to_json(), None)
        return event

    def _notice(self, before: Sample | None, after: Sample) -> None:
        for line in new_lines(before.status.log if before else (), after.status.log):
            self.log("daemon", "", line)
        if before is None:
            return
        old = {link.name: link for link in before.links}
        new = {link.name: link for link in after.links}
        for name, link in new.items():
            prior = old.get(name)
            if prior is None:
                self.log("link-added", name, f"{name}: new link, {link.state}, {link.role}")
                continue
            if prior.state != link.state:
                kind = ("link-down" if link.state in DOWN_STATES
                        else "link-up" if link.state in UP_STATES else "link-state")
                self.log(kind, name, f"{name}: {prior.state} -> {link.state}")
            if prior.role != link.role:
                why = f" ({link.demoted})" if link.demoted else ""
                self.log("role", name, f"{name}: role {prior.role} -> {link.role}{why}")
            if prior.demoted != link.demoted:
                if link.demoted:
                    self.log("demoted", name, f"{name}: demoted: {link.demoted}")
                else:
                    self.log("restored", name, f"{name}: no longer demoted")
            cap = link.data_cap
            if cap is not None and link.data_used >= cap.limit > prior.data_used:
                self.log("cap-reached", name, f"{name}: data cap {cap} reached")
        for name in old.keys() - new.keys():
            self.log("link-removed", name, f"{name}: gone")

    # -- subscribers (server-sent events) ----------------------------------------------------

    def subscribe(self) -> asyncio.Queue[str | None]:
        queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=SUBSCRIBER_QUEUE)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str | None]) -> None:
        self._subscribers.discard(queue)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def _publish(self, event: str, data: dict[str, Any], seq: int | None) -> None:
        if not self._subscribers:
            return
        message = sse_message(event, data, seq)
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:  # a reader that does not keep up is let go
                self._close(queue)

    def _close(self, queue: asyncio.Queue[str | None]) -> None:
        self._subscribers.discard(queue)
        while True:
            try:
                queue.put_nowait(None)
                return
            except asyncio.QueueFull:
                queue.get_nowait()


def sse_message(event: str, data: dict[str, Any], seq: int | None = None) -> str:
    """One server-sent event (HTML Living Standard §9.2): JSON has no raw newlines."""
    head = f"event: {event}\n" + (f"id: {seq}\n" if seq is not None else "")
    return head + "data: " + json.dumps(finite(data), separators=(",", ":")) + "\n\n"


def new_lines(old: Sequence[str], new: Sequence[str]) -> list[str]:
    """The lines of a rolling log ``new`` that were not in ``old`` (its previous state):
    the longest tail of ``old`` that starts ``new`` is the overlap."""
    for start in range(len(old)):
        overlap = len(old) - start
        if tuple(new[:overlap]) == tuple(old[start:]):
            return list(new[overlap:])
    return list(new)


def finite(value: Any) -> Any:
    """JSON has no NaN or infinity: a daemon's non-finite float becomes null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def _rates(previous: Sample | None, links: Sequence[LinkInfo], now: float
           ) -> dict[str, LinkRates]:
    if previous is None or now <= previous.at:
        return {link.name: LinkRates() for link in links}
    dt = now - previous.at
    deltas: dict[str, tuple[int, int, int, int]] = {}
    for link in links:
        prior = previous.link(link.name)
        if prior is None:
            deltas[link.name] = (0, 0, 0, 0)
            continue
        deltas[link.name] = (
            _delta(prior.bytes_sent, link.bytes_sent),
            _delta(prior.bytes_received, link.bytes_received),
            _delta(prior.packets_sent, link.packets_sent),
            _delta(prior.packets_lost, link.packets_lost))
    total = sum(sent + received for sent, received, _, _ in deltas.values())
    by_name = {link.name: link for link in links}
    rates: dict[str, LinkRates] = {}
    for name, (sent, received, packets, lost) in deltas.items():
        rates[name] = LinkRates(
            up=sent * 8 / dt, down=received * 8 / dt,
            share=(sent + received) / total if total else 0.0,
            loss=min(1.0, lost / packets) if packets else by_name[name].recent_loss)
    return rates


def _delta(before: int, after: int) -> int:
    # A counter that went backwards belongs to a new path under the same link name.
    return after - before if after >= before else after
