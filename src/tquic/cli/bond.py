"""``tquic bond``: the bonding daemons (client and server) and their small helpers.

Every flag is also a key of the TOML file given with ``--config`` (the key is
the flag's name without dashes, ``-`` as ``_``; a repeatable flag is a list);
a flag given on the command line wins over the file.  docs/bond.md has
examples for a home router (LTE + DSL) and a VPS, and a systemd unit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from typing import Any

from tquic.control.options import add_control_arguments

SERVER_EXAMPLE = """\
examples:
  tquic bond hash-token s3cret        # the token's SHA-256, for a clients file
  tquic bond server --listen 0.0.0.0:4433 --cert cert.pem --key key.pem \\
      --pool 10.99.0.0/24 --token s3cret --nat
  tquic bond server --config /etc/tquic/bond-server.toml
  tquic bond server ... --workers auto   # one process per core, a TUN each (bondsrv0, 1...)

FEC repairs for the download direction: a [fec] table in --config (docs/fec.md).
"""

CLIENT_EXAMPLE = """\
examples:
  tquic bond client --server vps.example.net:4433 --ca ca.pem --token s3cret \\
      --link %eth1 --link %wwan0,role=backup,cap=20GB/month --route 0.0.0.0/0
  tquic bond client --config /etc/tquic/bond-client.toml

a link is ADDR[%IFACE][,role=primary|backup|never][,weight=N][,cap=10GB/month]
[,max_rtt=300ms][,max_loss=5%][,name=NAME]; %IFACE alone follows the interface's
address.  Signals: SIGTERM stops and removes the TUN; SIGHUP re-reads --config.
Forward error correction for calls and video over lossy links: a [fec] table in
the --config file (docs/fec.md).
"""


# The control API's default sockets (docs/control.md); --control overrides, 'none' disables.
CONTROL_CLIENT = "/run/tquic/bond-client.sock"
CONTROL_SERVER = "/run/tquic/bond-server.sock"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "bond", help="bond a site's links for every application (CONNECT-IP over multipath)",
        description="Bond several internet links (LTE, DSL, Starlink...) into one "
                    "multipath QUIC connection carrying an IP tunnel (RFC 9484 CONNECT-IP) "
                    "to a bond server: every application's traffic, unchanged.")
    sub = parser.add_subparsers(dest="bond_command", metavar="COMMAND")
    parser.set_defaults(handler=lambda args: _usage(parser))

    server = sub.add_parser("server", help="the aggregation server (a VPS)",
                            description="Accept bond clients, give each a tunnel address "
                                        "from --pool and forward their packets.",
                            epilog=SERVER_EXAMPLE,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    server.add_argument("--listen", metavar="ADDR:PORT", help="UDP address to listen on "
                        "(default [::]:4433)")
    server.add_argument("--cert", metavar="FILE", help="TLS certificate chain (PEM)")
    server.add_argument("--key", metavar="FILE", help="TLS private key (PEM)")
    server.add_argument("--pool", metavar="CIDR", action="append",
                        help="addresses for clients, e.g. 10.99.0.0/24 (once per family); "
                             "the first host is the server's")
    server.add_argument("--token", metavar="T", help="one shared bearer token for all "
                                                      "clients (prefer --clients)")
    server.add_argument("--clients", metavar="FILE", help="TOML file of [[client]] tables: "
                        "name, token_sha256 or cert_sha256, optional address, routes, reach")
    server.add_argument("--client-ca", metavar="FILE", help="require TLS client certificates "
                        "signed by this CA (PEM); a certificate's CN (or cert_sha256) names "
                        "its [[client]]")
    server.add_argument("--nat", action="store_true", default=None,
                        help="masquerade the pool behind this host (nftables); removed at exit")
    server.add_argument("--tun", metavar="NAME", help="TUN interface name (default bondsrv0)")
    server.add_argument("--workers", metavar="N|auto",
                        help="serve from N processes sharing the UDP port, one per core "
                             "('auto': as many as CPUs). Each has its own TUN (--tun "
                             "numbered up: bondsrv0, bondsrv1...) and 1/N of every --pool; "
                             "the kernel steers each client's packets to its worker by "
                             "connection ID. Default 1")
    lane = server.add_argument_group(
        "TCP lane", "clients' SOCKS/redirected TCP connects onward from here; by default only "
        "to global unicast addresses (never loopback, link-local, private, ULA, multicast)")
    lane.add_argument("--lane", action=argparse.BooleanOptionalAction, default=None,
                      help="serve the TCP lane (default on; --no-lane refuses it with 501)")
    lane.add_argument("--lane-allow", metavar="CIDR", action="append",
                      help="also reach this network, e.g. 192.168.10.0/24 (repeat)")
    lane.add_argument("--lane-deny", metavar="CIDR", action="append",
                      help="never reach this network (repeat; wins over --lane-allow)")
    lane.add_argument("--lane-ports", metavar="PORTS", action="append",
                      help="only these ports, e.g. 443 or 8000-8100 (repeat)")
    lane.add_argument("--lane-deny-ports", metavar="PORTS", action="append",
                      help="never these ports, e.g. 25 (repeat)")
    _common(server)
    add_control_arguments(server, CONTROL_SERVER)
    server.set_defaults(handler=run_server)

    client = sub.add_parser("client", help="the site's end (a router with several links)",
                            description="Race a handshake over every link, open the tunnel, "
                                        "carry the TUN's packets over all links at once.",
                            epilog=CLIENT_EXAMPLE,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    client.add_argument("--server", metavar="HOST:PORT", help="the bond server")
    client.add_argument("--ca", metavar="FILE", help="CA certificate that signed the server's")
    client.add_argument("--insecure", action="store_true", default=None,
                        help="do not check the server's certificate (tests only)")
    client.add_argument("--token", metavar="T", help="bearer token the server knows")
    client.add_argument("--cert", metavar="FILE", help="our TLS client certificate (PEM), for "
                        "a server with --client-ca")
    client.add_argument("--key", metavar="FILE", help="the private key of --cert (PEM)")
    client.add_argument("--link", metavar="SPEC", action="append",
                        help="a WAN link (repeat per link; see below)")
    client.add_argument("--tun", metavar="NAME", help="TUN interface name (default bond0)")
    client.add_argument("--route", metavar="CIDR", action="append",
                        help="send this network through the tunnel (repeat; 0.0.0.0/0 for all)")
    client.add_argument("--socks", metavar="ADDR:PORT",
                        help="also serve SOCKS5 here (the TCP lane: each TCP connection one "
                             "HTTP/3 stream over every link, so one download gets the sum)")
    client.add_argument("--socks-user", metavar="U", help="require this SOCKS5 username "
                        "(RFC 1929; with --socks-password)")
    client.add_argument("--socks-password", metavar="P", help="the SOCKS5 password")
    client.add_argument("--redirect", metavar="ADDR:PORT",
                        help="also accept nftables-redirected TCP here (the TCP lane), e.g. "
                             "[::]:12345")
    client.add_argument("--redirect-interface", metavar="IFACE",
                        help="install the nftables rule redirecting TCP from this LAN "
                             "interface to --redirect (removed at exit)")
    client.add_argument("--state-dir", metavar="DIR",
                        help="where data-cap usage is kept (default /var/lib/tquic-bond)")
    _common(client)
    add_control_arguments(client, CONTROL_CLIENT)
    client.set_defaults(handler=run_client)

    hash_token = sub.add_parser("hash-token", help="print a token's SHA-256 for a clients file",
                                description="Print the hex SHA-256 of TOKEN: the server's "
                                            "clients file keeps this, never the token.")
    hash_token.add_argument("token", metavar="TOKEN")
    hash_token.set_defaults(handler=lambda args: _print_hash(args.token))


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="TOML file; every flag is a key")
    parser.add_argument("--cc", metavar="NAME", help="congestion controller (default cubic)")
    parser.add_argument("--scheduler", metavar="NAME", help="multipath scheduler")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 0


def _print_hash(token: str) -> int:
    from tquic.bond.auth import hash_token

    print(hash_token(token))
    return 0


_NOT_CONFIG = ("command", "bond_command", "handler", "config", "verbose", "control",
               "control_token", "control_interval")


def _values(args: argparse.Namespace) -> dict[str, Any]:
    return {k: v for k, v in vars(args).items() if k not in _NOT_CONFIG}


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    if not verbose:
        for noisy in ("tquic.io", "tquic.io.paths", "tquic.io.udp", "tquic.h3"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def _fail(message: str) -> int:
    print(f"tquic bond: {message}", file=sys.stderr)
    return 2


def run_server(args: argparse.Namespace) -> int:
    from tquic.bond.config import merged, server_config
    from tquic.bond.links_config import BondConfigError
    from tquic.cli.bond_view import take_control_keys

    values = _values(args)
    if values.get("pool"):
        values["pool"] = list(values["pool"])
    if values.get("lane_ports"):  # "80,443" on the command line as well as repeated flags
        values["lane_ports"] = [p for v in values["lane_ports"] for p in v.split(",")]
    if values.get("lane_deny_ports"):
        values["lane_deny_ports"] = [p for v in values["lane_deny_ports"] for p in v.split(",")]
    try:
        config = server_config(take_control_keys(merged(values, args.config), args))
    except BondConfigError as exc:
        return _fail(f"config: {exc}")
    _logging(args.verbose)
    return asyncio.run(_serve(config, args))


async def _serve(config: Any, args: argparse.Namespace) -> int:
    from tquic.bond.links_config import BondConfigError
    from tquic.bond.nat import NatError
    from tquic.bond.server import BondServer
    from tquic.bond.tun import TunError
    from tquic.cli.bond_view import BondView
    from tquic.control.options import control_for

    if config.workers > 1:
        return await _serve_workers(config, args)
    server = BondServer(config)
    stop = asyncio.Event()
    _signals(stop, None, server.status)
    try:
        await server.start()
    except BondConfigError as exc:
        await server.close()
        return _fail(f"config: {exc}")
    except (TunError, NatError, OSError) as exc:
        await server.close()
        return _fail(str(exc))
    try:
        async with control_for(args, BondView(server, lambda: server.config), None,
                               "tquic bond server", CONTROL_SERVER):
            await stop.wait()
    except OSError as exc:  # --control could not be served
        return _fail(str(exc))
    finally:
        await server.close()
        logging.getLogger("tquic.bond").info("server stopped; tun, nft table and forwarding "
                                             "settings removed")
    return 0


async def _serve_workers(config: Any, args: argparse.Namespace) -> int:
    """``--workers N``: the parent runs the workers (tquic.bond.server_workers) and the
    control plane over all of them."""
    from tquic.bond.links_config import BondConfigError
    from tquic.bond.nat import NatError
    from tquic.bond.server_workers import WorkerFailed, WorkerGroup
    from tquic.cli.bond_view import BondView
    from tquic.control.options import control_for

    try:
        group = WorkerGroup(config, verbose=args.verbose)
    except BondConfigError as exc:
        return _fail(f"config: {exc}")
    stop = asyncio.Event()
    _signals(stop, None, group.status)
    try:
        await group.start()
    except BondConfigError as exc:
        return _fail(f"config: {exc}")
    except (WorkerFailed, NatError, OSError) as exc:
        return _fail(str(exc))
    failed = asyncio.ensure_future(group.failed.wait())
    stopped = asyncio.ensure_future(stop.wait())
    try:
        async with control_for(args, BondView(group, lambda: group.config), None,
                               "tquic bond server", CONTROL_SERVER):
            await asyncio.wait([failed, stopped], return_when=asyncio.FIRST_COMPLETED)
    except OSError as exc:  # --control could not be served
        return _fail(str(exc))
    finally:
        failed.cancel()
        stopped.cancel()
        await group.close()
        logging.getLogger("tquic.bond").info("server stopped; workers, tuns, nft table and "
                                             "forwarding settings removed")
    if group.failure is not None:
        return _fail(group.failure)
    return 0


def run_client(args: argparse.Namespace) -> int:
    from tquic.bond.config import client_config, merged
    from tquic.bond.links_config import BondConfigError
    from tquic.cli.bond_view import take_control_keys

    values = _values(args)

    def load() -> Any:
        return client_config(take_control_keys(merged(values, args.config), args))

    try:
        config = load()
    except BondConfigError as exc:
        return _fail(f"config: {exc}")
    _logging(args.verbose)
    return asyncio.run(_client(config, load if args.config else None, args))


async def _client(config: Any, loader: Callable[[], Any] | None,
                  args: argparse.Namespace) -> int:
    from tquic.bond.client import BondClient
    from tquic.bond.tun import TunError
    from tquic.cli.bond_view import BondView
    from tquic.control.options import ControlStartError, control_for

    client = BondClient(config, config_loader=loader)
    stop = asyncio.Event()
    _signals(stop, client.reload, client.status)
    view = BondView(client, lambda: client.config)
    try:
        async with control_for(args, view, view, "tquic bond client", CONTROL_CLIENT):
            return await client.run(stop)
    except (TunError, ControlStartError) as exc:
        return _fail(str(exc))


def _signals(stop: asyncio.Event, reload: Callable[[], None] | None,
             status: Callable[[], Any]) -> None:
    """SIGTERM/SIGINT stop, SIGHUP reloads, SIGUSR1 logs the status as one JSON line."""
    loop = asyncio.get_running_loop()

    def dump() -> None:
        import json

        with contextlib.suppress(Exception):
            logging.getLogger("tquic.bond").info("status %s", json.dumps(status().as_dict()))

    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGUSR1, dump)
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    if reload is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, reload)
