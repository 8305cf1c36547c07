"""The ``tquic`` command: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import contextlib
import importlib
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


# Each command's module, imported only when that command runs (or for the full
# ``tquic --help``): importing every command made ``tquic client`` start ~0.1 s
# slower than it needs, a cost every user's ``time`` counts.  Order = --help order.
# 'bond' has two modules: bond_control adds status/link to the parser bond made.
COMMANDS: dict[str, tuple[str, ...]] = {
    "certs": ("certs",),
    "server": ("server",),
    "client": ("client",),
    "demo": ("demo",),
    "bond": ("bond", "bond_control"),
    "proxy": ("proxy",),
    "proxy-client": ("proxy",),
    "netem": ("netem_cmd",),
}


def _register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
              modules: Sequence[str]) -> None:
    done: set[str] = set()
    for name in modules:
        if name in done:
            continue
        done.add(name)
        module = importlib.import_module(f"tquic.cli.{name}")
        if name == "netem_cmd":
            module.add_netem_parser(subparsers)
        else:
            module.register(subparsers)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``tquic`` parser; with ``command`` (one of :data:`COMMANDS`), only that
    command's subparser, so only its module is imported."""
    parser = argparse.ArgumentParser(
        prog="tquic",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tquic {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    if command in COMMANDS:
        _register(subparsers, COMMANDS[command])
    else:
        _register(subparsers, [m for modules in COMMANDS.values() for m in modules])
    return parser


def _command_word(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names: its first word, unless that is a top-level option
    (then the whole parser is built: --help lists every command)."""
    if not argv or argv[0].startswith("-"):
        return None
    return argv[0]


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command_word(words))
    args = parser.parse_args(words)
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
