"""``tquic netem``: the real-time UDP link emulator on the command line.

The lead wires it into cli/main.py with ``add_netem_parser(subparsers)``; the
parser it adds sets ``handler=run_netem``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import tomllib
from dataclasses import replace
from typing import Any

from tquic.netem.relay import EPOCHS, NetemRelay
from tquic.netem.spec import (
    PROFILE_HELP,
    LinkTable,
    NetemConfigError,
    parse_address,
    parse_link_option,
    table_from_toml,
)

DESCRIPTION = """\
Relay UDP datagrams from clients to a target through emulated links, without
root.  Each client source address gets its own link, so a client whose paths
are bound to 127.0.0.2, 127.0.0.3, ... sees a different link per path on one
machine.  Replies from the target come back through the same link (its down
direction).  The link model is tquic's simulator's, run in real time.
"""

EPILOG = PROFILE_HELP + """
examples:
  # server on 127.0.0.1:4434; clients talk to 127.0.0.1:4433
  tquic netem --listen 127.0.0.1:4433 --target 127.0.0.1:4434 \\
      --link 127.0.0.2=rate=50mbit,delay=10ms,loss=0.5% \\
      --link 127.0.0.3=rate=5mbit,delay=300ms,jitter=20ms,outage=10s-15s
  # an asymmetric LTE-like default for every other source
  tquic netem --listen 127.0.0.1:4433 --target 127.0.0.1:4434 \\
      --link default=up.rate=10mbit,down.rate=40mbit,delay=25ms,burst=1%:30%
  # everything from a file (command-line --link entries override it)
  tquic netem --config links.toml

links.toml:
  listen = "127.0.0.1:4433"
  target = "127.0.0.1:4434"
  seed = 1
  [links."127.0.0.2"]
  rate = "50mbit"
  delay = "10ms"
  outage = ["5s-7s", "20s-21s"]
  up = { rate = "10mbit" }

Outage and flap times count from when netem starts, or with --epoch first from
the first datagram a client sends (netem then prints that moment's monotonic
clock, so a script can line its own times up with the link's).  Ctrl-C stops it and prints the
totals per link.
"""


def add_netem_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``netem`` subcommand to ``subparsers`` (from ``add_subparsers``)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "netem",
        help="real-time UDP link emulator (rate, delay, loss, outages per source address)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--listen", metavar="HOST:PORT",
                        help="address clients send to (default 127.0.0.1:4433)")
    parser.add_argument("--target", metavar="HOST:PORT",
                        help="address datagrams are relayed to (default 127.0.0.1:4434)")
    parser.add_argument("--link", action="append", default=[], metavar="SOURCE=PROFILE",
                        help="link for datagrams from SOURCE (HOST, HOST:PORT, or 'default'); "
                             "repeatable; PROFILE keys below")
    parser.add_argument("--config", metavar="FILE.toml", help="listen, target and links from TOML")
    parser.add_argument("--seed", type=int, help="random seed for loss decisions (default 0)")
    parser.add_argument("--stats-interval", type=float, metavar="SECONDS",
                        help="print a stats line per link this often (default 5; 0 = at exit)")
    parser.add_argument("--epoch", choices=EPOCHS, default=None,
                        help="when outage/flap times start counting: 'start' (netem starts, "
                             "the default) or 'first' (the first datagram from any client, so "
                             "'outage=2.5s-' means 2.5 s into the transfer)")
    parser.add_argument("--max-clients", type=int, default=256,
                        help="most client addresses relayed at once (default 256)")
    parser.set_defaults(handler=run_netem)
    return parser


def build_relay(args: argparse.Namespace) -> tuple[NetemRelay, float]:
    """The relay and stats interval the arguments describe; NetemConfigError if wrong."""
    table = LinkTable()
    settings: dict[str, Any] = {}
    if args.config:
        try:
            with open(args.config, "rb") as f:
                data = tomllib.load(f)
        except OSError as exc:
            raise NetemConfigError(f"--config {args.config}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise NetemConfigError(f"--config {args.config}: not valid TOML: {exc}") from None
        table, settings = table_from_toml(data)
    for option in args.link:
        address, rule = parse_link_option(option)
        table = replace(table, default=rule) if address is None else table.with_rule(address,
                                                                                       rule)
    listen = parse_address(args.listen or str(settings.get("listen", "127.0.0.1:4433")),
                           "--listen")
    target = parse_address(args.target or str(settings.get("target", "127.0.0.1:4434")),
                           "--target")
    seed = args.seed if args.seed is not None else settings.get("seed", 0)
    interval = (args.stats_interval if args.stats_interval is not None
                else settings.get("stats_interval", 5.0))
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise NetemConfigError(f"seed: must be a whole number, got {seed!r}")
    if not isinstance(interval, (int, float)) or isinstance(interval, bool) or interval < 0:
        raise NetemConfigError(f"stats_interval: must be a number of seconds >= 0, got "
                               f"{interval!r}")
    if args.max_clients < 1:
        raise NetemConfigError(f"--max-clients: must be >= 1, got {args.max_clients}")
    epoch = args.epoch if args.epoch is not None else settings.get("epoch", "start")
    if epoch not in EPOCHS:
        raise NetemConfigError(f"epoch: must be one of {', '.join(EPOCHS)}, got {epoch!r}")
    relay = NetemRelay(listen, target, table, seed=seed, max_clients=args.max_clients,
                       epoch=epoch)
    return relay, float(interval)


async def _serve(relay: NetemRelay, interval: float) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Not the main thread, or not Unix: Ctrl-C then ends asyncio.run instead.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    address = relay.start()
    target = relay.target
    print(f"netem: listening on {address[0]}:{address[1]}, relaying to {target[0]}:{target[1]}",
          flush=True)
    for (host, port), rule in relay.table.rules:
        source = host if port == 0 else f"{host}:{port}"
        print(f"netem: link {source}: {rule.text}", flush=True)
    print(f"netem: link default: {relay.table.default.text}", flush=True)
    await relay.run(stop, interval)


def run_netem(args: argparse.Namespace) -> int:
    """Handler of ``tquic netem``: 0 after a clean stop, 2 for a configuration error."""
    try:
        relay, interval = build_relay(args)
    except NetemConfigError as exc:
        print(f"tquic netem: error: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(relay, interval))
    except OSError as exc:
        print(f"tquic netem: error: cannot listen on {relay.listen[0]}:{relay.listen[1]}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
