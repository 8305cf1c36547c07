"""``tquic server`` flags for holding under load and scaling out: limits, Retry policy,
``--workers N`` (SO_REUSEPORT processes steered by connection ID) and QUIC-LB CIDs.

Kept apart from cli/server.py so the serving code calls three functions:
:func:`add_arguments`, :func:`run_workers` (the parent, when ``--workers`` > 1)
and :func:`apply` / :func:`limits` (each worker, or the single process).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from tquic.cli.common import CliError, fail
from tquic.cli.tickets import load_ticket_key
from tquic.core.config import QuicConfiguration
from tquic.io.admission import EndpointLimits
from tquic.io.udp import UdpSocket
from tquic.io.workers import farm_keys, worker_changes
from tquic.io.workers import lb_config as make_lb_config
from tquic.wire.quic_lb import MAX_WORKERS, QuicLbConfig, QuicLbError

DEFAULT_SERVER_ID = "01"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "load and scale", "defences under load (docs/hardening.md) and multi-core serving")
    group.add_argument("--workers", type=_workers, default=1, metavar="N",
                       help="serve from N processes sharing the port (SO_REUSEPORT); the "
                            "kernel steers each packet to its connection's worker by the "
                            "QUIC-LB connection ID (default 1; use one per core)")
    group.add_argument("--retry-policy", choices=("auto", "always", "never"), default=None,
                       help="validate client addresses with Retry: 'auto' (default) only "
                            "while handshakes or new Initials cross --retry-threshold / "
                            "--retry-initial-rate; --retry is 'always'")
    group.add_argument("--retry-threshold", type=_count, default=None, metavar="N",
                       help="handshakes in progress that switch Retry on (default 64)")
    group.add_argument("--retry-initial-rate", type=_rate, default=None, metavar="PER_S",
                       help="new Initials per second that switch Retry on (default 1000)")
    group.add_argument("--max-connections", type=_count, default=None, metavar="N",
                       help="connections per worker (default 4096)")
    group.add_argument("--max-handshakes", type=_count, default=None, metavar="N",
                       help="handshakes in progress per worker (default 512)")
    group.add_argument("--handshake-timeout", type=_rate, default=None, metavar="S",
                       help="drop a connection not established after S seconds (default 10)")
    group.add_argument("--initials-per-prefix", type=_rate, default=None, metavar="PER_S",
                       help="new connections per second from one /24 or /48 (default 1000)")
    group.add_argument("--stateless-rate", type=_rate, default=None, metavar="PER_S",
                       help="Version Negotiation + Stateless Reset packets per second "
                            "(default 200; 20 per source prefix)")
    group.add_argument("--retries-per-peer", type=_count, default=None, metavar="N",
                       help="Retries a client address:port may leave unanswered before its "
                            "new Initials are dropped (default 16; one forgiven per second)")
    group.add_argument("--junk-per-peer", type=_rate, default=None, metavar="PER_S",
                       help="datagrams per second one address:port may send that reach no "
                            "connection (garbage, stray packets) before the kernel drops "
                            "its datagrams for --peer-block seconds (default 20)")
    group.add_argument("--peer-block", type=_rate, default=None, metavar="S",
                       help="how long the kernel drops a peer over --junk-per-peer or "
                            "--retries-per-peer (default 2)")
    group.add_argument("--kernel-filter", action=argparse.BooleanOptionalAction, default=None,
                       help="drop such peers in an eBPF socket filter, before their "
                            "datagrams are queued (default on; needs root or CAP_BPF: "
                            "without it only the per-prefix and Retry limits hold)")
    group.add_argument("--kernel-initial-rate", type=_budget, default=None,
                       metavar="PER_S",
                       help="token-less Initials per second the kernel filter passes from "
                            "peers it does not block, whatever their source (a spoofed "
                            "flood); beyond, dropped before they are queued (default "
                            "10000; 0 = no budget)")
    group.add_argument("--quiet-after", type=_seconds, default=None, metavar="S",
                       help="a connection that receives nothing for S seconds frees its "
                            "keys' OpenSSL contexts, rebuilt by its next packet (default "
                            "15; 0 keeps them)")
    group.add_argument("--server-id", default=None, metavar="HEX",
                       help="QUIC-LB server ID for a CID-routing load balancer (1-15 octets "
                            f"in hex; default {DEFAULT_SERVER_ID} with --workers)")
    group.add_argument("--lb-key", default=None, metavar="HEX",
                       help="QUIC-LB key (16 octets in hex): encrypt the server ID in CIDs")
    group.add_argument("--lb-config-id", type=int, default=0, metavar="N",
                       help="QUIC-LB config rotation codepoint 0-6 (default 0)")
    group.add_argument("--token-key", metavar="FILE", default=None,
                       help="derive the Retry/NEW_TOKEN token key and the stateless-reset "
                            "key from this secret (32 bytes or 64 hex digits), so that the "
                            "servers behind one load balancer accept each other's tokens "
                            "and reset each other's connections; default: random per run")


def _workers(text: str) -> int:
    value = _count(text)
    if value > MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"at most {MAX_WORKERS} workers")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _float(text: str, expected: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None


def _seconds(text: str) -> float:
    value = _float(text, "seconds")
    if not value >= 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def _budget(text: str) -> float:
    value = _float(text, "a number")
    if not value >= 0:
        raise argparse.ArgumentTypeError("must not be negative (0 = no budget)")
    return value


def _rate(text: str) -> float:
    value = _float(text, "a number")
    if not value > 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def limits(args: argparse.Namespace, legacy_retry: bool = False) -> EndpointLimits:
    """The endpoint limits the flags ask for (``--retry`` alone means 'always')."""
    fields: dict[str, Any] = {}
    policy = args.retry_policy or ("always" if legacy_retry else None)
    if policy is not None:
        fields["retry"] = policy
    for flag, name in (("retry_threshold", "retry_threshold"),
                       ("retry_initial_rate", "retry_initial_rate"),
                       ("max_connections", "max_connections"),
                       ("max_handshakes", "max_handshakes"),
                       ("handshake_timeout", "handshake_timeout"),
                       ("initials_per_prefix", "initials_per_prefix"),
                       ("stateless_rate", "stateless_packets_per_second"),
                       ("retries_per_peer", "retries_unanswered_per_peer"),
                       ("junk_per_peer", "junk_per_peer"),
                       ("peer_block", "peer_block_seconds"),
                       ("kernel_filter", "kernel_filter"),
                       ("kernel_initial_rate", "kernel_initials_per_second"),
                       ("quiet_after", "quiet_after")):
        value = getattr(args, flag)
        if value is not None:
            fields[name] = value
    try:
        return EndpointLimits(**fields)
    except ValueError as exc:
        raise CliError(f"bad limit: {exc}") from None


def lb_config(args: argparse.Namespace) -> QuicLbConfig | None:
    """The QUIC-LB configuration, or None for plain random CIDs (one process, no LB)."""
    if args.server_id is None and args.lb_key is None and args.workers == 1:
        return None
    try:
        server_id = bytes.fromhex(args.server_id or DEFAULT_SERVER_ID)
        key = bytes.fromhex(args.lb_key) if args.lb_key is not None else None
    except ValueError:
        raise CliError("--server-id and --lb-key take hex digits") from None
    try:
        return make_lb_config(server_id, key, args.lb_config_id)
    except QuicLbError as exc:
        raise CliError(f"QUIC-LB: {exc}") from None


def apply(config: QuicConfiguration, args: argparse.Namespace) -> QuicConfiguration:
    """This process's configuration: QUIC-LB CIDs for its worker index and the keys all
    workers share (made by the parent before it forked)."""
    lb = lb_config(args)
    changes: dict[str, Any] = dict(getattr(args, "shared_keys", {}))
    if args.token_key:
        changes.update(farm_keys(load_ticket_key(args.token_key)))
    if lb is not None:
        changes.update(worker_changes(lb, getattr(args, "worker_index", 0)))
    ticket_key = changes.pop("ticket_key", None)
    if ticket_key is not None and config.ticket_store is not None and not args.ticket_key:
        from tquic.crypto.tls.tickets import TicketStore

        changes["ticket_store"] = TicketStore(ticket_key)  # resumption across workers
    return dataclasses.replace(config, **changes) if changes else config


def worker_socket(args: argparse.Namespace) -> UdpSocket | None:
    """The socket the parent bound for this worker (None: bind as usual)."""
    sock = getattr(args, "worker_socket", None)
    return sock if isinstance(sock, UdpSocket) else None


def run_workers(args: argparse.Namespace,
                serve: Callable[[argparse.Namespace], Coroutine[Any, Any, int]]) -> int:
    """The parent of ``--workers N``: bind the group, share the keys, fork, wait."""
    from tquic.io.workers import reuseport_group
    from tquic.io.workers import run_workers as fork_workers

    lb = lb_config(args)
    if lb is None:  # pragma: no cover - lb_config always answers with workers > 1
        raise CliError("--workers needs QUIC-LB connection IDs")
    host, port = args.listen
    try:
        sockets, steered = reuseport_group(host, port, args.workers, lb.cid_length)
    except OSError as exc:
        return fail("tquic server", f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    if not steered:
        print("tquic server: warning: the kernel refused the steering program; workers "
              "are chosen by 4-tuple hash (migrating clients may lose their connection)",
              file=sys.stderr)
    args.shared_keys = {**farm_keys(os.urandom(32)), "ticket_key": os.urandom(32)}
    bound = sockets[0].local_address
    print(f"tquic server: {args.workers} workers on [{bound[0]}]:{bound[1]}"
          f"{' (CID steering in the kernel)' if steered else ''}", file=sys.stderr, flush=True)

    def worker(index: int, sock: UdpSocket) -> int:
        args.worker_index = index
        args.worker_socket = sock
        try:
            return asyncio.run(serve(args))
        except CliError as exc:
            return fail("tquic server", str(exc))

    return fork_workers(sockets, worker)
