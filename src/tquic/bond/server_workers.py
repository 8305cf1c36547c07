"""``tquic bond server --workers N``: N processes on one UDP port, each with its own
TUN and its own slice of the address pool.

::

                 SO_REUSEPORT group, cBPF steering by CID (tquic.io.workers)
  clients ──► UDP :4433 ─┬─► worker 0: BondServer, TUN bondsrv0, 10.99.0.0/25
                         └─► worker 1: BondServer, TUN bondsrv1, 10.99.0.128/25
  internet ◄─► kernel routes (a /25 per TUN), --nat once for the whole pool

The parent (:class:`WorkerGroup`) binds the group and attaches the steering program
exactly as ``tquic server --workers`` does, so every packet of a connection -- after
a migration and on every path of a multipath connection -- reaches the worker that
holds it; a new connection's Initial goes where the kernel's 4-tuple hash puts it.
It makes the keys all workers share (Retry/NEW_TOKEN tokens and stateless resets,
so a restarted worker resets its predecessor's connections at once), switches
forwarding on and installs the NAT once, and starts the workers
(:mod:`tquic.bond.server_worker`).  Each worker answers for the addresses of its
slice (the kernel routes them to its TUN) and adds routes for what else its
clients own (a fixed address from another slice, site-to-site networks).

The parent keeps a directory of every worker's clients: a client that reconnects
to another worker has its old tunnel closed (one tunnel per client, as with one
process), and each worker learns the others' clients so ``reach`` isolation holds
between workers.  It serves the control plane for the whole server (the workers'
status snapshots merged, ``/status`` ``detail.workers`` per worker).  A worker
that dies is logged and restarted (its clients reconnect; their addresses may
change); one that dies RESTART_LIMIT times within RESTART_WINDOW seconds, or
cannot start, stops the server with a message saying which and why.  The parent
keeps every socket of the group open, so a restarted worker gets its
predecessor's socket and the group's order -- what the steering program indexes
-- never changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tquic.bond import nat
from tquic.bond.config import ServerConfig
from tquic.bond.credentials import check_key_pair
from tquic.bond.links_config import BondConfigError
from tquic.bond.server_worker import Channel, Directory, WorkerSpec
from tquic.bond.status import BondStatus, ClientSessionStatus, SteeringError

logger = logging.getLogger("tquic.bond")

RESTART_LIMIT = 5  # deaths of one worker within RESTART_WINDOW: the server stops
RESTART_WINDOW = 60.0
START_TIMEOUT = 60.0  # seconds for a worker to report ready (its TUN, its listener)
STOP_GRACE = 10.0  # seconds for the workers to close their tunnels at exit
_LOG_LINES = 200


class WorkerFailed(RuntimeError):
    """A worker could not start, or keeps dying; the message says which and why."""


def worker_tun_names(base: str, count: int) -> list[str]:
    """The workers' TUN names: ``bondsrv0`` → bondsrv0, bondsrv1…; ``tqb`` → tqb0, tqb1…"""
    match = re.fullmatch(r"(.*?)(\d+)", base)
    prefix, first = (match.group(1), int(match.group(2))) if match else (base, 0)
    names = [f"{prefix}{first + i}" for i in range(count)]
    if len(names[-1]) > 15:
        raise BondConfigError("tun", f"{names[-1]!r} is longer than 15 characters: give "
                                     "--tun a shorter name for the workers' TUNs")
    return names


@dataclass(eq=False)
class _Worker:
    index: int
    tun: str
    sock: Any  # its UdpSocket of the group, kept open here for its whole life
    proc: asyncio.subprocess.Process | None = None
    channel: Channel | None = None
    status: BondStatus | None = None
    restarts: int = 0
    deaths: deque[float] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        return self.channel is not None


class WorkerGroup:
    """The parent of the workers; a ``BondControl`` over all of them (docs/bond.md)."""

    def __init__(self, config: ServerConfig, *, verbose: bool = False) -> None:
        self.config = config
        self.verbose = verbose
        self.tuns = worker_tun_names(config.tun, config.workers)
        self._workers: list[_Worker] = []
        self._directory: Directory = {}
        self._log: deque[str] = deque(maxlen=_LOG_LINES)
        self._forwarding: dict[int, str] = {}
        self._nat = False
        self._keys: dict[str, bytes] = {}
        self._lb: Any = None
        self._started = time.monotonic()
        self._stopping = False
        self.failure: str | None = None
        self.failed = asyncio.Event()

    def note(self, line: str) -> None:
        logger.info("%s", line)
        self._log.append(line)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind, set up forwarding and NAT, start every worker (raises WorkerFailed,
        NatError, OSError, BondConfigError; whatever was set up is removed again)."""
        from tquic.io.workers import farm_keys, lb_config, reuseport_group

        config = self.config
        check_key_pair(config.cert, config.key)
        self._lb = lb_config()
        self._keys = farm_keys(os.urandom(32))
        host, port = config.listen
        sockets, steered = reuseport_group(host, port, config.workers, self._lb.cid_length)
        self._workers = [_Worker(i, tun, sock)
                         for i, (tun, sock) in enumerate(zip(self.tuns, sockets, strict=True))]
        try:
            self._forwarding = nat.enable_forwarding([n.version for n in config.pool])
            if config.nat:
                nat.install(config.tun, config.pool, interfaces=self.tuns)
                self._nat = True
            await asyncio.gather(*(self._spawn(w) for w in self._workers))
        except BaseException:
            await self.close()
            raise
        for worker in self._workers:
            worker.task = asyncio.ensure_future(self._watch(worker))
        bound = sockets[0].local_address
        self.note(f"server listening on {host}:{bound[1]}, pool "
                  f"{', '.join(str(n) for n in config.pool)}{', nat' if self._nat else ''} "
                  f"({config.workers} workers: tun {', '.join(self.tuns)}"
                  f"{'' if steered else '; the kernel refused CID steering: 4-tuple hash only'})")

    async def close(self) -> None:
        """Stop every worker (each closes its tunnels and its TUN), then remove the NAT
        table, put forwarding back and close the group's sockets."""
        self._stopping = True
        for worker in self._workers:
            if worker.task is not None:
                worker.task.cancel()
        await asyncio.gather(*(w.task for w in self._workers if w.task is not None),
                             return_exceptions=True)
        await asyncio.gather(*(self._stop(w) for w in self._workers), return_exceptions=True)
        if self._nat:
            nat.remove(self.config.tun)
            self._nat = False
        nat.restore_forwarding(self._forwarding)
        self._forwarding = {}
        for worker in self._workers:
            worker.sock.close()

    async def _stop(self, worker: _Worker) -> None:
        proc, channel = worker.proc, worker.channel
        worker.channel = None
        if proc is None:
            return
        if channel is not None:
            channel.send("stop")
            await channel.drain()
        try:
            await asyncio.wait_for(proc.wait(), STOP_GRACE)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        if channel is not None:
            channel.close()

    async def _spawn(self, worker: _Worker) -> None:
        """Start ``worker``'s process and wait until it serves (raises WorkerFailed)."""
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        udp_fd = worker.sock.sock.fileno()
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tquic.bond.server_worker", str(udp_fd),
                str(child_end.fileno()), pass_fds=(udp_fd, child_end.fileno()),
                stdin=subprocess.DEVNULL)
        except BaseException:
            parent_end.close()
            raise
        finally:
            child_end.close()
        worker.proc = proc
        channel = await Channel.open(parent_end)
        channel.send("start", WorkerSpec(worker.index, self.config.workers, self.config,
                                         worker.tun, self._lb, self._keys, self.verbose))
        channel.send("peers", dict(self._directory))
        try:
            first = await asyncio.wait_for(channel.receive(), START_TIMEOUT)
        except TimeoutError:
            first = None
        if first is None or first[0] != "ready":
            channel.close()
            try:
                code = await asyncio.wait_for(proc.wait(), 2.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                code = await proc.wait()
            why = (str(first[1]) if first is not None and first[0] == "failed"
                   else _exit_text(code))
            raise WorkerFailed(f"worker {worker.index} ({worker.tun}): {why}")
        worker.channel = channel

    async def _watch(self, worker: _Worker) -> None:
        """Read the worker's messages; when it is gone, restart it (or give up)."""
        while True:
            channel, proc = worker.channel, worker.proc
            if channel is not None:
                while (message := await channel.receive()) is not None:
                    self._on_message(worker, message)
                channel.close()
            worker.channel = None
            code = await proc.wait() if proc is not None else 1
            pid = proc.pid if proc is not None else 0
            clients = len(worker.status.clients) if worker.status is not None else 0
            worker.status = None
            self._forget(worker.index)
            now = time.monotonic()
            worker.deaths.append(now)
            while worker.deaths and worker.deaths[0] < now - RESTART_WINDOW:
                worker.deaths.popleft()
            if len(worker.deaths) >= RESTART_LIMIT:
                self._fail(f"worker {worker.index} ({worker.tun}) died {len(worker.deaths)} "
                           f"times within {RESTART_WINDOW:g} s (last: {_exit_text(code)}); "
                           "stopping the server")
                return
            self.note(f"worker {worker.index} (pid {pid}, tun {worker.tun}) "
                      f"{_exit_text(code)}; its {clients} client(s) reconnect; restarting")
            await asyncio.sleep(min(5.0, 0.25 * 2 ** len(worker.deaths)))
            try:
                await self._spawn(worker)
            except WorkerFailed as exc:
                self.note(f"restart failed: {exc}")
                continue
            worker.restarts += 1
            pid = worker.proc.pid if worker.proc is not None else 0
            self.note(f"worker {worker.index} restarted (pid {pid})")

    def _fail(self, message: str) -> None:
        logger.error("%s", message)
        self._log.append(message)
        self.failure = message
        self.failed.set()

    # -- the directory of clients ------------------------------------------------------------

    def _on_message(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "status" and isinstance(message[1], BondStatus):
            worker.status = message[1]
            for line in message[2]:
                self._log.append(f"[worker {worker.index}] {line}")
        elif kind == "up":
            name = message[1]
            previous = self._directory.get(name)
            if previous is not None and previous[0] != worker.index:
                other = self._workers[previous[0]]
                if other.channel is not None:
                    other.channel.send("evict", name, f"reconnected to worker {worker.index}")
            self._directory[name] = (worker.index, message[2], message[3])
            self._broadcast()
        elif kind == "down":
            entry = self._directory.get(message[1])
            if entry is not None and entry[0] == worker.index:
                del self._directory[message[1]]
                self._broadcast()

    def _forget(self, index: int) -> None:
        gone = [name for name, entry in self._directory.items() if entry[0] == index]
        for name in gone:
            del self._directory[name]
        if gone:
            self._broadcast()

    def _broadcast(self) -> None:
        directory = dict(self._directory)
        for worker in self._workers:
            if worker.channel is not None:
                worker.channel.send("peers", directory)

    # -- BondControl ---------------------------------------------------------------------------

    def status(self) -> BondStatus:
        statuses = [w.status for w in self._workers if w.status is not None]
        clients: tuple[ClientSessionStatus, ...] = tuple(
            c for st in statuses for c in st.clients)
        lanes = [st.lane for st in statuses if st.lane is not None]
        return BondStatus("server", round(time.monotonic() - self._started, 3),
                          bool(self._workers) and all(w.alive for w in self._workers),
                          clients=clients, auth_failures=sum(st.auth_failures for st in statuses),
                          log=tuple(self._log), lane=_summed(lanes) if lanes else None,
                          endpoints=tuple(e for st in statuses for e in st.endpoints))

    def workers(self) -> list[dict[str, Any]]:
        """One row per worker for ``/status`` (``detail.workers``) and ``bond status``."""
        return [{"index": w.index, "tun": w.tun, "pid": w.proc.pid if w.proc else None,
                 "state": "up" if w.alive else "restarting", "restarts": w.restarts,
                 "clients": [c.name for c in w.status.clients] if w.status else []}
                for w in self._workers]

    def _no_links(self, *_: object) -> None:
        raise SteeringError("a server has no links to steer; steer the client")

    set_role = set_weight = set_cap = link_down = link_up = _no_links

    def reopen(self, link: str | None = None) -> list[str]:
        raise SteeringError("a server opens no paths: its clients re-open their links")

    def reload(self) -> None:
        """Nothing to reload (as with one process)."""


def _exit_text(code: int) -> str:
    return f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"


def _summed(values: list[dict[str, Any]]) -> dict[str, Any]:
    """The workers' lane counters added up (nested tables too; other values: the first)."""
    out: dict[str, Any] = {}
    for value in values:
        for key, item in value.items():
            if key not in out:
                out[key] = item
            elif isinstance(item, dict) and isinstance(out[key], dict):
                out[key] = _summed([out[key], item])
            elif isinstance(item, int | float) and isinstance(out[key], int | float):
                out[key] = out[key] + item
    return out
