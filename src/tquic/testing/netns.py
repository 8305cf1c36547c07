"""Real kernel links for bonding tests: two network namespaces joined by rate-limited veths.

``tquic netem`` and the simulator emulate links in user space; this module
builds them out of the kernel's own parts, so a test or a benchmark can show
that a multipath connection bonds *interfaces*: packets leave through the
veth a path is pinned to (``SO_BINDTODEVICE``), queue in a real qdisc and
arrive through the kernel's stack.

A :class:`Topology` is a client namespace and a server namespace joined by
one veth pair per link ``k`` (1-based): ``10.77.k.1/24`` on ``wan{k}`` in the
client namespace, ``10.77.k.2/24`` on ``lan{k}`` in the server namespace.
Each end shapes what it sends with a token bucket (``tc qdisc … tbf``), so a
link has the same rate in both directions.  There is no delay emulation
(the ``netem`` qdisc is not assumed): a link's round trip is its queueing
delay, bounded by ``queue_ms``.

Namespace names are unique per run (``tquic-<pid>-<n>-c``/``-s``); interface
names only need to be unique inside their namespace.  :meth:`Topology.close`
(also on exceptions, as a context manager) kills every process it started
and every process left inside the namespaces, then deletes them — which
destroys the veths with them.  Namespaces left behind by a process that no
longer exists (a killed test run) are swept when the next topology is built.

Everything needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN for ``ip netns``):
:func:`unavailable_reason` says why it cannot run here, so tests skip instead
of failing.  Linux only; no pytest dependency (benchmarks use it too).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

__all__ = ["Link", "LinkSpec", "Topology", "tquic_argv", "unavailable_reason"]

_PREFIX = "tquic-"
_NAME = re.compile(r"^tquic-(\d+)-\d+-[cs]$")
_COMMAND_TIMEOUT = 10.0  # seconds for one `ip`/`tc` command
_counter = itertools.count(1)


@dataclass(frozen=True, slots=True)
class LinkSpec:
    """One link's shape: rate in Mbit/s (both directions) and its queue in milliseconds."""

    rate_mbit: float
    queue_ms: float = 50.0

    def __post_init__(self) -> None:
        if not 0.1 <= self.rate_mbit <= 10_000:
            raise ValueError(f"rate_mbit: {self.rate_mbit} is outside 0.1..10000 Mbit/s")
        if not 1.0 <= self.queue_ms <= 10_000:
            raise ValueError(f"queue_ms: {self.queue_ms} is outside 1..10000 ms")

    @property
    def burst_bytes(self) -> int:
        """The token bucket's depth.

        It must hold at least one tick of the kernel timer at the link rate
        (rate / HZ, 25 kB at 50 Mbit/s with HZ=250), else tbf cannot reach
        its rate; and at least a few full-size packets.  Deeper costs
        accuracy over short intervals only: 32 KiB is 13 ms at 20 Mbit/s.
        """
        return max(32 << 10, int(self.rate_mbit * 1e6 / 8 * 0.004))


@dataclass(frozen=True, slots=True)
class Link:
    """One veth pair as built: the names and addresses on each side."""

    index: int  # k, 1-based
    spec: LinkSpec
    client_dev: str
    server_dev: str
    client_addr: str
    server_addr: str

    @property
    def rate_mbit(self) -> float:
        return self.spec.rate_mbit


def tquic_argv(*args: str) -> list[str]:
    """``python -m tquic ARGS``: this interpreter, and the ``tquic`` this process imported.

    ``ip netns exec`` keeps the environment; PYTHONPATH is set explicitly so the
    child runs the same source tree as the caller even if another is installed.
    """
    import tquic

    src = str(Path(tquic.__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)
    return ["env", f"PYTHONPATH={path}", sys.executable, "-m", "tquic", *args]


def _run(argv: Sequence[str], *, check: bool = True,
         timeout: float = _COMMAND_TIMEOUT) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                            check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): "
                           f"{result.stderr.strip() or result.stdout.strip()}")
    return result


@functools.cache
def unavailable_reason() -> str | None:
    """Why namespaces with shaped veths cannot be built here (None: they can)."""
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "building network namespaces needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN)"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"`{tool}` (iproute2) is not installed"
    # Try the real thing once: a namespace, a veth into it and a tbf qdisc.
    probe = f"{_PREFIX}{os.getpid()}-0-c"
    try:
        _run(["ip", "netns", "add", probe])
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        return f"`ip netns add` does not work here: {exc}"
    try:
        _run(["ip", "-n", probe, "link", "add", "p0", "type", "veth", "peer", "name", "p1"])
        _run(["ip", "netns", "exec", probe, "tc", "qdisc", "add", "dev", "p0", "root", "tbf",
              "rate", "10mbit", "burst", "32kb", "latency", "50ms"])
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        return f"veth pairs or the tbf qdisc are unavailable: {exc}"
    finally:
        _run(["ip", "netns", "del", probe], check=False)
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _namespace_pids(name: str) -> list[int]:
    result = _run(["ip", "netns", "pids", name], check=False)
    return [int(p) for p in result.stdout.split() if p.isdigit()]


def _kill_namespace_processes(name: str) -> None:
    """SIGKILL whatever still runs inside a namespace of ours (nothing else can be there)."""
    for pid in _namespace_pids(name):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _delete_namespace(name: str) -> None:
    _kill_namespace_processes(name)
    _run(["ip", "netns", "del", name], check=False)


def sweep_stale_namespaces() -> list[str]:
    """Delete namespaces of earlier runs whose process is gone; returns their names."""
    result = _run(["ip", "netns", "list"], check=False)
    swept = []
    for line in result.stdout.splitlines():
        name = line.split(" ", 1)[0]
        match = _NAME.match(name)
        if match and not _pid_alive(int(match.group(1))):
            _delete_namespace(name)
            swept.append(name)
    return swept


class Topology:
    """A client and a server namespace joined by rate-limited veth pairs.

    Use as a context manager (or call :meth:`close`)::

        with Topology([LinkSpec(20), LinkSpec(10)]) as net:
            server = net.spawn("server", tquic_argv("server", "--listen", ...))
            result = net.run("client", tquic_argv("client", ...), timeout=30)
    """

    def __init__(self, links: Sequence[LinkSpec | float], *, source_routing: bool = False) -> None:
        if not 1 <= len(links) <= 250:
            raise ValueError(f"links: {len(links)} links; give 1..250")
        self.source_routing = source_routing
        self.specs = tuple(s if isinstance(s, LinkSpec) else LinkSpec(float(s)) for s in links)
        serial = next(_counter)
        self.client_ns = f"{_PREFIX}{os.getpid()}-{serial}-c"
        self.server_ns = f"{_PREFIX}{os.getpid()}-{serial}-s"
        self.links: tuple[Link, ...] = tuple(
            Link(index=k, spec=spec, client_dev=f"wan{k}", server_dev=f"lan{k}",
                 client_addr=f"10.77.{k}.1", server_addr=f"10.77.{k}.2")
            for k, spec in enumerate(self.specs, start=1))
        self._processes: list[subprocess.Popen[Any]] = []
        self._built = False

    # -- building and tearing down ----------------------------------------------------

    def __enter__(self) -> Topology:
        self.build()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def build(self) -> None:
        """Create the namespaces, veths, addresses and qdiscs (all undone on failure)."""
        reason = unavailable_reason()
        if reason is not None:
            raise RuntimeError(reason)
        sweep_stale_namespaces()
        self._built = True
        try:
            for ns in (self.client_ns, self.server_ns):
                _run(["ip", "netns", "add", ns])
                _run(["ip", "-n", ns, "link", "set", "lo", "up"])
                # Loose reverse-path filtering: a path may reach the server's first
                # address over another link, and its answers come back that way too
                # (what a multihomed host needs; RFC 3704 §2.4 "loose").
                self._sysctl(ns, "net/ipv4/conf/all/rp_filter", "2")
                self._sysctl(ns, "net/ipv4/conf/default/rp_filter", "2")
            for link in self.links:
                _run(["ip", "link", "add", link.client_dev, "netns", self.client_ns,
                      "type", "veth", "peer", "name", link.server_dev, "netns", self.server_ns])
                for ns, dev, addr in ((self.client_ns, link.client_dev, link.client_addr),
                                      (self.server_ns, link.server_dev, link.server_addr)):
                    _run(["ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", dev])
                    self._shape(ns, dev, link.spec)
                    _run(["ip", "-n", ns, "link", "set", dev, "up"])
                self._route(link)
        except BaseException:
            self.close()
            raise

    def _route(self, link: Link, *, replace: bool = False) -> None:
        """The client's routes of a multi-WAN host: a default route through every link.

        The metric ranks them (link 1 first) for sockets not pinned to a link; a
        socket pinned with SO_BINDTODEVICE uses its link's own.  They also keep
        the server's addresses routable while any link is up, which loose
        reverse-path filtering needs to accept the server's answers.  With
        ``source_routing``, a rule per client address sends what leaves from
        ``10.77.k.1`` through link ``k`` even without SO_BINDTODEVICE (the other
        common multi-WAN setup, "ip rule from ADDR table N").
        """
        verb = "replace" if replace else "add"
        _run(["ip", "-n", self.client_ns, "route", verb, "default", "via", link.server_addr,
              "dev", link.client_dev, "metric", str(100 + link.index)])
        if self.source_routing:
            table = str(100 + link.index)
            _run(["ip", "-n", self.client_ns, "route", verb, "default", "via", link.server_addr,
                  "dev", link.client_dev, "table", table])
            if not replace:  # rules outlive the link going down
                _run(["ip", "-n", self.client_ns, "rule", "add", "from", link.client_addr,
                      "table", table, "priority", str(1000 + link.index)])

    @staticmethod
    def _sysctl(ns: str, key: str, value: str) -> None:
        _run(["ip", "netns", "exec", ns, "sh", "-c", f"echo {value} > /proc/sys/{key}"])

    @staticmethod
    def _shape(ns: str, dev: str, spec: LinkSpec) -> None:
        # tbf: rate in bit/s, burst in bytes, latency bounds the queue (its byte
        # limit is rate x latency + burst); tail drop beyond it, as a router would.
        _run(["ip", "netns", "exec", ns, "tc", "qdisc", "replace", "dev", dev, "root", "tbf",
              "rate", f"{int(spec.rate_mbit * 1e6)}bit", "burst", str(spec.burst_bytes),
              "latency", f"{spec.queue_ms:g}ms"])

    def close(self) -> None:
        """Stop every process we started, then delete both namespaces (idempotent)."""
        for proc in self._processes:
            _stop(proc)
        self._processes.clear()
        if self._built:
            for ns in (self.client_ns, self.server_ns):
                _delete_namespace(ns)
            self._built = False

    # -- running things inside ---------------------------------------------------------

    def namespace(self, side: str) -> str:
        if side == "client":
            return self.client_ns
        if side == "server":
            return self.server_ns
        raise ValueError(f"side: {side!r}; use 'client' or 'server'")

    def argv(self, side: str, argv: Sequence[str]) -> list[str]:
        """``ip netns exec NS ARGV`` for the client or server side."""
        return ["ip", "netns", "exec", self.namespace(side), *argv]

    def spawn(self, side: str, argv: Sequence[str], *, stdout: int | IO[Any] | None = None,
              stderr: int | IO[Any] | None = None) -> subprocess.Popen[Any]:
        """Start ARGV in a namespace; :meth:`close` stops it if it is still running."""
        proc = subprocess.Popen(self.argv(side, argv), stdout=stdout, stderr=stderr,
                                start_new_session=True)
        self._processes.append(proc)
        return proc

    def run(self, side: str, argv: Sequence[str], *,
            timeout: float) -> subprocess.CompletedProcess[str]:
        """Run ARGV in a namespace to completion (killed after ``timeout`` seconds)."""
        proc = self.spawn(side, argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop(proc)
            out, err = proc.communicate()
            raise TimeoutError(f"{' '.join(argv)} did not finish within {timeout:g} s; "
                               f"stderr: {_text(err)[-2000:]}") from None
        return subprocess.CompletedProcess(proc.args, proc.returncode, _text(out), _text(err))

    # -- links -------------------------------------------------------------------------

    def link(self, index: int) -> Link:
        if not 1 <= index <= len(self.links):
            raise ValueError(f"index: no link {index} (1..{len(self.links)})")
        return self.links[index - 1]

    def set_link(self, index: int, up: bool) -> None:
        """Take link ``index`` down or up, on the client side (a modem unplugged)."""
        link = self.link(index)
        _run(["ip", "-n", self.client_ns, "link", "set", link.client_dev,
              "up" if up else "down"])
        if up:
            # The kernel deleted the link's routes when it went down; put them back.
            self._route(link, replace=True)

    def set_address(self, index: int, present: bool) -> None:
        """Remove or restore the client's address of link ``index`` (the link stays up: a
        DHCP lease lost and renewed); its default route goes and comes back with it."""
        link = self.link(index)
        # "replace" and an unchecked "del": both idempotent.
        _run(["ip", "-n", self.client_ns, "addr", "replace" if present else "del",
              f"{link.client_addr}/24", "dev", link.client_dev], check=present)
        if present:
            self._route(link, replace=True)

    def counters(self, index: int) -> tuple[int, int]:
        """(bytes received, bytes sent) by the client's interface of link ``index``."""
        link = self.link(index)
        result = _run(["ip", "-n", self.client_ns, "-s", "-j", "link", "show", link.client_dev])
        stats = json.loads(result.stdout)[0]["stats64"]
        return int(stats["rx"]["bytes"]), int(stats["tx"]["bytes"])


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode(errors="replace")


def _stop(proc: subprocess.Popen[Any], grace: float = 2.0) -> None:
    """SIGTERM the process group, then SIGKILL it after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return
            time.sleep(0.02)
