"""Opening and accepting WebTransport sessions on the asyncio HTTP/3 endpoints.

Client::

    session = await connect_webtransport("https://example.com:4433/echo", quic_config)
    # or, on an H3Client you already have: await open_session(client, url)

Server (next to ordinary HTTP/3 requests)::

    async def on_connect(tunnel: ServerTunnel) -> None:
        if not is_webtransport_request(tunnel.request):
            tunnel.reject(501); return
        session = await accept_session(tunnel)
        ...

    await serve_h3(host, port, quic_config, http_handler,
                   h3_config=webtransport_h3_config(), connect_handler=on_connect)

or :func:`serve_webtransport` with one session handler per path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any

from tquic.core.config import QuicConfiguration
from tquic.h3.api import ConnectRefused, H3Client, H3Server, ServerTunnel
from tquic.h3.errors import H3ErrorCode
from tquic.h3.messages import HeadersLike, Request, Response, normalize_headers
from tquic.h3.settings import H3Config
from tquic.h3.webtransport.codes import (
    DRAFT02_REQUEST_HEADER,
    DRAFT02_RESPONSE_HEADER,
    WT_REQUIREMENTS_NOT_MET,
    WtVersion,
)
from tquic.h3.webtransport.flow import FlowLimits, SessionFlow
from tquic.h3.webtransport.hub import WebTransportHub
from tquic.h3.webtransport.session import WebTransportSession
from tquic.h3.webtransport.streams import WebTransportError
from tquic.h3.wt_streams import (
    SETTING_WT_INITIAL_MAX_DATA,
    SETTING_WT_INITIAL_MAX_STREAMS_BIDI,
    SETTING_WT_INITIAL_MAX_STREAMS_UNI,
)

SessionHandler = Callable[[WebTransportSession], Awaitable[None]]
DEFAULT_FLOW = FlowLimits(max_streams_bidi=100, max_streams_uni=100, max_data=16 << 20)


class WebTransportRefused(WebTransportError):
    """The server answered the session's CONNECT with a non-2xx status."""

    def __init__(self, status: int) -> None:
        super().__init__(f"WebTransport session refused with status {status}")
        self.status = status


def webtransport_h3_config(base: H3Config | None = None,
                           flow: FlowLimits | None = DEFAULT_FLOW) -> H3Config:
    """An H3Config that speaks WebTransport: extended CONNECT, HTTP Datagrams, the
    WebTransport SETTINGS and (``flow`` not None) the initial flow-control limits
    of §5.5, which also allow several sessions per connection (§5.1)."""
    extra = dict((base or H3Config()).extra_settings)
    if flow is not None and flow.enabled:
        extra[SETTING_WT_INITIAL_MAX_STREAMS_BIDI] = flow.max_streams_bidi
        extra[SETTING_WT_INITIAL_MAX_STREAMS_UNI] = flow.max_streams_uni
        extra[SETTING_WT_INITIAL_MAX_DATA] = flow.max_data
    return dataclasses.replace(base or H3Config(), webtransport=True, enable_datagrams=True,
                               enable_connect_protocol=True, extra_settings=tuple(extra.items()))


def is_webtransport_request(request: Request) -> bool:
    """An extended CONNECT for WebTransport, either draft (§3.2; draft-02 §3.2)."""
    return request.method == "CONNECT" and request.protocol in {v.value for v in WtVersion}


def _hub(endpoint: Any) -> WebTransportHub:
    hub = getattr(endpoint, "webtransport", None)
    if not isinstance(hub, WebTransportHub):
        raise WebTransportError("this HTTP/3 endpoint was not configured with "
                                "webtransport_h3_config()")
    return hub


def _flow(hub: WebTransportHub, version: WtVersion) -> SessionFlow | None:
    if hub.flow_enabled(version):
        return SessionFlow(hub.local_flow, hub.peer_flow())
    return None


async def accept_session(tunnel: ServerTunnel, headers: HeadersLike | None = None,
                         *, origins: Collection[str] | None = None,
                         settings_timeout: float = 10.0) -> WebTransportSession:
    """Accept a WebTransport CONNECT (2xx) and return its session.

    ``origins``: the page origins (``https://app.example``) allowed to open sessions;
    a request whose ``origin`` is not one of them is answered 403 (§3.2).  None
    accepts every origin (an open service, like the echo endpoint).
    Latest draft: waits for the client's SETTINGS first (§7.1).  Refused when the
    connection has no room for another session: without flow control only one
    session may be open (§5.1: the stream is reset with H3_REQUEST_REJECTED).
    """
    server: H3Server = tunnel._server
    hub = _hub(server)
    version = WtVersion(tunnel.request.protocol)
    if origins is not None:
        origin = dict(tunnel.request.headers).get(b"origin", b"").decode("latin-1")
        if origin not in origins:
            tunnel.reject(403, f"origin {origin or '(none)'} is not allowed\n".encode())
            raise WebTransportError(f"origin {origin or '(none)'} refused")
    if version is WtVersion.LATEST and not hub.settings_received.is_set():
        import asyncio

        await asyncio.wait_for(hub.settings_received.wait(), settings_timeout)
    if not hub.session_capacity(version):
        tunnel.abort(H3ErrorCode.H3_REQUEST_REJECTED)
        raise WebTransportError("no room for another WebTransport session on this connection")
    reply = list(normalize_headers(headers))
    if version is WtVersion.DRAFT02:
        reply.append((DRAFT02_RESPONSE_HEADER, b"draft02"))
    tunnel.accept(200, reply)
    session = WebTransportSession(server, tunnel, version, hub, _flow(hub, version),
                                  headers=tunnel.request.headers)
    hub.register(session)
    return session


async def open_session(client: H3Client, url: str, headers: HeadersLike | None = None,
                       *, settings_timeout: float = 10.0) -> WebTransportSession:
    """Open a WebTransport session to ``url`` on an existing HTTP/3 connection.

    The draft is chosen from the server's SETTINGS (§3.1): the latest when it sent
    SETTINGS_WT_ENABLED=1, else draft-02.  Raises WebTransportError when the server
    does not speak WebTransport, WebTransportRefused on a non-2xx answer.
    """
    hub = _hub(client)
    await client.wait_for_settings(settings_timeout)
    version = hub.client_version()
    if version is None or not client.h3.datagrams_enabled():
        raise WebTransportError(
            "the server does not offer WebTransport (no SETTINGS_WT_ENABLED / "
            "SETTINGS_ENABLE_WEBTRANSPORT, or no HTTP Datagrams)")
    if version is WtVersion.LATEST and not hub.session_capacity(version):
        raise WebTransportError("flow control was not negotiated: one session per connection")
    fields = list(normalize_headers(headers))
    if version is WtVersion.DRAFT02:
        fields.append((DRAFT02_REQUEST_HEADER, b"1"))
    try:
        tunnel = await client.connect(url, protocol=version.value, headers=fields,
                                      capsule_protocol=version is WtVersion.LATEST)
    except ConnectRefused as exc:
        raise WebTransportRefused(exc.response.status) from None
    session = WebTransportSession(client, tunnel, version, hub, _flow(hub, version),
                                  headers=tunnel.peer_headers)
    hub.register(session)
    return session


async def connect_webtransport(url: str, config: QuicConfiguration | None = None, *,
                               headers: HeadersLike | None = None,
                               h3_config: H3Config | None = None,
                               timeout: float = 30.0, **connect_kwargs: Any) -> WebTransportSession:
    """A new HTTP/3 connection to ``url``'s authority with one WebTransport session on it
    (W3C ``new WebTransport(url)``).  ``await session.aclose()`` closes both."""
    from urllib.parse import urlsplit

    from tquic.h3.aio import connect_h3

    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"WebTransport needs an https:// URL, got {url!r}")
    client = await connect_h3(parts.hostname, parts.port or 443, config,
                              h3_config=h3_config or webtransport_h3_config(), timeout=timeout,
                              **connect_kwargs)
    try:
        session = await open_session(client, url, headers, settings_timeout=timeout)
    except BaseException:
        if client.webtransport is not None and client.webtransport.client_version() is None:
            client.close(WT_REQUIREMENTS_NOT_MET, "WebTransport not offered")  # §3.1
        await client.aclose()
        raise
    session.owns_connection = True
    return session


async def _not_found(request: Request) -> Response:
    return Response(404, ((b"content-type", b"text/plain"),), b"not found\n")


async def serve_webtransport(host: str, port: int, config: QuicConfiguration,
                             routes: Mapping[str, SessionHandler], *,
                             http_handler: Callable[[Request], Awaitable[Response]] | None = None,
                             h3_config: H3Config | None = None, **serve_kwargs: Any) -> Any:
    """Serve WebTransport sessions: ``routes[path](session)`` per accepted session
    (unknown paths get 404, non-WebTransport CONNECT 501 — §3.2 suggests 405 for a
    resource without WebTransport, kept for paths that exist but are not routes).
    ``http_handler`` answers ordinary requests.  Returns the tquic.io QuicServer."""
    from tquic.h3.aio import serve_h3

    return await serve_h3(host, port, config, http_handler or _not_found,
                          h3_config=h3_config or webtransport_h3_config(),
                          connect_handler=session_dispatcher(routes), **serve_kwargs)


def session_dispatcher(routes: Mapping[str, SessionHandler],
                       fallback: Callable[[ServerTunnel], Awaitable[None]] | None = None,
                       ) -> Callable[[ServerTunnel], Awaitable[None]]:
    """A ``connect_handler`` that accepts WebTransport sessions on ``routes`` and hands
    every other CONNECT to ``fallback`` (or refuses it)."""

    async def on_connect(tunnel: ServerTunnel) -> None:
        request = tunnel.request
        if not is_webtransport_request(request):
            if fallback is not None:
                await fallback(tunnel)
            else:
                tunnel.reject(501)
            return
        handler = routes.get(request.path.split("?", 1)[0])
        if handler is None:
            tunnel.reject(404)
            return
        try:
            session = await accept_session(tunnel)
        except (WebTransportError, TimeoutError):
            return
        try:
            await handler(session)
        finally:
            if not session.closed.done():
                session.close()

    return on_connect
