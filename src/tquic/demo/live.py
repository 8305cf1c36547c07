"""``tquic demo``: a bonded download over three emulated links, in one asyncio process.

What runs, all on loopback and without root:

- a tquic server (``tquic.io.api.serve``) answering ``GET <n>`` on a stream
  with ``n`` bytes of a known pattern (``n = 0``: until the client goes away);
- a netem relay (``tquic.netem.NetemRelay``) between them that gives each
  client source address its own link (rate, delay, loss, queue of one BDP),
  and takes one link down for good in the middle of the run (an outage from
  ``down_at`` on; outage times count from the relay's start);
- a client endpoint with one UDP socket per link address (127.0.0.2, .3, ...),
  one QUIC connection, and one path per link: path 0 from the first address,
  the others opened with ``QuicConnection.add_path`` once the handshake is
  confirmed (draft-ietf-quic-multipath §"Path Initiation and Validation").

The client checks every byte against the pattern, samples both engines'
``path_stats`` for the live table, and stops after ``seconds`` (or ``size``
bytes).  Everything is closed on the way out, Ctrl-C included.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from tquic.core.config import QuicConfiguration
from tquic.crypto.tls.certs import generate_self_signed
from tquic.demo.model import DemoError, DemoOptions, DemoSummary, PathSample
from tquic.io.api import QuicServer, serve
from tquic.io.endpoint import QuicEndpoint, engine_class
from tquic.io.futures import consume_result
from tquic.io.multipath_client import open_extra_paths
from tquic.io.protocol import ConnectionClosedError, QuicConnectionProtocol
from tquic.io.streams import QuicStreamReader, QuicStreamWriter, StreamError
from tquic.io.udp import UdpSocket
from tquic.netem import LinkTable, NetemRelay, parse_profile
from tquic.paths.network_path import NetworkPath

__all__ = ["BLOCK", "DemoRun", "run_demo"]

ALPN = ("tquic-demo",)
BLOCK_SIZE = 1 << 16
# The content: this block repeated.  Both ends live in one process, so the client
# checks every byte against it without any digest exchange.
BLOCK = os.urandom(BLOCK_SIZE)
_BLOCK2 = BLOCK * 2
READ_SIZE = BLOCK_SIZE  # a read never spans more than one block boundary
WRITE_CHUNK = 1 << 16
SAMPLE_EVERY = 0.1  # seconds between path-state samples (for the event timeline)
HANDSHAKE_TIMEOUT = 10.0
CLOSE_TIMEOUT = 2.0
STALL_WINDOW = 3.0  # seconds after the link goes down in which the takeover stall is measured
MAX_PATH_ID = 8
WINDOW = 64 << 20


async def _serve_stream(reader: QuicStreamReader, writer: QuicStreamWriter) -> None:
    """``GET <n>\\n`` → n bytes of the pattern (0: until the stream or connection ends)."""
    line = await reader.readline()
    try:
        size = int(line.split()[1]) if line.startswith(b"GET ") else -1
    except (IndexError, ValueError):
        size = -1
    if size < 0:
        writer.reset(0x1)
        return
    offset = 0
    view = memoryview(_BLOCK2)
    while size == 0 or offset < size:
        n = WRITE_CHUNK if size == 0 else min(WRITE_CHUNK, size - offset)
        start = offset % BLOCK_SIZE
        writer.write(view[start:start + n])
        offset += n
        await writer.drain()


@dataclass(slots=True)
class _PathTrack:
    link: int
    path_id: int
    state: str = "validating"
    last_bytes: int = 0
    rate: float = 0.0
    rtt_ms: float | None = None  # last values the server reported (kept once it forgets)
    lost: int = 0
    cwnd: int = 0


@dataclass(slots=True)
class DemoRun:
    """State of one demo run (filled in as it goes)."""

    options: DemoOptions
    started: float = 0.0
    received: int = 0
    intact: bool = True
    completed: bool = False
    read_times: list[float] = field(default_factory=list)
    tracks: dict[int, _PathTrack] = field(default_factory=dict)  # path ID -> track
    events: list[str] = field(default_factory=list)
    multipath: bool = False
    multipath_note: str = ""
    error: str | None = None

    def event(self, now: float, text: str) -> None:
        self.events.append(f"{now - self.started:6.2f}s {text}")


def _server_config(options: DemoOptions) -> QuicConfiguration:
    cert, key = generate_self_signed(("localhost", "127.0.0.1"))
    return QuicConfiguration(
        is_client=False, alpn_protocols=ALPN, certificate=cert, private_key=key,
        max_path_id=MAX_PATH_ID if options.multipath else None, scheduler=options.scheduler,
        congestion_control=options.congestion_control, max_data=WINDOW,
        max_stream_data=WINDOW, idle_timeout=10.0)


def _client_config(options: DemoOptions) -> QuicConfiguration:
    return QuicConfiguration(
        is_client=True, alpn_protocols=ALPN, verify_peer=False, server_name="localhost",
        max_path_id=MAX_PATH_ID if options.multipath else None, scheduler=options.scheduler,
        congestion_control=options.congestion_control, max_data=WINDOW,
        max_stream_data=WINDOW, idle_timeout=10.0)


def _bind(host: str) -> UdpSocket:
    try:
        return UdpSocket.bind(host, 0)
    except OSError as exc:
        raise DemoError(
            f"cannot bind a UDP socket to {host}: {exc.strerror or exc} (the demo needs the "
            "127.0.0.0/8 loopback addresses, as on Linux; on macOS add them with "
            f"'sudo ifconfig lo0 alias {host}')") from None


def _check(chunk: bytes, offset: int) -> bool:
    start = offset % BLOCK_SIZE
    return chunk == _BLOCK2[start:start + len(chunk)]


class _Sampler:
    """Turns both engines' path_stats into table rows and an event timeline."""

    def __init__(self, run: DemoRun, client: Any, server_conn: Callable[[], Any],
                 now: float) -> None:
        self.run = run
        self.client = client
        self.server_conn = server_conn
        self.last_time = now

    def sample(self, now: float, rates: bool) -> list[PathSample]:
        run = self.run
        client_stats = {s.path_id: s for s in self.client.path_stats(now)}
        server = self.server_conn()
        server_stats = {} if server is None else {s.path_id: s for s in server.path_stats(now)}
        elapsed = max(1e-6, now - self.last_time)
        if rates:
            self.last_time = now
        rows: list[PathSample] = []
        total_rate = 0.0
        for path_id, track in sorted(run.tracks.items()):
            cs = client_stats.get(path_id)
            state = cs.state if cs is not None else "closed"
            if state != track.state:
                run.event(now, f"path {path_id} ({run.options.links[track.link].host}): "
                               f"{track.state} -> {state}")
                track.state = state
            got = cs.bytes_received if cs is not None else track.last_bytes
            if rates:
                track.rate = max(0, got - track.last_bytes) * 8 / elapsed
                track.last_bytes = got
            total_rate += track.rate
        for path_id, track in sorted(run.tracks.items()):
            cs = client_stats.get(path_id)
            ss = server_stats.get(path_id)
            if ss is not None:
                track.rtt_ms = round(ss.srtt * 1000, 1)
                track.lost = ss.packets_lost
                track.cwnd = ss.cwnd
            rows.append(PathSample(
                link=track.link, host=run.options.links[track.link].host, path_id=path_id,
                state=track.state, rtt_ms=track.rtt_ms, rate_bps=track.rate,
                share=track.rate / total_rate if total_rate else 0.0,
                bytes_received=track.last_bytes if cs is None else cs.bytes_received,
                packets_lost=track.lost, cwnd=track.cwnd))
        return rows


async def _open_paths(run: DemoRun, proto: QuicConnectionProtocol, sockets: list[UdpSocket],
                      loop: asyncio.AbstractEventLoop) -> None:
    """A path from each further link's socket (tquic.io.multipath_client waits until the
    handshake is confirmed and the new path ID has connection IDs)."""
    path_ids, note = await open_extra_paths(proto, sockets[1:], timeout=HANDSHAKE_TIMEOUT)
    for index, path_id in enumerate(path_ids, start=1):
        run.tracks[path_id] = _PathTrack(index, path_id)
        run.event(loop.time(), f"path {path_id} opened from {sockets[index].local_address[0]}")
    run.multipath = bool(path_ids)
    if note is not None:
        run.multipath_note = note


async def _download(run: DemoRun, proto: QuicConnectionProtocol,
                    loop: asyncio.AbstractEventLoop) -> None:
    reader, writer = await proto.open_stream()
    writer.write(b"GET %d\n" % run.options.size)
    writer.write_eof()
    while True:
        chunk = await reader.read(READ_SIZE)
        if not chunk:
            run.completed = run.options.size > 0 and run.received == run.options.size
            return
        if run.intact and not _check(chunk, run.received):
            run.intact = False
        run.received += len(chunk)
        run.read_times.append(loop.time())


async def run_demo(options: DemoOptions,
                   show: Callable[[DemoRun, list[PathSample], bool], None] | None = None
                   ) -> DemoSummary:
    """Run the demo; ``show(run, rows, final)`` is called every ``options.interval``."""
    loop = asyncio.get_running_loop()
    run = DemoRun(options)
    links = options.active_links
    down_at = options.down_time
    server: QuicServer | None = None
    relay: NetemRelay | None = None
    endpoint: QuicEndpoint | None = None
    sockets: list[UdpSocket] = []
    rows: list[PathSample] = []
    download: asyncio.Task[None] | None = None
    try:
        server = await serve("127.0.0.1", 0, _server_config(options), _serve_stream)
        table = LinkTable()
        for index, link in enumerate(links):
            profile = link.netem_profile(down_at if index == options.down_link else None)
            table = table.with_rule((link.host, 0), parse_profile(profile))
        relay = NetemRelay(("127.0.0.1", 0), server.local_address, table, seed=options.seed,
                           out=lambda line: None)
        relay_addr = relay.start()
        run.started = relay.origin
        sockets = [_bind(link.host) for link in links]
        cconf = _client_config(options)
        endpoint = QuicEndpoint(cconf, sockets, is_server=False, loop=loop)
        engine = engine_class()(cconf, is_client=True)
        path = NetworkPath(sockets[0].local_address, relay_addr)
        proto = endpoint.create_connection(engine, path, None)
        engine.connect(path, loop.time())
        proto.connection_made()
        run.tracks[0] = _PathTrack(0, 0, state="validated")  # the handshake validated it
        await asyncio.wait_for(proto.wait_connected(), HANDSHAKE_TIMEOUT)
        run.event(loop.time(), f"handshake complete over {links[0].host}")
        if options.multipath and len(links) > 1:
            await _open_paths(run, proto, sockets, loop)
        elif not options.multipath:
            run.multipath_note = "single path requested (--single-path)"

        def server_conn() -> Any:
            conns = [] if server is None else list(server.connections)
            return conns[0].quic if conns else None

        sampler = _Sampler(run, engine, server_conn, loop.time())
        download = loop.create_task(_download(run, proto, loop))
        end = run.started + options.seconds
        next_show = loop.time() + options.interval
        announced_down = False
        while not download.done() and loop.time() < end:
            await asyncio.wait({download}, timeout=SAMPLE_EVERY)
            now = loop.time()
            if down_at is not None and not announced_down and now >= run.started + down_at:
                announced_down = True
                run.event(run.started + down_at,
                          f"link {options.down_link} ({links[options.down_link].host}) down")
            due = now >= next_show
            rows = sampler.sample(now, rates=due)
            if due:
                next_show = now + options.interval
                if show is not None:
                    show(run, rows, False)
        if download.done() and download.exception() is not None:
            exc = download.exception()
            run.error = f"download failed: {exc}"
        download.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionClosedError, StreamError):
            await download
        rows = sampler.sample(loop.time(), rates=True)
        proto.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proto.wait_closed(), CLOSE_TIMEOUT)
    except (TimeoutError, ConnectionClosedError, OSError) as exc:
        run.error = str(exc) or type(exc).__name__
    finally:
        if download is not None and not download.done():
            # Ctrl-C (cancellation) lands here: the task ends when the endpoint closes.
            download.cancel()
            download.add_done_callback(consume_result)
        if endpoint is not None:
            endpoint.close()
        else:
            for sock in sockets:
                sock.close()
        if relay is not None:
            relay.close()
        if server is not None:
            server.close()
    summary = _summarize(run, rows, down_at)
    if show is not None:
        show(run, list(summary.paths), True)
    return summary


def _summarize(run: DemoRun, rows: list[PathSample], down_at: float | None) -> DemoSummary:
    options = run.options
    times = run.read_times
    elapsed = (times[-1] - run.started) if times else 0.0
    gaps = [(b - a, a) for a, b in itertools.pairwise(times)]
    max_stall = max((g for g, _ in gaps), default=0.0)
    after: float | None = None
    if down_at is not None and times and times[-1] > run.started + down_at:
        t0 = run.started + down_at
        window = [g for g, a in gaps if t0 - 1.0 <= a <= t0 + STALL_WINDOW]
        after = max(window, default=0.0)
    total = sum(r.bytes_received for r in rows) or 1
    paths = tuple(replace(r, share=r.bytes_received / total) for r in rows)
    return DemoSummary(
        multipath=run.multipath, multipath_note=run.multipath_note,
        scheduler=options.scheduler, congestion_control=options.congestion_control,
        seconds=round(elapsed, 3), bytes_received=run.received,
        goodput_bps=run.received * 8 / elapsed if elapsed > 0 else 0.0, intact=run.intact,
        completed=run.completed, down_link=None if down_at is None else options.down_link,
        down_at=down_at, max_stall=round(max_stall, 3),
        stall_after_down=None if after is None else round(after, 3), paths=paths,
        events=tuple(run.events), error=run.error,
        links=tuple(f"{link.host}: {link.label}" for link in options.active_links))
