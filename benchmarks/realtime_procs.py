"""One real-time run for benchmarks/realtime.py: three processes, timed as a user would.

``tquic server`` (the sender of the download), ``tquic netem`` (one emulated link per
client source address, ``--epoch first`` so a link cut lands N s after the client's
first datagram) and ``tquic client`` with one ``--path`` per link (127.0.0.2, .3, ...).
The client is timed from spawn to exit, as ``time`` does.  Its output file is a FIFO
read here: every read is timestamped, so the longest gap in in-order delivery, the
moment of the last byte and the bytes' SHA-256 come from what the application really
got, without any hook in the client.  netem prints the monotonic time of the first
datagram, which starts the "transfer" clock the simulator's t = 0 corresponds to.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import resource
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

CLK_TCK = os.sysconf("SC_CLK_TCK")
PIPE_SIZE = 1 << 20  # the FIFO's buffer (Linux's default maximum): the client never waits on us
CLIENT_IDLE_TIMEOUT = 10.0  # tquic client --timeout (handshake and idle)
# SCHED_FIFO priorities (run_once's ``priority``): low, so the kernel's own real-time
# threads still come first, and RT throttling (sched_rt_runtime_us) bounds them.  The
# instruments (netem, the output reader) above the endpoints, which must not delay them.
RT_PRIORITY = 20
RT_ENDPOINTS = 10
PRIORITIES = ("none", "netem", "all")


def realtime_available() -> bool:
    """SCHED_FIFO can be set here (root, or CAP_SYS_NICE) with chrt (util-linux)."""
    try:
        return subprocess.run(["chrt", "-f", str(RT_PRIORITY), "true"], capture_output=True,
                              timeout=10, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _rt_prefix(on: bool, priority: int = RT_PRIORITY) -> list[str]:
    return ["chrt", "-f", str(priority)] if on else []


@dataclass(frozen=True, slots=True)
class Link:
    """One emulated access link, the same both ways: rate (bit/s at the IP layer, 28 bytes
    of IPv4+UDP header counted per datagram), one-way delay, random loss, queue in
    packets, and optionally the time (after the first datagram) it dies for good."""

    rate_bps: float
    delay: float
    loss: float = 0.0
    queue_packets: int = 1000
    cut_at: float | None = None

    def netem_profile(self) -> str:
        text = (f"rate={self.rate_bps:.0f}bit,delay={self.delay * 1000:g}ms,"
                f"queue={self.queue_packets},overhead=28")
        if self.loss:
            text += f",loss={self.loss * 100:g}%"
        if self.cut_at is not None:
            text += f",outage={self.cut_at:g}s-"
        return text


@dataclass(slots=True)
class RealRun:
    """What one real-time run measured (times in seconds, time.monotonic() based)."""

    wall: float = 0.0  # client spawn to exit: what `time` prints as "real"
    startup: float | None = None  # spawn to the first datagram netem saw
    transfer: float | None = None  # first datagram to the last byte delivered
    first_byte: float | None = None  # first datagram to the first byte delivered
    stall: float = 0.0  # longest gap between two deliveries to the application
    stall_at: float | None = None  # when it began, seconds after the first datagram
    exit_delay: float | None = None  # last byte delivered to process exit
    bytes: int = 0
    intact: bool = False  # every byte, SHA-256 equal to what the server generated
    client_seconds: float | None = None  # the client's own "seconds" (request to last byte)
    other_load: float = 0.0  # cores kept busy by other processes during the run
    cpu_client: float = 0.0
    cpu_server: float = 0.0
    cpu_netem: float = 0.0
    # Seconds the processes were runnable but waiting for a CPU (/proc/PID/schedstat):
    # what a loaded machine costs the run, process by process.
    wait_client: float = 0.0
    wait_server: float = 0.0
    wait_netem: float = 0.0
    netem_late: int = 0  # netem deliveries more than 2 ms behind its model
    netem_delivered: int = 0
    netem_late_max: float = 0.0  # seconds
    rcvbuf_drops: int = 0  # UDP datagrams the kernel dropped for a full socket buffer
    error: str | None = None
    paths: list[dict[str, Any]] = field(default_factory=list)
    netem: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def expected_sha256(size: int) -> str:
    """The SHA-256 of the server's generated body of ``/size`` (byte i is i % 256)."""
    from tquic.cli.hq import CHUNK, generated_body

    digest = hashlib.sha256()
    for offset in range(0, size, CHUNK):
        digest.update(generated_body(min(CHUNK, size - offset), offset))
    return digest.hexdigest()


# -- CPU accounting (as benchmarks/bulk.py) ------------------------------------------------


def machine_busy() -> float:
    """Busy CPU seconds of the whole machine (all but idle and iowait), from /proc/stat."""
    try:
        with open("/proc/stat") as handle:
            ticks = [int(x) for x in handle.readline().split()[1:]]
    except OSError:
        return 0.0
    return (sum(ticks) - ticks[3] - ticks[4]) / CLK_TCK


def proc_cpu(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_queue_wait(pid: int) -> float | None:
    """Seconds the threads of ``pid`` spent runnable but not running (schedstat's second
    field), or None when the process is gone or the kernel does not keep it."""
    total = 0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/schedstat") as handle:
                total += int(handle.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return total / 1e9


def udp_rcvbuf_errors() -> int:
    """The machine's count of UDP datagrams dropped for a full receive buffer."""
    try:
        with open("/proc/net/snmp") as handle:
            rows = [line.split() for line in handle if line.startswith("Udp:")]
        return int(rows[1][rows[0].index("RcvbufErrors")])
    except (OSError, ValueError, IndexError):
        return 0


class WaitWatcher(threading.Thread):
    """Samples a child's run-queue wait until it exits (its /proc entry goes with it)."""

    def __init__(self, pid: int) -> None:
        super().__init__(name="schedstat", daemon=True)
        self.pid = pid
        self.first: float | None = None
        self.last: float | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            wait = run_queue_wait(self.pid)
            if wait is None:
                return
            if self.first is None:
                self.first = wait
            self.last = wait
            self.stop.wait(0.02)

    @property
    def waited(self) -> float:
        return 0.0 if self.first is None or self.last is None else self.last - self.first


# -- the client's output, read through a FIFO --------------------------------------------


class FifoReader(threading.Thread):
    """Reads the FIFO the client writes its download to; times every read."""

    def __init__(self, path: Path) -> None:
        super().__init__(name="fifo-reader", daemon=True)
        self.path = path
        self.digest = hashlib.sha256()
        self.bytes = 0
        self.opened = False
        self.first: float | None = None
        self.last: float | None = None
        self.gap = 0.0
        self.gap_start: float | None = None

    realtime = False  # SCHED_FIFO for this thread: its timestamps are the measurement

    def run(self) -> None:
        if self.realtime:
            with contextlib.suppress(OSError):
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(RT_PRIORITY))
        fd = os.open(self.path, os.O_RDONLY)  # until the client opens its output file
        self.opened = True
        with contextlib.suppress(OSError, AttributeError):
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        try:
            while data := os.read(fd, PIPE_SIZE):
                now = time.monotonic()
                if self.last is not None and now - self.last > self.gap:
                    self.gap, self.gap_start = now - self.last, self.last
                if self.first is None:
                    self.first = now
                self.last = now
                self.bytes += len(data)
                self.digest.update(data)
        finally:
            os.close(fd)

    def release(self) -> None:
        """The client ended without opening its output: unblock our open() with EOF."""
        if not self.opened:
            with contextlib.suppress(OSError):
                os.close(os.open(self.path, os.O_WRONLY | os.O_NONBLOCK))
        self.join(5.0)


# -- the three processes --------------------------------------------------------------------


class LineCollector(threading.Thread):
    """Collects a process's output lines (so its pipe never fills)."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__(name="lines", daemon=True)
        self.stream = stream
        self.lines: list[str] = []
        self.changed = threading.Condition()

    def run(self) -> None:
        for line in self.stream:
            with self.changed:
                self.lines.append(line.rstrip("\n"))
                self.changed.notify_all()
        with self.changed:
            self.lines.append("")  # EOF marker
            self.changed.notify_all()

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str] | None:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for line in self.lines:
                    match = regex.search(line)
                    if match is not None:
                        return match
                left = deadline - time.monotonic()
                if left <= 0 or (self.lines and self.lines[-1] == "" and not self.is_alive()):
                    return None
                self.changed.wait(min(left, 0.2))


def tquic_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "tquic", *args]


# The environment of the three processes (see use_bytecode_cache).
CHILD_ENV: dict[str, str] | None = None


def use_bytecode_cache(directory: Path) -> None:
    """Give the children compiled bytecode, as an installed package has.

    An environment with PYTHONDONTWRITEBYTECODE=1 and a source tree without
    ``__pycache__`` makes every process compile each module it imports: about 0.1 s of
    CPU at start and again for the modules first imported when the first connection
    opens -- a cost no pip-installed tquic pays.  The bytecode goes to ``directory``
    (PYTHONPYCACHEPREFIX), never into the source tree; it is compiled here once.
    """
    global CHILD_ENV
    import compileall

    import tquic

    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(directory)
    previous = sys.pycache_prefix
    sys.pycache_prefix = str(directory)
    try:
        compileall.compile_dir(str(Path(tquic.__file__).parent), quiet=1)
    finally:
        sys.pycache_prefix = previous
    CHILD_ENV = env


def warm_up(port: int) -> None:
    """One small HTTP/3 request straight to the server (not through netem), so the timed
    run meets a server that has served before: a long-running server has long since
    imported what its first connection needs."""
    import asyncio

    from tquic.core.config import QuicConfiguration
    from tquic.h3.aio import connect_h3

    async def fetch() -> None:
        config = QuicConfiguration(is_client=True, alpn_protocols=("h3",), verify_peer=False)
        client = await connect_h3("127.0.0.1", port, config, timeout=10.0)
        async with client:
            await client.request("GET", f"https://127.0.0.1:{port}/1000")

    asyncio.run(fetch())


def start_process(cmd: Sequence[str], ready: str, what: str,
                  timeout: float = 30.0) -> tuple[subprocess.Popen[str], LineCollector, int]:
    """Start ``cmd`` (stdout and stderr merged), wait for a line matching ``ready`` whose
    first group is the bound port."""
    proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=CHILD_ENV)
    assert proc.stdout is not None
    lines = LineCollector(proc.stdout)
    lines.start()
    match = lines.wait_for(ready, timeout)
    if match is None:
        stop_process(proc)
        raise RuntimeError(f"{what} did not start: {' | '.join(lines.lines[-5:])}")
    return proc, lines, int(match.group(1))


def stop_process(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(5.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_once(links: Sequence[Link], size: int, cc: str | None, seed: int, cert_dir: Path,
             expected: str, priority: str = "none") -> RealRun:
    """One download of ``size`` bytes over ``links``; never raises for a failed run (the
    result's ``error`` says what went wrong).

    ``priority``: "netem" runs the instruments -- the netem relay and the thread that
    timestamps the client's output -- at SCHED_FIFO, so the emulated network and the
    measurement keep their timing on a loaded machine; "all" also the server and client
    (tquic as on an otherwise idle machine); "none" leaves every process to the scheduler.
    """
    result = RealRun()
    cc_args = [] if cc is None else ["--cc", cc]  # "defaults" stay literally defaults
    endpoints_rt = _rt_prefix(priority == "all", RT_ENDPOINTS)
    server, _, server_port = start_process(
        endpoints_rt + tquic_cmd("server", "--listen", "127.0.0.1:0",
                                 "--cert", str(cert_dir / "cert.pem"),
                                 "--key", str(cert_dir / "key.pem"), *cc_args),
        r"listening on \[[^\]]*\]:(\d+)", "tquic server")
    try:
        warm_up(server_port)
    except (OSError, TimeoutError, ConnectionError) as exc:
        stop_process(server)
        raise RuntimeError(f"the server did not answer a warm-up request: {exc}") from None
    netem_cmd = _rt_prefix(priority != "none") + tquic_cmd(
        "netem", "--listen", "127.0.0.1:0", "--target", f"127.0.0.1:{server_port}",
        "--epoch", "first", "--stats-interval", "0", "--seed", str(seed))
    for i, link in enumerate(links):
        netem_cmd += ["--link", f"127.0.0.{i + 2}={link.netem_profile()}"]
    try:
        netem, netem_lines, port = start_process(netem_cmd, r"listening on [\d.]+:(\d+)",
                                                 "tquic netem")
    except RuntimeError:
        stop_process(server)
        raise
    try:
        with tempfile.TemporaryDirectory(prefix="tquic-realtime-") as tmp:
            _client(result, Path(tmp), links, size, cc_args, port, server, netem,
                    netem_lines, expected, priority)
    finally:
        stop_process(netem, signal.SIGINT)  # SIGINT: netem prints its per-link totals
        stop_process(server)
        netem_lines.join(2.0)
        result.netem = [line for line in netem_lines.lines if line.startswith("netem")]
        _netem_lateness(result)
    return result


_LATE = re.compile(r"(\d+)/\d+ pkt .*? late=(\d+) \(mean [\d.]+ ms, max ([\d.]+) ms\)")


def _netem_lateness(result: RealRun) -> None:
    """Deliveries behind netem's model, over every link and direction (its totals)."""
    for line in result.netem:
        if not line.startswith("netem total"):
            continue
        for delivered, late, worst in _LATE.findall(line):
            result.netem_delivered += int(delivered)
            result.netem_late += int(late)
            result.netem_late_max = max(result.netem_late_max, float(worst) / 1000)


def _client(result: RealRun, tmp: Path, links: Sequence[Link], size: int,
            cc_args: list[str], port: int, server: subprocess.Popen[str],
            netem: subprocess.Popen[str], netem_lines: LineCollector, expected: str,
            priority: str) -> None:
    out_dir = tmp / "out"
    out_dir.mkdir()
    # tquic client -o writes NAME.part and renames it to NAME once the body is whole
    # (cli/output.py): the FIFO takes NAME.part's place.
    fifo = out_dir / f"{size}.part"
    os.mkfifo(fifo)
    reader = FifoReader(fifo)
    reader.realtime = priority != "none"
    reader.start()
    paths = [arg for i in range(len(links)) for arg in ("--path", f"127.0.0.{i + 2}")]
    cmd = _rt_prefix(priority == "all", RT_ENDPOINTS) + tquic_cmd(
        "client", f"https://127.0.0.1:{port}/{size}", "--insecure", "--json", "-o", str(out_dir),
        "--timeout", f"{CLIENT_IDLE_TIMEOUT:g}", *cc_args, *paths)
    stdout_path, stderr_path = tmp / "client.out", tmp / "client.err"
    busy0, children0, self0 = machine_busy(), children_cpu(), time.process_time()
    server0, netem0 = proc_cpu(server.pid), proc_cpu(netem.pid)
    wait_server0, wait_netem0 = run_queue_wait(server.pid), run_queue_wait(netem.pid)
    drops0 = udp_rcvbuf_errors()
    with open(stdout_path, "w") as stdout, open(stderr_path, "w") as stderr:
        spawned = time.monotonic()
        client = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, env=CHILD_ENV)
        watcher = WaitWatcher(client.pid)
        watcher.start()
        exited = wait_exit(client, 60 + size / 1e6 * 5)
        if exited is None:
            client.kill()
            client.wait()
            exited = time.monotonic()
            result.error = "the client did not finish in time (killed)"
    watcher.stop.set()
    watcher.join(1.0)
    result.wall = exited - spawned
    result.rcvbuf_drops = udp_rcvbuf_errors() - drops0
    result.wait_client = watcher.waited
    for name, pid, before in (("wait_server", server.pid, wait_server0),
                              ("wait_netem", netem.pid, wait_netem0)):
        after = run_queue_wait(pid)
        if before is not None and after is not None:
            setattr(result, name, after - before)
    result.cpu_client = children_cpu() - children0
    result.cpu_server = proc_cpu(server.pid) - server0
    result.cpu_netem = proc_cpu(netem.pid) - netem0
    own = time.process_time() - self0
    busy = machine_busy() - busy0
    result.other_load = max(0.0, busy - result.cpu_client - result.cpu_server
                            - result.cpu_netem - own) / max(result.wall, 1e-9)
    reader.release()
    first_datagram = netem_lines.wait_for(r"monotonic (\d+\.\d+)", 1.0)
    origin = float(first_datagram.group(1)) if first_datagram is not None else None
    if origin is not None:
        result.startup = origin - spawned
    result.bytes = reader.bytes
    result.stall = reader.gap
    if reader.last is not None:
        result.exit_delay = exited - reader.last
        if origin is not None:
            result.transfer = reader.last - origin
            if reader.first is not None:
                result.first_byte = reader.first - origin
            if reader.gap_start is not None:
                result.stall_at = reader.gap_start - origin
    result.intact = reader.bytes == size and reader.digest.hexdigest() == expected
    _read_report(result, stdout_path, stderr_path, client.returncode, expected)
    if reader.first is None and result.error is None:
        result.error = (f"no byte reached {fifo.name} in the client's output directory "
                        "(has tquic client's output naming changed?)")


def wait_exit(proc: subprocess.Popen[Any], timeout: float) -> float | None:
    """The monotonic time ``proc`` exited (None: still running after ``timeout``).

    ``Popen.wait(timeout=...)`` polls with sleeps that double up to 50 ms, so the
    moment it returns is up to 50 ms after the exit: that was most of the "exit ms"
    tail (runs at 50-56 ms).  A pidfd becomes readable the moment the process ends.
    """
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # no pidfd (old kernel): the polling wait
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return time.monotonic()
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if not poller.poll(timeout * 1000):
            return None
        exited = time.monotonic()
    finally:
        os.close(fd)
    proc.wait()
    return exited


def _read_report(result: RealRun, stdout_path: Path, stderr_path: Path, status: int,
                 expected: str) -> None:
    try:
        report = json.loads(stdout_path.read_text() or "null")
    except ValueError:
        report = None
    if isinstance(report, dict):
        fetch = (report.get("results") or [{}])[0]
        result.client_seconds = fetch.get("seconds")
        result.paths = list(report.get("paths") or [])
        if fetch.get("sha256") != expected:
            result.intact = False
        if fetch.get("error") and result.error is None:
            result.error = str(fetch["error"])
    if status != 0 and result.error is None:
        tail = stderr_path.read_text().strip().splitlines()[-3:]
        result.error = f"client exit status {status}: {' | '.join(tail)}"
