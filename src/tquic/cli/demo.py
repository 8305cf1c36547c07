"""``tquic demo``: bond three emulated links into one QUIC connection, lose one, watch.

The lead wires it into cli/main.py with ``demo.register(subparsers)``; the
parser sets ``handler=run``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from tquic.demo.model import DEFAULT_LINKS, DemoError, DemoOptions, parse_link

DESCRIPTION = """\
Start a tquic server, a netem link emulator with one link per client source
address, and a multipath client with one path per link, all in this process on
loopback (no root).  Download for --seconds, take one link down in the middle,
and show a live per-path table (RTT, rate, share, losses), then a summary.
"""

EPILOG = """\
default links (source address: rate, round-trip time, loss):
""" + "\n".join(f"  {link.host}: {link.label}" for link in DEFAULT_LINKS) + """

examples:
  tquic demo
  tquic demo --seconds 20 --down-link 1 --down-at 8 --scheduler blest
  tquic demo --link 127.0.0.2=50/20 --link 127.0.0.3=5/300/1 --json
  tquic demo --single-path           # the same first link without multipath
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo", help="bonded download over three emulated links, one of which fails",
        description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="download for this long (default 10)")
    parser.add_argument("--size", type=int, default=0, metavar="BYTES",
                        help="download this many bytes, stopping early when done "
                             "(default 0: as much as fits in --seconds)")
    parser.add_argument("--link", action="append", default=[], metavar="HOST=MBIT/RTT_MS[/LOSS%]",
                        help="an emulated link (repeatable; replaces the default three)")
    parser.add_argument("--down-link", type=int, default=0, metavar="N",
                        help="index of the link that fails (default 0, the fastest; -1: none)")
    parser.add_argument("--down-at", type=float, metavar="SECONDS",
                        help="when it fails (default: half of --seconds)")
    parser.add_argument("--scheduler", default="minrtt", help="path scheduler (default minrtt)")
    parser.add_argument("--cc", default="bbr1",
                        help="congestion controller (default bbr1: model-based, keeps lossy links full)")
    parser.add_argument("--single-path", action="store_true",
                        help="no multipath: one path over the first link")
    parser.add_argument("--interval", type=float, default=None,
                        help="table refresh in seconds (default 0.5 on a terminal, else 1)")
    parser.add_argument("--json", action="store_true",
                        help="no live table; print the summary as JSON")
    parser.add_argument("--seed", type=int, default=1, help="netem loss seed (default 1)")
    parser.set_defaults(handler=run)


def _options(args: argparse.Namespace, tty: bool) -> DemoOptions:
    from tquic.cc import available_controllers
    from tquic.paths.schedulers import available_schedulers

    if args.scheduler not in available_schedulers():
        raise DemoError(f"--scheduler {args.scheduler!r}: choose one of "
                        f"{', '.join(available_schedulers())}")
    if args.cc not in available_controllers():
        raise DemoError(f"--cc {args.cc!r}: choose one of {', '.join(available_controllers())}")
    links = tuple(parse_link(text) for text in args.link) or DEFAULT_LINKS
    interval = args.interval if args.interval is not None else (0.5 if tty else 1.0)
    return DemoOptions(links=links, seconds=args.seconds, size=args.size,
                       down_link=args.down_link, down_at=args.down_at,
                       scheduler=args.scheduler, congestion_control=args.cc,
                       multipath=not args.single_path, interval=interval, seed=args.seed)


def run(args: argparse.Namespace) -> int:
    """Handler of ``tquic demo``: 0 when the data arrived intact, 1 otherwise, 2 for a
    bad option, 130 after Ctrl-C."""
    from tquic.demo.live import run_demo
    from tquic.demo.render import LiveTable, banner, summary_text

    tty = sys.stdout.isatty() and not args.json
    try:
        options = _options(args, tty)
    except DemoError as exc:
        print(f"tquic demo: error: {exc}", file=sys.stderr)
        return 2

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    show = None if args.json else LiveTable(write, tty)
    if not args.json:
        print(banner(options), flush=True)
    try:
        summary = asyncio.run(run_demo(options, show))
    except DemoError as exc:
        print(f"tquic demo: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ntquic demo: interrupted; everything is closed", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2))
    else:
        print(summary_text(options, summary), flush=True)
        if not summary.multipath and options.multipath:
            print("note: multipath is not available here; the demo ran on one path",
                  flush=True)
    ok = summary.intact and summary.error is None and summary.bytes_received > 0
    return 0 if ok else 1
