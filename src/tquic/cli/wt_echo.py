"""``tquic server --webtransport-echo PATH``: a WebTransport echo endpoint next to the files.

The server's routes (:class:`~tquic.cli.routes.Router`) hand extended CONNECT
requests for PATH — with the ``webtransport-h3`` token (draft-ietf-webtrans-http3)
or the draft-02 ``webtransport`` token browsers send — to the echo of
:mod:`tquic.h3.webtransport.echo`: bidirectional streams come back on the same
stream, unidirectional ones on a new stream, datagrams as datagrams.
"""

from __future__ import annotations

import argparse
from typing import Any

from tquic.cli.common import CliError
from tquic.cli.routes import Router
from tquic.h3.api import ServerTunnel
from tquic.h3.settings import H3Config
from tquic.h3.webtransport import WtVersion, accept_session, webtransport_h3_config
from tquic.h3.webtransport.echo import echo_session
from tquic.h3.webtransport.streams import WebTransportError

# The largest QUIC DATAGRAM frame the server accepts when WebTransport is on (RFC 9221 §3).
MAX_DATAGRAM_FRAME = 65535


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--webtransport-echo", metavar="PATH", default=None,
        help="also serve a WebTransport echo endpoint at PATH (e.g. /echo): each stream "
             "is echoed (bidirectional on the same stream, unidirectional on a new one) "
             "and each datagram; a browser page can use it with new WebTransport("
             "'https://HOST:PORT/echo'). Try it with tquic client --webtransport URL")


def register_routes(router: Router, args: argparse.Namespace) -> None:
    path = getattr(args, "webtransport_echo", None)
    if path is None:
        return
    if not path.startswith("/"):
        raise CliError(f"--webtransport-echo: the path must start with '/': {path!r}")
    for version in WtVersion:
        router.add_connect(version.value, path, _echo)


def enabled(args: argparse.Namespace) -> bool:
    return getattr(args, "webtransport_echo", None) is not None


def quic_options(args: argparse.Namespace) -> dict[str, Any]:
    """QUIC settings WebTransport needs (RFC 9221 DATAGRAM, draft §3.1)."""
    return {"max_datagram_frame_size": MAX_DATAGRAM_FRAME} if enabled(args) else {}


def h3_config(args: argparse.Namespace, base: H3Config) -> H3Config:
    """The server's H3Config: WebTransport SETTINGS when the echo endpoint is on."""
    return webtransport_h3_config(base) if enabled(args) else base


async def _echo(tunnel: ServerTunnel) -> None:
    try:
        session = await accept_session(tunnel)
    except (WebTransportError, TimeoutError):
        return
    try:
        await echo_session(session)
    finally:
        session.close()
