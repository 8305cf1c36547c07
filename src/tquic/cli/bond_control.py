"""``tquic bond status`` and ``tquic bond link``: see and steer a running daemon through
its control API (docs/control.md).

``add_commands(bond_subparsers)`` adds both under an existing ``tquic bond``
parser; ``register(subparsers)`` finds ``bond`` if another module created it,
or creates it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from tquic.control.client import ENV_TARGET, ENV_TOKEN, ControlClient, ControlClientError
from tquic.control.model import ROLES
from tquic.control.values import load_token

CURSOR_UP = "\x1b[{}A"
CLEAR_DOWN = "\x1b[J"

STATUS_EPILOG = f"""\
The daemon's control socket is --control, else ${ENV_TARGET}, else the only
socket in /run/tquic/.  Over TCP give its token (--control-token or
${ENV_TOKEN}).

examples:
  tquic bond status
  tquic bond status --watch
  tquic bond status --control 127.0.0.1:9180 --control-token @/etc/tquic/token --json
"""

LINK_EPILOG = """\
examples:
  tquic bond link lte --role backup            # use LTE only when no primary link works
  tquic bond link lte --cap 10GB/month          # at the cap the link turns backup
  tquic bond link dsl --weight 3                # three times LTE's share (weighted scheduler)
  tquic bond link sat --down                    # stop using it until --up
  tquic bond link lte                           # just show it
"""


def add_control_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--control", metavar="PATH|ADDR:PORT",
                        help=f"the daemon's control socket or address (default ${ENV_TARGET}, "
                             f"else the only socket in /run/tquic)")
    parser.add_argument("--control-token", metavar="TOKEN|@FILE",
                        help=f"bearer token for a TCP control address (default ${ENV_TOKEN})")


def add_commands(bond: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = bond.add_parser(
        "status", help="show a running daemon's links, tunnel and clients",
        description="Show a running bond daemon (or tquic server --control): one line for\n"
                    "the daemon, a table per link (state, role, RTT, rates, share, loss,\n"
                    "retransmitted packets, ECN, data used against the cap, why a link is\n"
                    "demoted), the tunnel (drops, reorder buffer, FEC), the clients.",
        epilog=STATUS_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_control_options(status)
    status.add_argument("--json", action="store_true",
                        help="print /status, /links, /tunnel and /clients as one JSON object")
    status.add_argument("--watch", nargs="?", type=float, const=1.0, default=None,
                        metavar="SECONDS",
                        help="redraw every SECONDS (default 1) until Ctrl-C, with a bar per "
                             "link: its share of the bond's traffic, as on the dashboard")
    status.set_defaults(handler=run_status)

    link = bond.add_parser(
        "link", help="change a link's role, weight or cap, or take it down/up",
        description="Steer one link of a running daemon through its control API.\n"
                    "Without options, show the link.",
        epilog=LINK_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    link.add_argument("name", help="the link's name (as in 'tquic bond status')")
    link.add_argument("--role", choices=ROLES,
                      help="primary: carries traffic; backup: only when no primary works; "
                           "never: kept closed")
    link.add_argument("--weight", type=float, help="share for the weighted scheduler (0 < W <= "
                                                   "1000)")
    link.add_argument("--cap", metavar="AMOUNT[/PERIOD]",
                      help="data cap, e.g. 10GB/month, 500MB/day; 'unlimited' removes it")
    updown = link.add_mutually_exclusive_group()
    updown.add_argument("--down", action="store_true", help="take the link out of use")
    updown.add_argument("--up", action="store_true", help="put it back in use")
    updown.add_argument("--reopen", action="store_true",
                        help="re-open its path now (after a failure), without waiting")
    link.add_argument("--json", action="store_true", help="print the link as JSON")
    add_control_options(link)
    link.set_defaults(handler=run_link)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``status`` and ``link`` under ``tquic bond`` (creating ``bond`` if no other
    module did)."""
    bond = subparsers.choices.get("bond")
    if bond is None:
        bond = subparsers.add_parser(
            "bond", help="bonding daemon: status and steering of a running one",
            description="See and steer a running bond daemon through its control API.")
        actions = bond.add_subparsers(dest="bond_command", metavar="COMMAND")
        bond.set_defaults(handler=lambda args: _no_command(bond))
    else:
        # The daemon's own module created 'bond' with its subcommands: add ours there.
        found = [a for a in bond._actions if isinstance(a, argparse._SubParsersAction)]
        actions = found[0] if found else bond.add_subparsers(dest="bond_command", metavar="COMMAND")
    add_commands(actions)


def _no_command(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _client(args: argparse.Namespace) -> ControlClient:
    token = None
    if args.control_token:
        try:
            token = load_token(args.control_token)
        except ValueError as exc:
            raise ControlClientError(str(exc)) from None
    return ControlClient(args.control, token)


def _fail(command: str, message: str) -> int:
    print(f"tquic bond {command}: error: {message}", file=sys.stderr)
    return 1


def _snapshot(client: ControlClient) -> dict[str, Any]:
    return {"status": client.get("/status"), "links": client.get("/links"),
            "tunnel": client.get("/tunnel").get("tunnel"),
            "clients": client.get("/clients").get("clients", [])}


def run_status(args: argparse.Namespace) -> int:
    from tquic.control.render import status_text

    if args.watch is not None and not 0.1 <= args.watch <= 3600:
        return _fail("status", "--watch takes 0.1..3600 seconds")
    try:
        client = _client(args)
        drawn = 0
        tty = sys.stdout.isatty()
        while True:
            snap = _snapshot(client)
            if args.json:
                out = json.dumps(snap, indent=None if args.watch else 1)
            else:
                out = status_text(snap["status"], snap["links"], snap["tunnel"], snap["clients"],
                                  bars=args.watch is not None)
            if tty and drawn and not args.json:
                sys.stdout.write(CURSOR_UP.format(drawn) + CLEAR_DOWN)
            sys.stdout.write(out + "\n")
            sys.stdout.flush()
            drawn = out.count("\n") + 1
            if args.watch is None:
                return 0
            time.sleep(args.watch)
    except ControlClientError as exc:
        return _fail("status", exc.message)
    except KeyboardInterrupt:
        return 0


def run_link(args: argparse.Namespace) -> int:
    from tquic.control.render import link_rows

    body: dict[str, Any] = {}
    if args.role is not None:
        body["role"] = args.role
    if args.weight is not None:
        body["weight"] = args.weight
    if args.cap is not None:
        body["cap"] = args.cap
    name = args.name
    path = "/links/" + _quote(name)
    try:
        client = _client(args)
        answer: Any = None
        if body:
            answer = client.request("PUT", path, body)
        if args.down or args.up:
            answer = client.request("POST", f"{path}/{'down' if args.down else 'up'}")
        if args.reopen:
            client.request("POST", "/reopen", {"link": name})
            answer = None
        if answer is None:
            answer = client.get(path)
        link = answer["link"]
        if args.json:
            print(json.dumps(link, indent=1))
        else:
            print("\n".join(link_rows([link])))
        return 0
    except ControlClientError as exc:
        return _fail("link", exc.message)


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")
