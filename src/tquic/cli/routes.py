"""Which code answers an HTTP/3 request on ``tquic server``.

A request whose path (without its query) was registered with :meth:`Router.add`
goes to that handler; everything else to the fallback (the static files).  An
extended CONNECT (RFC 9220, e.g. WebTransport) goes to the handler registered
for its ``:protocol`` and path with :meth:`Router.add_connect`; others are
refused with 404.  Features of the server (``--webtransport-echo PATH`` and the
like) register here instead of growing the file handler.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tquic.h3.api import Handler, ServerTunnel
from tquic.h3.messages import Request, Response

ConnectHandler = Callable[[ServerTunnel], Awaitable[None]]


class Router:
    def __init__(self, fallback: Handler) -> None:
        self._fallback = fallback
        self._routes: dict[str, Handler] = {}
        self._connect: dict[tuple[str, str], ConnectHandler] = {}

    def add(self, path: str, handler: Handler) -> None:
        """Answer requests for exactly ``path`` (any method) with ``handler``."""
        if not path.startswith("/"):
            raise ValueError(f"route path must start with '/': {path!r}")
        self._routes[path] = handler

    def add_connect(self, protocol: str, path: str, handler: ConnectHandler) -> None:
        """Hand extended CONNECT requests with ``:protocol`` ``protocol`` to ``path``
        to ``handler`` (it accepts or rejects the :class:`ServerTunnel`)."""
        if not path.startswith("/"):
            raise ValueError(f"route path must start with '/': {path!r}")
        self._connect[(protocol, path)] = handler

    @property
    def takes_connect(self) -> bool:
        """Whether any extended CONNECT route exists (the server then enables RFC 9220)."""
        return bool(self._connect)

    async def __call__(self, request: Request) -> Response:
        handler = self._routes.get(request.path.split("?", 1)[0], self._fallback)
        return await handler(request)

    async def connect(self, tunnel: ServerTunnel) -> None:
        request = tunnel.request
        handler = self._connect.get((request.protocol or "", request.path.split("?", 1)[0]))
        if handler is None:
            tunnel.reject(404, b"no such CONNECT endpoint\n")
            return
        await handler(tunnel)
