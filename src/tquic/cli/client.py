"""``tquic client URL...``: fetch files over HTTP/3 (or HTTP/0.9, hq-interop) on QUIC, concurrently."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import sys
import textwrap
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tquic.cli import wt_client
from tquic.cli.common import CliError, fail
from tquic.cli.fetch import EXIT_CODES_HELP, ExitCode, Fetch, connect_failed, fetching
from tquic.cli.hq import ALPN_HQ, hq_refusal
from tquic.cli.multipath import MAX_PATH_ID, MultipathSession, print_path_table, scheduler_error
from tquic.cli.output import OutputOptions, remote_name
from tquic.cli.tickets import load_ticket, save_ticket, wait_for_ticket
from tquic.cli.transport import connection_line, path_lines, setup_logging, transport_entry
from tquic.h3.aio import H3_ALPN
from tquic.io.multipath_client import LocalPath, parse_local_path
from tquic.io.path_keeper import ReopenPolicy
from tquic.io.protocol import QuicConnectionProtocol
from tquic.io.streams import StreamError

PROG = "tquic client"
logger = logging.getLogger("tquic.cli.client")  # shown with -v (transport.setup_logging)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "client", help="fetch URLs over QUIC (HTTP/3, or HTTP/0.9 hq-interop)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.fill(
            "Fetch each URL on its own stream, concurrently (one connection per server), "
            "then print bytes, seconds and Mbit/s, and per connection its protocol, RTT "
            "(min/smoothed) and packet losses (--json: also per path addresses, window, "
            "counters and ECN state).") + "\n\n" + textwrap.fill(
            "Saved files (-O, --output-dir) are written to NAME.part and renamed to NAME "
            "only when the whole body arrived with a 2xx status: a failed fetch leaves no "
            "NAME and never replaces an existing one; a transfer that broke off leaves "
            "NAME.part, which -C - resumes."),
        epilog=EXIT_CODES_HELP)
    parser.add_argument("urls", nargs="+", metavar="URL", help="https://HOST:PORT/path")
    parser.add_argument("-O", "--remote-name", action="store_true",
                        help="save each file under its remote name (the URL's last path "
                             "segment; index.html for '/') in the current directory, or in "
                             "--output-dir")
    parser.add_argument("-o", "--output-dir", "--output", dest="output", metavar="DIR",
                        help="save the files in DIR (created if missing), under their remote "
                             "names")
    parser.add_argument("-C", "--continue-at", dest="resume", type=_continue_at, default=False,
                        metavar="-", help="'-C -': resume each partial download (NAME.part, "
                                          "else NAME) with a Range request for the rest "
                                          "(HTTP/3 only)")
    parser.add_argument("--continue", dest="resume", action="store_true",
                        help="same as -C -")
    parser.add_argument("--keep-error-body", action="store_true",
                        help="keep the body of an HTTP error response (in NAME if that is "
                             "free, else NAME.error); by default a failed fetch saves nothing")
    wt_client.add_arguments(parser)
    parser.add_argument("--alpn", choices=(H3_ALPN, ALPN_HQ), default=H3_ALPN,
                        help=f"ALPN protocol (default {H3_ALPN})")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="print each HTTP/3 response's status and header fields and each "
                             "path's window, losses and ECN state, and log the transport's "
                             "events (INFO) on stderr; -vv logs at DEBUG")
    trust = parser.add_mutually_exclusive_group()
    trust.add_argument("--ca", metavar="FILE", help="trust this CA/certificate (PEM)")
    trust.add_argument("--insecure", action="store_true",
                       help="do not verify the server certificate (lab use only)")
    parser.add_argument("--cc", default="bbr1",
                        help="congestion controller of what this side sends (default bbr1: "
                             "it keeps deep link queues short, so a dead link's data is "
                             "resent in ~0.1 s instead of waiting behind a full queue, and "
                             "it holds its rate under random loss; docs/congestion.md)")
    parser.add_argument("--no-ecn", action="store_true",
                        help="send without ECN marks (RFC 9000 §13.4; on by default)")
    parser.add_argument("--quic-version", choices=("1", "2"), default="1",
                        help="QUIC version to offer first (default 1)")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="handshake timeout and idle timeout in seconds (default 10)")
    parser.add_argument("--qlog-dir", help="write the connection's qlog here")
    parser.add_argument("--qlog-format", choices=("seq", "0.3"), default="seq")
    parser.add_argument("--max-udp-payload", type=int, default=1452,
                        help="largest UDP payload to send (default 1452)")
    parser.add_argument("--json", action="store_true", help="print results as JSON (scripts)")
    parser.add_argument("--path", action="append", type=_local_path, default=[],
                        metavar="LOCAL_ADDR[%IFACE]", dest="paths",
                        help="multipath: send from this local address (and interface); the "
                             "first is the handshake's, each further one an extra path "
                             "(repeat the option)")
    parser.add_argument("--scheduler", default=None, metavar="NAME",
                        help="multipath scheduler for what the client sends (default minrtt)")
    parser.add_argument("--reopen-delay", type=_seconds, default=0.5, metavar="SECONDS",
                        help="multipath: when a path fails (its link died), open a new one "
                             "from the same --path once its link is back: first try after "
                             "SECONDS, doubling after each failed try up to --reopen-max; a "
                             "link that is down or has no address or route is checked every "
                             "0.25 s without sending (default 0.5)")
    parser.add_argument("--reopen-max", type=_seconds, default=5.0, metavar="SECONDS",
                        help="multipath: longest wait between two tries to re-open a path "
                             "(default 5)")
    parser.add_argument("--no-reopen", dest="reopen", action="store_false",
                        help="multipath: never re-open a failed path (its link stays unused)")
    parser.add_argument("--session-ticket", metavar="FILE",
                        help="resume the TLS session with the ticket in FILE if it exists "
                             "(requests then travel in 0-RTT when --alpn is the one the ticket "
                             "was issued for), and save the server's newest ticket there for "
                             "the next run (one server per FILE)")
    parser.add_argument("--no-early-data", dest="early_data", action="store_false",
                        help="with --session-ticket: resume, but send nothing before the "
                             "handshake completes (no 0-RTT)")
    parser.set_defaults(handler=run)


def _continue_at(value: str) -> bool:
    if value != "-":
        raise argparse.ArgumentTypeError(
            "only '-C -' is supported: resume from the size of the partial file")
    return True


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < 3600:
        raise argparse.ArgumentTypeError(f"expected seconds (more than 0), got {value!r}")
    return seconds


def _local_path(value: str) -> LocalPath:
    try:
        return parse_local_path(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    if args.scheduler is not None:
        error = scheduler_error(args.scheduler)
        if error is not None:
            print(f"{PROG}: error: {error}", file=sys.stderr)
            return 2
    setup_logging(args.verbose)
    try:
        fetches = [_parse_url(url) for url in args.urls]
        config = _config(args)
        if args.webtransport:
            return wt_client.run(args, config)
        return asyncio.run(_main(args, config, fetches))
    except CliError as exc:
        return fail(PROG, str(exc))
    except KeyboardInterrupt:
        return 130


def _parse_url(url: str) -> Fetch:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "quic", "") or not parts.hostname:
        raise CliError(f"bad URL {url!r}: expected https://HOST[:PORT]/path")
    try:
        port = parts.port or 443
    except ValueError:
        raise CliError(f"bad port in URL {url!r}") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Fetch(url=url, host=parts.hostname, port=port, path=path)


def _config(args: argparse.Namespace) -> Any:
    from tquic.core.config import ConfigurationError, QuicConfiguration
    from tquic.wire.version import QUIC_V1, QUIC_V2

    if args.ca is not None and not os.path.isfile(args.ca):
        raise CliError(f"CA file not found: {args.ca}")
    versions = (QUIC_V2, QUIC_V1) if args.quic_version == "2" else (QUIC_V1, QUIC_V2)
    multipath: dict[str, Any] = {}
    if args.paths:
        multipath["max_path_id"] = max(MAX_PATH_ID, len(args.paths))
    if args.scheduler is not None:
        multipath["scheduler"] = args.scheduler.lower()
    resumption: dict[str, Any] = {}
    if args.session_ticket:
        ticket = load_ticket(args.session_ticket)
        resumption["session_ticket"] = ticket
        resumption["enable_early_data"] = ticket is not None and args.early_data
    try:
        return QuicConfiguration(
            is_client=True, alpn_protocols=(args.alpn,), cafile=args.ca,
            verify_peer=not args.insecure, congestion_control=args.cc, versions=versions,
            ecn=not args.no_ecn,
            idle_timeout=max(args.timeout, 1.0), max_udp_payload_size=args.max_udp_payload,
            max_data=64 << 20, max_stream_data=32 << 20, **multipath, **resumption)
    except ConfigurationError as exc:
        raise CliError(f"bad configuration: {exc}") from None


def output_for(args: argparse.Namespace, fetches: list[Fetch]) -> OutputOptions:
    """Where the bodies go (-O, -o/--output-dir); refuses what would clobber itself."""
    directory = Path(args.output) if args.output else (Path.cwd() if args.remote_name else None)
    if directory is None:
        if args.resume or args.keep_error_body:
            raise CliError("-C/--continue and --keep-error-body need -O or --output-dir DIR")
        return OutputOptions()
    if args.resume and args.alpn != H3_ALPN:
        raise CliError("-C/--continue needs --alpn h3 (HTTP/0.9 has no Range requests)")
    names: dict[str, str] = {}
    for fetch in fetches:
        name = remote_name(fetch.path)
        if name in names and names[name] != fetch.url:
            raise CliError(f"{names[name]} and {fetch.url} would both be saved as {name}")
        names[name] = fetch.url
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"cannot create output directory {directory}: {exc.strerror}") from None
    return OutputOptions(directory, keep_error_body=args.keep_error_body, resume=args.resume)


async def _main(args: argparse.Namespace, config: Any, fetches: list[Fetch]) -> int:
    out_dir = output_for(args, fetches)
    groups: dict[tuple[str, int], list[Fetch]] = {}
    for fetch in fetches:
        groups.setdefault((fetch.host, fetch.port), []).append(fetch)
    if args.reopen_max < args.reopen_delay:
        raise CliError(f"--reopen-max ({args.reopen_max:g} s) must be at least --reopen-delay "
                       f"({args.reopen_delay:g} s)")
    reopen = ReopenPolicy(enabled=args.reopen, initial_delay=args.reopen_delay,
                          max_delay=args.reopen_max)
    sessions = {key: MultipathSession(f"{key[0]}:{key[1]}", args.paths, args.timeout,
                                      args.qlog_dir, args.qlog_format, reopen)
                for key in groups} if args.paths else {}
    for session in sessions.values():
        session.bind()  # a bad --path fails here, in one line, before any packet
    progress = _Progress(fetches, list(sessions.values())) if (sys.stderr.isatty() and not args.json) else None
    started = time.perf_counter()
    connections: list[dict[str, Any]] = []
    try:
        await asyncio.gather(*(_fetch_group(args, config, host, port, group, out_dir,
                                            sessions.get((host, port)), connections)
                               for (host, port), group in groups.items()))
    finally:
        if progress is not None:
            progress.stop()
    args.connections = connections
    # Transfer time: first request to last response (connection setup and close excluded).
    begun = [f.started for f in fetches if f.started]
    elapsed = (max(f.finished for f in fetches) - min(begun)) if begun else (
        time.perf_counter() - started)
    _report(args, fetches, elapsed, list(sessions.values()))
    failed = [f for f in fetches if f.error is not None]
    for fetch in failed if not args.json else []:
        print(f"{PROG}: error: {fetch.url}: {fetch.error}", file=sys.stderr)
    return failed[0].exit_code if failed else 0


async def _fetch_group(args: argparse.Namespace, config: Any, host: str, port: int,
                       fetches: list[Fetch], out_dir: OutputOptions,
                       session: MultipathSession | None,
                       connections: list[dict[str, Any]]) -> None:
    from tquic.io.api import connect

    async def finished(conn: QuicConnectionProtocol) -> None:
        await _after_transfer(args, conn, f"{host}:{port}", connections)

    if args.alpn == H3_ALPN:
        from tquic.cli.h3_fetch import fetch_group_h3

        await fetch_group_h3(config, host, port, fetches, out_dir, timeout=args.timeout,
                             verbose=bool(args.verbose), qlog_dir=args.qlog_dir,
                             qlog_format=args.qlog_format, session=session,
                             on_finished=finished)
        return
    early = config.session_ticket is not None and config.enable_early_data
    try:
        if session is not None:
            conn = await session.connect(host, port, config)
        else:
            # With a ticket and 0-RTT, the requests go out before the handshake completes.
            conn = await connect(host, port, config, timeout=args.timeout,
                                 qlog_dir=args.qlog_dir, qlog_format=args.qlog_format,
                                 wait_connected=not early)
    except (TimeoutError, ConnectionError, OSError) as exc:
        connect_failed(fetches, host, port, exc, args.timeout)
        return
    async with conn:
        opening = session.open_alongside(conn) if session is not None else None
        await asyncio.gather(*(_fetch_one(conn, f, out_dir, args.timeout) for f in fetches))
        if session is not None and opening is not None:
            await session.done_opening(opening)
            session.finished(conn)
        await finished(conn)


async def _after_transfer(args: argparse.Namespace, conn: QuicConnectionProtocol, server: str,
                          connections: list[dict[str, Any]]) -> None:
    """Record whether the session was resumed and what the transport did (per path);
    keep the server's ticket (--session-ticket)."""
    if conn.handshake_completed_at is None:
        return
    entry = {"server": server, "session_resumed": conn.session_resumed,
             "early_data_accepted": conn.early_data_accepted,
             **transport_entry(conn, asyncio.get_running_loop().time())}
    connections.append(entry)
    logger.info("%s: transfers done; %s over QUIC %s, %s, handshake took %.1f ms%s", server,
                entry["alpn"], entry["quic_version"], entry["cipher_suite"],
                (conn.handshake_completed_at - conn.started_at) * 1000,
                ", session resumed" if conn.session_resumed else "")
    if args.session_ticket:
        ticket = await wait_for_ticket(conn)
        if ticket is not None:
            save_ticket(args.session_ticket, ticket)


async def _fetch_one(conn: QuicConnectionProtocol, fetch: Fetch, output: OutputOptions,
                     timeout: float) -> None:
    digest = hashlib.sha256()
    with fetching(fetch, output, timeout) as download:
        try:
            reader, writer = await conn.open_stream()
            writer.write(f"GET {fetch.path}\r\n".encode())
            writer.write_eof()
            while True:
                chunk = await asyncio.wait_for(reader.read(1 << 20), timeout)
                if not chunk:
                    break
                if download is not None and fetch.bytes == 0:
                    download.begin(200)  # HTTP/0.9: data is the file, a refusal a reset
                fetch.bytes += len(chunk)
                digest.update(chunk)
                if download is not None:
                    download.write(chunk)
            if download is not None and fetch.bytes == 0:
                download.begin(200)  # an empty file is a file
            fetch.sha256 = digest.hexdigest()
        except StreamError as exc:
            refusal = hq_refusal(exc.error_code) if fetch.bytes == 0 else None
            if refusal is not None:
                fetch.fail(ExitCode.HTTP_ERROR, refusal)
            else:
                fetch.fail(ExitCode.BROKE_OFF, f"transfer broke off: {exc}")


def _report(args: argparse.Namespace, fetches: list[Fetch], elapsed: float,
            sessions: list[MultipathSession]) -> None:
    total = sum(f.bytes for f in fetches)
    if args.json:
        report: dict[str, Any] = {
            "results": [{"url": f.url, "bytes": f.bytes, "seconds": round(f.seconds, 6),
                         "mbps": round(f.mbps, 3), "sha256": f.sha256 or None,
                         "status": f.status, "saved": f.saved, "error": f.error,
                         "exit_code": f.exit_code} for f in fetches],
            "total_bytes": total, "seconds": round(elapsed, 6),
            "mbps": round(total * 8 / max(elapsed, 1e-9) / 1e6, 3),
            "connections": getattr(args, "connections", []),
        }
        if sessions:
            report["paths"] = [row for s in sessions for row in s.rows]
            report["path_notes"] = {s.server: s.note for s in sessions if s.note}
        print(json.dumps(report))
        return
    width = max(len("URL"), *(len(f.url) for f in fetches))
    print(f"{'URL':<{width}}  {'bytes':>12}  {'seconds':>8}  {'Mbit/s':>9}")
    for f in fetches:
        status = f"{f.mbps:9.1f}" if f.error is None else "   failed"
        print(f"{f.url:<{width}}  {f.bytes:>12}  {f.seconds:8.3f}  {status}")
    if len(fetches) > 1:
        rate = total * 8 / max(elapsed, 1e-9) / 1e6
        print(f"{'total':<{width}}  {total:>12}  {elapsed:8.3f}  {rate:9.1f}")
    for conn in getattr(args, "connections", []):
        print(connection_line(conn))
        if args.verbose:
            print("\n".join(path_lines(conn)))
        if conn["session_resumed"]:
            early = "0-RTT accepted" if conn["early_data_accepted"] else "no 0-RTT"
            print(f"{conn['server']}: session resumed ({early})")
    print_path_table(sessions)


class _Progress:
    """A one-line progress bar on stderr (only on a terminal)."""

    def __init__(self, fetches: list[Fetch], sessions: list[MultipathSession]) -> None:
        self._fetches = fetches
        self._sessions = sessions
        self._start = time.perf_counter()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        spinner = "|/-\\"
        tick = 0
        while True:
            await asyncio.sleep(0.1)
            tick += 1
            done = sum(1 for f in self._fetches if f.finished)
            total = sum(f.bytes for f in self._fetches)
            rate = total * 8 / max(time.perf_counter() - self._start, 1e-9) / 1e6
            paths = ""
            if self._sessions:  # paths come and go: how many of the --path ones are open
                counts = [s.paths_open for s in self._sessions]
                paths = f" paths {sum(c[0] for c in counts)}/{sum(c[1] for c in counts)} "
            sys.stderr.write(f"\r{spinner[tick % 4]} {done}/{len(self._fetches)} files  "
                             f"{total / 1e6:10.1f} MB  {rate:8.1f} Mbit/s{paths} ")
            sys.stderr.flush()

    def stop(self) -> None:
        self._task.cancel()
        sys.stderr.write("\r" + " " * 72 + "\r")
        sys.stderr.flush()
