"""``tquic proxy`` (a CONNECT-UDP proxy, RFC 9298) and ``tquic proxy-client`` (a local UDP
port forwarded through it).

    tquic proxy --listen 0.0.0.0:4433 --cert cert.pem --key key.pem --token s3cret
    tquic proxy-client --local 127.0.0.1:5353 --target 9.9.9.9:53 \\
        --proxy https://proxy.example:4433 --token s3cret
    dig @127.0.0.1 -p 5353 example.org
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections import OrderedDict, deque
from typing import Any
from urllib.parse import urlsplit

from tquic.cli.common import CliError, credentials_error, fail, parse_listen, read_file
from tquic.cli.transport import setup_logging

PROXY_EPILOG = """\
Targets: by default only global unicast addresses (no loopback, link-local,
private, CGNAT, multicast); --allow CIDR adds networks (e.g. --allow 127.0.0.0/8
to reach local services), --deny CIDR removes them, --no-global keeps only the
--allow networks.  A refused target is answered 403 with a Proxy-Status field and
nothing is sent to it.  With --token (or --token-file) every request needs
'proxy-authorization: Bearer TOKEN' (else 401).

URI template served: https://HOST:PORT/.well-known/masque/udp/{target_host}/{target_port}/
"""

CLIENT_EPILOG = """\
Each local peer (address:port that sends to --local) gets its own CONNECT-UDP
session, so replies find their way back; idle sessions are closed after
--idle-timeout.  The first session opens at start-up: a refusal (401, 403, 502…)
is reported at once with the proxy's reason.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    proxy = subparsers.add_parser(
        "proxy", help="a CONNECT-UDP proxy (MASQUE, RFC 9298) over HTTP/3",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Relay UDP for authenticated clients: each extended CONNECT "
                    "(:protocol connect-udp) opens a UDP socket to the target it names, "
                    "and UDP payloads travel as HTTP Datagrams.", epilog=PROXY_EPILOG)
    proxy.add_argument("--listen", type=parse_listen, default=("::", 4433), metavar="ADDR:PORT",
                       help="address to listen on (default [::]:4433)")
    proxy.add_argument("--cert", required=True, help="certificate chain (PEM)")
    proxy.add_argument("--key", required=True, help="private key (PEM)")
    proxy.add_argument("--allow", action="append", default=[], metavar="CIDR",
                       help="also allow targets in this network (repeatable)")
    proxy.add_argument("--deny", action="append", default=[], metavar="CIDR",
                       help="never allow targets in this network (repeatable; wins)")
    proxy.add_argument("--no-global", dest="allow_global", action="store_false",
                       help="allow only the --allow networks, not every global address")
    proxy.add_argument("--token", action="append", default=[], metavar="TOKEN",
                       help="accepted bearer token (repeatable); without any, no "
                            "authentication is asked")
    proxy.add_argument("--token-file", metavar="FILE",
                       help="accepted tokens, one per line (keeps them out of 'ps')")
    proxy.add_argument("--max-sessions", type=int, default=1024, metavar="N",
                       help="UDP sessions at once (default 1024; beyond: 503)")
    proxy.add_argument("--idle-timeout", type=float, default=120.0, metavar="SECONDS",
                       help="close a session after this long without traffic (default 120, "
                            "RFC 9298 §3 asks for at least two minutes)")
    proxy.add_argument("-v", "--verbose", action="count", default=0,
                       help="log refusals and sessions (-vv: debug)")
    proxy.set_defaults(handler=run_proxy)

    client = subparsers.add_parser(
        "proxy-client", help="forward a local UDP port through a CONNECT-UDP proxy",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Listen on a local UDP port and relay what arrives to --target "
                    "through the CONNECT-UDP proxy at --proxy, and the answers back.",
        epilog=CLIENT_EPILOG)
    client.add_argument("--local", type=parse_listen, required=True, metavar="ADDR:PORT",
                        help="local UDP address to listen on, e.g. 127.0.0.1:5353")
    client.add_argument("--target", required=True, metavar="HOST:PORT",
                        help="where the proxy sends the datagrams, e.g. 9.9.9.9:53")
    client.add_argument("--proxy", required=True, metavar="URL",
                        help="https://HOST:PORT of the proxy, or its full URI template "
                             "with {target_host} and {target_port}")
    client.add_argument("--token", metavar="TOKEN", default=os.environ.get("TQUIC_PROXY_TOKEN"),
                        help="bearer token for the proxy (default: $TQUIC_PROXY_TOKEN)")
    trust = client.add_mutually_exclusive_group()
    trust.add_argument("--ca", metavar="FILE", help="trust this CA/certificate (PEM)")
    trust.add_argument("--insecure", action="store_true",
                       help="do not verify the proxy's certificate (testing only)")
    client.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                        help="connection and session set-up timeout (default 10)")
    client.add_argument("--idle-timeout", type=float, default=120.0, metavar="SECONDS",
                        help="close a local peer's session after this long idle (default 120)")
    client.add_argument("-v", "--verbose", action="count", default=0,
                        help="log sessions opened and closed (-vv: debug)")
    client.set_defaults(handler=run_client)


# -- tquic proxy ------------------------------------------------------------------------

def run_proxy(args: argparse.Namespace) -> int:
    setup_logging(args.verbose)
    try:
        return asyncio.run(_serve_proxy(args))
    except CliError as exc:
        return fail("tquic proxy", str(exc))
    except KeyboardInterrupt:
        return 0


async def _serve_proxy(args: argparse.Namespace) -> int:
    from tquic.core.config import ConfigurationError, QuicConfiguration
    from tquic.h3.aio import serve_h3
    from tquic.h3.connect_udp_server import TargetPolicy, UdpProxyServer
    from tquic.h3.messages import Request, Response
    from tquic.h3.settings import H3Config

    tokens = list(args.token)
    if args.token_file:
        text = read_file(args.token_file, "token").decode("utf-8", "replace")
        tokens += [line.strip() for line in text.splitlines() if line.strip()]
    try:
        policy = TargetPolicy.from_strings(args.allow, args.deny, args.allow_global)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if args.max_sessions < 1 or args.idle_timeout <= 0:
        raise CliError("--max-sessions and --idle-timeout must be positive")
    relay = UdpProxyServer(policy, tokens, max_sessions=args.max_sessions,
                           idle_timeout=args.idle_timeout)
    try:
        config = QuicConfiguration(is_client=False, certificate=read_file(args.cert, "certificate"),
                                   private_key=read_file(args.key, "key"),
                                   max_datagram_frame_size=65535)
    except ConfigurationError as exc:
        raise CliError(f"bad configuration: {exc}") from None

    async def other(request: Request) -> Response:
        return Response(404, ((b"content-type", b"text/plain"),),
                        b"this is a CONNECT-UDP proxy: /.well-known/masque/udp/{host}/{port}/\n")

    host, port = args.listen
    try:
        server = await serve_h3(host, port, config, other, connect_handler=relay,
                                h3_config=H3Config(enable_connect_protocol=True,
                                                   enable_datagrams=True))
    except ConfigurationError as exc:  # the certificate and key (checked before binding)
        raise credentials_error(exc.reason, exc.field_name, args.cert, args.key) from None
    except OSError as exc:
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    bound = server.local_address
    auth = f"{len(tokens)} token(s)" if tokens else "no authentication"
    print(f"tquic proxy: listening on [{bound[0]}]:{bound[1]} (CONNECT-UDP, {auth})",
          file=sys.stderr, flush=True)
    await _until_signal(server.close)
    await server.serve_forever()
    return 0


async def _until_signal(stop: Any) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop)


# -- tquic proxy-client ---------------------------------------------------------------------

def run_client(args: argparse.Namespace) -> int:
    setup_logging(args.verbose)
    try:
        return asyncio.run(_forward(args))
    except CliError as exc:
        return fail("tquic proxy-client", str(exc))
    except KeyboardInterrupt:
        return 0


def _parse_target(value: str) -> tuple[str, int]:
    host, sep, port_text = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise CliError(f"bad --target {value!r}: expected HOST:PORT (IPv6: [ADDR]:PORT)")
    return host, int(port_text)


class _Forwarder(asyncio.DatagramProtocol):
    """The local socket: one CONNECT-UDP session per local peer, opened on first use."""

    def __init__(self, opener: Any, idle: float, first: Any) -> None:
        self._opener = opener
        self._idle = idle
        self._spare = first  # the session opened at start-up, for the first peer
        self._peers: OrderedDict[tuple[str, int], _Peer] = OrderedDict()
        self.transport: asyncio.DatagramTransport | None = None
        self.failed: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        peer_addr = (str(addr[0]), int(addr[1]))
        peer = self._peers.get(peer_addr)
        if peer is None:
            while len(self._peers) >= 256:
                _, oldest = self._peers.popitem(last=False)
                oldest.stop()
            peer = self._peers[peer_addr] = _Peer(self, peer_addr)
        peer.send(data)

    def take_spare(self) -> Any:
        spare, self._spare = self._spare, None
        return spare

    def forget(self, addr: tuple[str, int], peer: _Peer) -> None:
        if self._peers.get(addr) is peer:
            del self._peers[addr]


class _Peer:
    def __init__(self, owner: _Forwarder, addr: tuple[str, int]) -> None:
        self._owner = owner
        self.addr = addr
        self.session: Any = None
        self.waiting: deque[bytes] = deque(maxlen=32)
        self._task = asyncio.ensure_future(self._run())

    def send(self, data: bytes) -> None:
        if self.session is None:
            self.waiting.append(data)
        else:
            with contextlib.suppress(ConnectionError):
                self.session.send(data)

    def stop(self) -> None:
        self._task.cancel()

    async def _run(self) -> None:
        log = logging.getLogger("tquic.proxy")
        session = self._owner.take_spare()
        try:
            if session is None:
                session = await self._owner._opener()
            self.session = session
            while self.waiting:
                session.send(self.waiting.popleft())
            transport = self._owner.transport
            while True:
                payload = await asyncio.wait_for(session.receive(), self._owner._idle)
                if transport is not None:
                    transport.sendto(payload, self.addr)
        except TimeoutError:
            log.info("peer %s:%d idle: session closed", *self.addr)
        except ConnectionError as exc:
            log.info("peer %s:%d: %s", *self.addr, exc)
            if not self._owner.failed.done() and "refused" in str(exc):
                self._owner.failed.set_result(str(exc))
        finally:
            if session is not None:
                session.close()
            self._owner.forget(self.addr, self)


async def _forward(args: argparse.Namespace) -> int:
    from tquic.core.config import ConfigurationError, QuicConfiguration
    from tquic.h3.aio import connect_h3
    from tquic.h3.connect_udp import TemplateError, UdpProxyRefused, open_udp, proxy_template
    from tquic.h3.settings import H3Config

    target = _parse_target(args.target)
    try:
        template = proxy_template(args.proxy)
    except TemplateError as exc:
        raise CliError(str(exc)) from None
    parts = urlsplit(template)
    if args.ca is not None and not os.path.isfile(args.ca):
        raise CliError(f"CA file not found: {args.ca}")
    try:
        config = QuicConfiguration(is_client=True, alpn_protocols=("h3",), cafile=args.ca,
                                   verify_peer=not args.insecure, max_datagram_frame_size=65535,
                                   server_name=parts.hostname)
    except ConfigurationError as exc:
        raise CliError(f"bad configuration: {exc}") from None
    headers = {"proxy-authorization": f"Bearer {args.token}"} if args.token else None
    try:
        client = await connect_h3(parts.hostname or "", parts.port or 443, config,
                                  h3_config=H3Config(enable_datagrams=True), timeout=args.timeout)
    except (ConnectionError, OSError, TimeoutError) as exc:
        raise CliError(f"cannot reach the proxy {args.proxy}: {exc}") from None

    async def opener() -> Any:
        return await asyncio.wait_for(open_udp(client, template, *target, headers=headers),
                                      args.timeout)

    try:
        first = await opener()
    except UdpProxyRefused as exc:
        await client.aclose()
        hint = " (check --token)" if exc.status == 401 else ""
        raise CliError(f"{exc}{hint}") from None
    except (TemplateError, ConnectionError, TimeoutError) as exc:
        await client.aclose()
        raise CliError(f"cannot open a UDP session to {args.target}: {exc}") from None
    loop = asyncio.get_running_loop()
    local_host, local_port = args.local
    try:
        transport, forwarder = await loop.create_datagram_endpoint(
            lambda: _Forwarder(opener, args.idle_timeout, first),
            local_addr=(local_host, local_port))
    except OSError as exc:
        first.close()
        await client.aclose()
        raise CliError(f"cannot listen on {local_host}:{local_port}: {exc.strerror}") from None
    bound = transport.get_extra_info("sockname")
    print(f"tquic proxy-client: listening on {bound[0]}:{bound[1]} -> {target[0]}:{target[1]} "
          f"via {parts.netloc}", file=sys.stderr, flush=True)
    stop: asyncio.Future[None] = loop.create_future()

    def on_signal() -> None:
        if not stop.done():
            stop.set_result(None)

    await _until_signal(on_signal)
    closed = client.protocol.wait_closed() if client.protocol is not None else loop.create_future()
    done, _ = await asyncio.wait({stop, forwarder.failed, asyncio.ensure_future(closed)},
                                 return_when=asyncio.FIRST_COMPLETED)
    transport.close()
    if stop in done:
        await client.aclose()
        return 0
    if forwarder.failed in done:
        await client.aclose()
        raise CliError(forwarder.failed.result())
    raise CliError("the connection to the proxy closed")
