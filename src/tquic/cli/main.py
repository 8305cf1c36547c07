"""The ``tquic`` command: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Sequence

from tquic import __version__

DESCRIPTION = """\
tquic: QUIC with multipath, HTTP/3 and DATAGRAM, built for WAN bonding.

One QUIC connection can spread its packets over several internet links
(LTE, 5G, Starlink, DSL, fibre), add up their bandwidth and keep running
when any of them dies.
"""

EPILOG = """\
Run 'tquic COMMAND --help' to learn a command.
Documentation: README.md and docs/ in the source tree.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tquic",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tquic {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    from tquic.cli import bond, certs, client, demo, proxy, server
    from tquic.cli.netem_cmd import add_netem_parser

    for module in (certs, server, client, demo, bond, proxy):
        module.register(subparsers)
    add_netem_parser(subparsers)
    from tquic.cli import bond_control

    bond_control.register(subparsers)  # after any module that creates 'tquic bond' itself
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.error(f"unknown command {args.command!r}")
    return int(handler(args))


def run() -> None:
    """The ``tquic`` command's entry point: leave as soon as the command is done.

    By the time ``main`` returns, everything the command wrote is flushed and
    closed, and a client's CONNECTION_CLOSE is on the wire.  The interpreter's own
    teardown (collecting every object, module finalisers) then costs 50-200 ms that
    a user's ``time`` counts and nothing needs, so it is skipped.  ``SystemExit``
    (usage errors, --help) and exceptions take the normal way out.
    """
    code = main()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
