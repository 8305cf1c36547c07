"""The real-time UDP link emulator: a relay that impairs each client's datagrams.

Datagrams from a client (source address A) to the listen address are forwarded
to the target from an upstream socket of A's own, so the target's replies come
back on that socket and are returned to A.  Each direction runs through a
``tquic.sim.link.Pipe`` driven by a :class:`~tquic.netem.clock.RealtimeClock`:
the same loss / burst / queue / serialisation / delay / jitter / reorder /
corruption / outage model as the simulator, delivering on asyncio timers.  The
profile is chosen by A (``LinkTable.lookup``), so clients bound to 127.0.0.2,
127.0.0.3, ... see different links on one machine without root.

Everything is bounded: clients (``max_clients``; idle ones expire), datagrams
per direction (the rule's limit, queue + delay line), datagrams read per wake-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import random
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from tquic.io.udp import UdpSocket
from tquic.netem.clock import NOT_LATE, Lateness, RealtimeClock
from tquic.netem.spec import LinkRule, LinkTable
from tquic.paths.network_path import Address, NetworkPath
from tquic.sim.link import DROP_CAUSES, Pipe, PipeStats

__all__ = ["EPOCHS", "FlowStats", "NetemRelay", "NetemThread", "format_stats"]

READS_PER_WAKEUP = 256
# When the emulator's clock (outage and flap times) starts: when the relay starts, or at
# the first datagram any client sends -- a scripted run ("the link dies 2.5 s into the
# transfer") then does not depend on how long the client took to start.
EPOCHS = ("start", "first")
DEFAULT_MAX_CLIENTS = 256
DEFAULT_IDLE_TIMEOUT = 300.0


@dataclass(frozen=True, slots=True)
class FlowStats:
    """Counters of one client's link: both pipes, plus the emulator's own drops."""

    client: Address
    profile: str
    up: PipeStats
    down: PipeStats
    up_overflow: int  # dropped: the direction already held ``limit`` datagrams
    down_overflow: int
    send_errors: int  # the OS refused a send (socket buffer full)
    # How late the deliveries were against the model (the relay not scheduled in time).
    up_late: Lateness = NOT_LATE
    down_late: Lateness = NOT_LATE


SOCKET_BUFFER = 4 << 20  # bytes; the kernel caps it at net.core.[rw]mem_max


def _tune(sock: socket.socket) -> None:
    """Non-blocking with large buffers: a client's burst must reach the link model (and
    its queue limit) rather than overflow the relay's socket first."""
    sock.setblocking(False)
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET


class _UpSender:
    """Receives datagrams leaving the up pipe: sends them to the target."""

    __slots__ = ("flow",)

    def __init__(self, flow: _Flow) -> None:
        self.flow = flow

    def deliver(self, data: bytes, network_path: NetworkPath, ecn: int = 0) -> None:
        # The ECN field goes on as the link left it: the sender's mark, CE where the
        # link's queue marked it (LinkProfile.ecn), cleared where it bleaches.
        flow = self.flow
        if not flow.udp.send(data, flow.target, ecn):
            flow.send_errors += 1


class _DownSender:
    """Receives datagrams leaving the down pipe: sends them back to the client."""

    __slots__ = ("flow", "relay")

    def __init__(self, relay: NetemRelay, flow: _Flow) -> None:
        self.relay = relay
        self.flow = flow

    def deliver(self, data: bytes, network_path: NetworkPath, ecn: int = 0) -> None:
        udp = self.relay._udp
        if udp is None:
            return
        if not udp.send(data, self.flow.client, ecn):
            self.flow.send_errors += 1


class _Flow:
    """One client address: its upstream socket and its two pipes."""

    __slots__ = ("client", "down", "down_clock", "down_overflow", "down_path", "down_rx",
                 "last_active", "last_down_bytes", "last_up_bytes", "rule", "send_errors",
                 "sock", "target", "udp", "up", "up_clock", "up_overflow", "up_path",
                 "up_rx")

    def __init__(self, relay: NetemRelay, loop: asyncio.AbstractEventLoop, client: Address,
                 rule: LinkRule, index: int, sock: socket.socket) -> None:
        origin, seed = relay.origin, relay.seed
        self.client = client
        self.rule = rule
        self.sock = sock
        # ECN marks are read and written through tquic's UDP layer (IP_RECVTOS/IP_TOS
        # cmsgs); one datagram per read and send, as the pipes need them.
        self.udp = UdpSocket(sock, gso=False, gro=False)
        self.target = relay.target
        self.up_clock = RealtimeClock(loop, origin)
        self.down_clock = RealtimeClock(loop, origin)
        # One generator per direction, seeded from the run seed, the client host and
        # the how-many-th client of that host: a run is repeatable for a given seed.
        base = f"{seed}/{client[0]}/{index}"
        self.up = Pipe(self.up_clock, rule.up, random.Random(base + "/up"), f"{client} up")
        self.down = Pipe(self.down_clock, rule.down, random.Random(base + "/down"),
                         f"{client} down")
        self.up_path = NetworkPath(client, relay.target)
        self.down_path = NetworkPath(relay.target, client)
        self.up_rx = _UpSender(self)
        self.down_rx = _DownSender(relay, self)
        self.up_overflow = 0
        self.down_overflow = 0
        self.send_errors = 0
        self.last_active = time.monotonic()
        self.last_up_bytes = 0
        self.last_down_bytes = 0

    def stats(self) -> FlowStats:
        return FlowStats(self.client, self.rule.text, self.up.stats(), self.down.stats(),
                         self.up_overflow, self.down_overflow, self.send_errors,
                         self.up_clock.lateness(), self.down_clock.lateness())


class NetemRelay:
    """Listen on ``listen``, forward to ``target``, impair per client source address.

    Use inside a running asyncio loop: ``start()``, then ``await run(stop_event)``
    (or drive it yourself and call ``close()``).
    """

    def __init__(self, listen: Address, target: Address, table: LinkTable, *, seed: int = 0,
                 max_clients: int = DEFAULT_MAX_CLIENTS,
                 idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
                 out: Callable[[str], None] | None = None, epoch: str = "start") -> None:
        if max_clients < 1:
            raise ValueError(f"max_clients: must be >= 1, got {max_clients}")
        if not idle_timeout > 0:
            raise ValueError(f"idle_timeout: must be > 0 seconds, got {idle_timeout}")
        if epoch not in EPOCHS:
            raise ValueError(f"epoch: must be one of {', '.join(EPOCHS)}, got {epoch!r}")
        self.epoch = epoch
        self.listen = listen
        self.target = target
        self.table = table
        self.seed = seed
        self.max_clients = max_clients
        self.idle_timeout = idle_timeout
        self.out = out if out is not None else _print_flush
        # asyncio time outage times count from: start(), or the first datagram (epoch)
        self.origin = 0.0
        # asyncio (= time.monotonic()) time of the first client datagram, None before it
        self.first_datagram_at: float | None = None
        self.refused = 0  # datagrams from new clients beyond max_clients
        self._loop: asyncio.AbstractEventLoop | None = None  # set by start()
        self._sock: socket.socket | None = None
        self._udp: UdpSocket | None = None
        self._flows: dict[Address, _Flow] = {}
        self._per_host: dict[str, int] = {}
        self._closed_stats: list[FlowStats] = []
        self._last_report = 0.0

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def address(self) -> Address:
        """The bound listen address (the real port when ``listen`` had port 0)."""
        if self._sock is None:
            raise RuntimeError("netem relay not started")
        name = self._sock.getsockname()
        return (str(name[0]), int(name[1]))

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop the relay runs on, None before ``start``."""
        return self._loop

    def start(self) -> Address:
        """Bind the listen socket and start relaying (call from the running loop)."""
        loop = self._loop = asyncio.get_running_loop()
        # Outage times and idle checks use time.monotonic(), the clock asyncio's
        # default loops run on; the pipes' timers use loop.time() from this origin.
        self.origin = loop.time()
        self._last_report = time.monotonic()
        sock = socket.socket(_family(self.listen[0]), socket.SOCK_DGRAM)
        try:
            _tune(sock)
            sock.bind(self.listen)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._udp = UdpSocket(sock, gso=False, gro=False)
        loop.add_reader(sock.fileno(), self._on_client_readable)
        return self.address

    def close(self) -> None:
        """Stop reading, drop what is in flight, close every socket."""
        loop = self._loop
        for flow in list(self._flows.values()):
            self._close_flow(flow)
        if self._sock is not None:
            if loop is not None:
                loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
            self._udp = None

    async def run(self, stop: asyncio.Event, stats_interval: float = 0.0) -> None:
        """Relay until ``stop`` is set; a stats line per link every ``stats_interval``
        seconds (0: only at the end); expire idle clients; then close."""
        if self._sock is None:
            self.start()
        tick = min(1.0, stats_interval) if stats_interval > 0 else 1.0
        next_stats = time.monotonic() + stats_interval
        try:
            while not stop.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), tick)
                now = time.monotonic()
                self._expire_idle(now)
                if stats_interval > 0 and now >= next_stats:
                    next_stats = now + stats_interval
                    self.report()
        finally:
            self.report(final=True)
            self.close()

    # -- datagrams ------------------------------------------------------------------------

    def _on_client_readable(self) -> None:
        udp = self._udp
        if udp is None:
            return
        flows = self._flows
        # ICMP errors reported on the socket are skipped by recv().
        for datagram in udp.recv(READS_PER_WAKEUP):
            client = datagram.addr
            if self.first_datagram_at is None:
                self._first_datagram(client)
            flow = flows.get(client)
            if flow is None:
                flow = self._new_flow(client)
                if flow is None:
                    continue
            flow.last_active = time.monotonic()
            if flow.up_clock.pending >= flow.rule.up_limit:
                flow.up_overflow += 1
                continue
            flow.up.offer(datagram.data, flow.up_rx, flow.up_path, datagram.ecn)

    def _first_datagram(self, client: Address) -> None:
        loop = self._loop
        if loop is None:
            return
        now = self.first_datagram_at = loop.time()
        if self.epoch == "first":
            # No flow exists yet, so every pipe is built on this origin.
            self.origin = now
            self.out(f"netem: clock started by the first datagram, from {client[0]}:{client[1]} "
                     f"(monotonic {now:.6f}); outage times count from here")

    def _on_target_readable(self, flow: _Flow) -> None:
        for datagram in flow.udp.recv(READS_PER_WAKEUP):
            flow.last_active = time.monotonic()
            if flow.down_clock.pending >= flow.rule.down_limit:
                flow.down_overflow += 1
                continue
            flow.down.offer(datagram.data, flow.down_rx, flow.down_path, datagram.ecn)

    def _new_flow(self, client: Address) -> _Flow | None:
        loop = self._loop
        if loop is None:
            return None
        if len(self._flows) >= self.max_clients:
            self.refused += 1
            return None
        rule = self.table.lookup(client)
        sock = socket.socket(_family(self.target[0]), socket.SOCK_DGRAM)
        try:
            _tune(sock)
            sock.connect(self.target)
        except OSError:
            sock.close()
            self.refused += 1
            return None
        index = self._per_host.get(client[0], 0)
        self._per_host[client[0]] = index + 1
        flow = _Flow(self, loop, client, rule, index, sock)
        self._flows[client] = flow
        loop.add_reader(sock.fileno(), self._on_target_readable, flow)
        return flow

    def _close_flow(self, flow: _Flow) -> None:
        flow.up_clock.closed = True
        flow.down_clock.closed = True
        if self._loop is not None:
            self._loop.remove_reader(flow.sock.fileno())
        flow.sock.close()
        self._flows.pop(flow.client, None)
        self._closed_stats.append(flow.stats())
        del self._closed_stats[:-self.max_clients]

    def _expire_idle(self, now: float) -> None:
        for flow in list(self._flows.values()):
            if (now - flow.last_active > self.idle_timeout
                    and not flow.up_clock.pending and not flow.down_clock.pending):
                self._close_flow(flow)

    # -- stats ----------------------------------------------------------------------------

    def stats(self) -> list[FlowStats]:
        """Counters of every live client link, in order of first datagram."""
        return [flow.stats() for flow in self._flows.values()]

    def closed_stats(self) -> list[FlowStats]:
        """Counters of links closed (idle or at shutdown), most recent last."""
        return list(self._closed_stats)

    def report(self, final: bool = False) -> None:
        """One stats line per live link (rates over the time since the last report)."""
        now = time.monotonic()
        elapsed = max(1e-9, now - self._last_report)
        self._last_report = now
        for flow in self._flows.values():
            st = flow.stats()
            up_rate = (st.up.delivered_bytes - flow.last_up_bytes) * 8 / elapsed
            down_rate = (st.down.delivered_bytes - flow.last_down_bytes) * 8 / elapsed
            flow.last_up_bytes = st.up.delivered_bytes
            flow.last_down_bytes = st.down.delivered_bytes
            self.out(format_stats(st, up_rate, down_rate, final=final))
        if final and self.refused:
            self.out(f"netem: {self.refused} datagram(s) refused (more than "
                     f"{self.max_clients} clients, or the target could not be reached)")


def _drops(st: PipeStats, overflow: int, late: Lateness) -> str:
    parts = [f"{cause}={st.drops(cause)}" for cause in DROP_CAUSES if cause != "nat"]
    parts.append(f"limit={overflow}")
    # Fidelity: deliveries more than 2 ms behind the model, the mean and worst lateness.
    parts.append(f"late={late.late} (mean {late.mean * 1000:.2f} ms, "
                 f"max {late.max * 1000:.1f} ms)")
    # ECN: shown only on links that mark or bleach (ecn= in the profile).
    if st.ce_marked:
        parts.append(f"ce={st.ce_marked}")
    if st.bleached:
        parts.append(f"bleached={st.bleached}")
    return " ".join(parts)


def format_stats(st: FlowStats, up_bps: float, down_bps: float, *, final: bool = False) -> str:
    """``netem HOST:PORT [profile] up: N pkt, B bytes, R Mbit/s, drops ... | down: ...``"""
    head = "netem total" if final else "netem"
    return (f"{head} {st.client[0]}:{st.client[1]} [{st.profile}] "
            f"up: {st.up.delivered}/{st.up.offered} pkt {st.up.delivered_bytes} B "
            f"{up_bps / 1e6:.2f} Mbit/s {_drops(st.up, st.up_overflow, st.up_late)} | "
            f"down: {st.down.delivered}/{st.down.offered} pkt {st.down.delivered_bytes} B "
            f"{down_bps / 1e6:.2f} Mbit/s {_drops(st.down, st.down_overflow, st.down_late)}"
            + (f" | send errors {st.send_errors}" if st.send_errors else ""))


def _print_flush(line: str) -> None:
    print(line, flush=True)


class NetemThread:
    """A relay on its own asyncio loop in a daemon thread (for tests and scripts)::

        with NetemThread(("127.0.0.1", 0), target, table) as relay:
            send_to(relay.address) ...
        relay.final_stats
    """

    def __init__(self, listen: Address, target: Address, table: LinkTable, *, seed: int = 0,
                 out: Callable[[str], None] | None = None,
                 max_clients: int = DEFAULT_MAX_CLIENTS,
                 idle_timeout: float = DEFAULT_IDLE_TIMEOUT, epoch: str = "start") -> None:
        self.relay = NetemRelay(listen, target, table, seed=seed,
                                out=out if out is not None else (lambda _line: None),
                                max_clients=max_clients, idle_timeout=idle_timeout,
                                epoch=epoch)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="tquic-netem", daemon=True)
        self.final_stats: list[FlowStats] = []

    @property
    def address(self) -> Address:
        return self.relay.address

    @property
    def origin(self) -> float:
        """``time.monotonic()`` at which the emulator's clock (outage times) started."""
        return self.relay.origin

    def start(self) -> Address:
        self._thread.start()
        if not self._ready.wait(5.0):
            raise RuntimeError("netem relay did not start within 5 s")
        if self._error is not None:
            raise self._error
        return self.address

    def stop(self) -> list[FlowStats]:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        self._thread.join(5.0)
        return self.final_stats

    def __enter__(self) -> NetemThread:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # reported to start(); the thread must not die silently
            if not self._ready.is_set():
                self._error = exc
                self._ready.set()
            else:
                print(f"netem thread failed: {exc!r}", file=sys.stderr)

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            self.relay.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        relay = self.relay
        try:
            await relay.run(self._stop)
        finally:
            self.final_stats = relay.closed_stats()
