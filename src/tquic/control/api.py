"""The control API's routes: reads, validated writes, authorisation.

Transport-free: ``ControlApi.handle(request)`` returns a ``Reply``; the
asyncio listener (``tquic.control.server``) moves the bytes.  Every refusal is
a JSON object ``{"error": "...", "status": N}`` with the status that names
the problem: 400 malformed body, 401 no or wrong token, 404 no such link or
route, 405 wrong method, 409 not possible now, 413 too large, 415 not JSON,
422 a value out of range.  Authorisation is checked before anything else, so
an unauthorised write changes nothing.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tquic.control.dashboard import PAGE
from tquic.control.http import Request
from tquic.control.model import ControlError, LinkChange, NotFound, Steering
from tquic.control.sampler import Sampler, finite
from tquic.control.values import (
    parse_body,
    parse_empty,
    parse_link_change,
    parse_optional_link,
)

__all__ = ["COOKIE", "ControlApi", "Reply"]

logger = logging.getLogger("tquic.control")

JSON = "application/json"
COOKIE = "tquic_control"
READS = ("/status", "/links", "/tunnel", "/clients", "/config", "/events", "/history",
         "/metrics", "/live")


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    stream: bool = False  # server-sent events follow (GET /live)


def json_reply(status: int, value: Any, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    body = json.dumps(finite(value), indent=1, allow_nan=False).encode() + b"\n"
    return Reply(status, body, JSON, headers)


def error_reply(status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    return json_reply(status, {"error": message, "status": status}, headers)


class ControlApi:
    """Routes one request.  ``token`` None: no authorisation (a 0600 Unix socket);
    otherwise every request needs ``Authorization: Bearer TOKEN`` or the dashboard's
    cookie (set by opening ``/?token=TOKEN`` once)."""

    def __init__(self, sampler: Sampler, steering: Steering | None = None, *,
                 token: str | None = None) -> None:
        if token is not None and len(token) < 16:
            raise ValueError("the control token must be at least 16 characters")
        self.sampler = sampler
        self.steering = steering
        self._token = None if token is None else token.encode()

    # -- authorisation -----------------------------------------------------------------------

    def authorised(self, request: Request) -> bool:
        if self._token is None:
            return True
        offered: list[str] = []
        auth = request.header("authorization")
        if auth is not None:
            scheme, _, credentials = auth.partition(" ")
            if scheme.lower() == "bearer":
                offered.append(credentials.strip())
        cookie = _cookie(request.header("cookie"), COOKIE)
        if cookie is not None:
            offered.append(cookie)
        # Constant-time comparison: the time taken tells nothing of the token.
        return any(hmac.compare_digest(t.encode(), self._token) for t in offered)

    def _token_login(self, request: Request) -> Reply | None:
        """``GET /?token=T``: check T, set it as an HttpOnly SameSite=Strict cookie and
        redirect to ``/`` so the token leaves the address bar and the history."""
        token = request.query.get("token")
        if token is None or self._token is None or request.method not in ("GET", "HEAD"):
            return None
        if not hmac.compare_digest(token.encode(), self._token):
            return error_reply(401, "wrong token", (("WWW-Authenticate", 'Bearer realm="tquic"'),))
        cookie = f"{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"
        return Reply(302, b"", None, (("Location", request.path or "/"), ("Set-Cookie", cookie)))

    def _cross_site(self, request: Request) -> Reply | None:
        """Refuse what a web page on another site could make a browser send here.

        A write needs Content-Type: application/json (checked with the body), which a
        page of another origin can only send after a CORS preflight that this server never
        approves; an Origin that is not this listener is refused outright.  Without a token
        (a Unix socket reached through an SSH forward) a browser request must also name
        the listener by address (DNS rebinding: a hostile name resolved to 127.0.0.1)."""
        host = request.header("host") or ""
        origin = request.header("origin")
        if origin is not None and origin != "null" and origin.split("://", 1)[-1] != host:
            return error_reply(403, f"cross-origin request from {origin} refused")
        browser = any(name.startswith("sec-fetch-") for name in request.headers)
        if self._token is None and browser and not _literal_host(host):
            return error_reply(403, f"open the dashboard by address (http://127.0.0.1:PORT/), "
                                    f"not as {host!r}")
        return None

    # -- routing ---------------------------------------------------------------------------

    async def handle(self, request: Request) -> Reply:
        refused = self._cross_site(request)
        if refused is not None:
            return refused
        login = self._token_login(request)
        if login is not None:
            return login
        if not self.authorised(request):
            if request.path in ("/", "/dashboard") and request.method in ("GET", "HEAD"):
                return Reply(401, _LOGIN_PAGE, "text/html; charset=utf-8")
            return error_reply(401, "unauthorised: send 'Authorization: Bearer TOKEN' "
                                    "(the daemon's --control-token)",
                               (("WWW-Authenticate", 'Bearer realm="tquic"'),))
        try:
            return await self._route(request)
        except ControlError as exc:
            return error_reply(exc.status, exc.message)
        except Exception as exc:  # a daemon bug must still give the caller an answer
            logger.exception("control: %s %s failed", request.method, request.path)
            return error_reply(500, f"internal error: {exc!r}")

    async def _route(self, request: Request) -> Reply:
        method, path = request.method, request.path.rstrip("/") or "/"
        if path in ("/", "/dashboard"):
            self._allow(method, ("GET", "HEAD"))
            return Reply(200, PAGE.encode(), "text/html; charset=utf-8", (
                ("Content-Security-Policy",
                 "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                 "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'"),
                ("Referrer-Policy", "no-referrer"), ("X-Frame-Options", "DENY")))
        if path in READS:
            self._allow(method, ("GET", "HEAD"))
            return self._read(path)
        parts = list(request.segments)
        if parts and not parts[-1]:
            parts.pop()  # a trailing slash
        if len(parts) in (2, 3) and parts[0] == "links" and all(parts):
            name = parts[1]
            if len(parts) == 2:
                if method in ("GET", "HEAD"):
                    return self._read_link(name)
                self._allow(method, ("GET", "HEAD", "PUT", "POST"))
                return await self._write(request, name, "set")
            if parts[2] in ("down", "up"):
                self._allow(method, ("POST",))
                return await self._write(request, name, parts[2])
        if path in ("/reopen", "/reload"):
            self._allow(method, ("POST",))
            return await self._write(request, None, path[1:])
        raise NotFound(f"no such endpoint {path}; see docs/control.md "
                       f"(GET {', '.join(READS)}, /links/NAME; PUT /links/NAME; "
                       f"POST /links/NAME/down|up, /reopen, /reload)")

    @staticmethod
    def _allow(method: str, allowed: tuple[str, ...]) -> None:
        if method not in allowed:
            raise _MethodNotAllowed(f"{method} is not allowed here; use {' or '.join(allowed)}")

    # -- reads -----------------------------------------------------------------------------

    def _read(self, path: str) -> Reply:
        sample = self.sampler.current()
        if path == "/live":
            return Reply(200, b"", "text/event-stream", stream=True)
        if path == "/metrics":
            from tquic.control.metrics import CONTENT_TYPE, render_metrics

            try:
                return Reply(200, render_metrics(sample), CONTENT_TYPE)
            except ImportError:
                return error_reply(503, "metrics need prometheus-client: "
                                        "pip install prometheus-client")
        value: Any
        if path == "/status":
            value = sample.status_json()
        elif path == "/links":
            value = sample.links_json()
        elif path == "/tunnel":
            value = {"seq": sample.seq, "tunnel": None if sample.tunnel is None
                     else sample.tunnel.to_json()}
        elif path == "/clients":
            value = {"seq": sample.seq, "clients": [c.to_json() for c in sample.clients]}
        elif path == "/config":
            value = {"settings": [s.to_json() for s in self.sampler.view.config()]}
        elif path == "/events":
            value = {"events": [e.to_json() for e in self.sampler.events]}
        else:  # /history: the dashboard's chart on load
            value = {"interval": self.sampler.interval, "samples": [
                {"seq": s.seq, "at": s.at,
                 "links": {name: [r.up, r.down] for name, r in s.rates.items()}}
                for s in self.sampler.history]}
        return json_reply(200, value)

    def _read_link(self, name: str) -> Reply:
        sample = self.sampler.current()
        link = sample.link(name)
        if link is None:
            raise NotFound(f"no link {name!r}; links: {_names(sample)}")
        return json_reply(200, {"seq": sample.seq, "link": sample.link_json(link)})

    # -- writes ----------------------------------------------------------------------------

    async def _write(self, request: Request, name: str | None, action: str) -> Reply:
        if self.steering is None:
            raise _MethodNotAllowed("this daemon is read-only: it takes no writes")
        ctype = (request.header("content-type") or "").split(";")[0].strip().lower()
        if ctype != JSON:  # also without a body: see _cross_site
            return error_reply(415, "send writes with Content-Type: application/json "
                                    "(an empty body or {} when there is nothing to say)")
        body = parse_body(request.body)
        steering = self.steering
        call: Callable[[], Awaitable[Sequence[str] | None]]
        if action == "set":
            change = parse_link_change(body)
            call = lambda: steering.set_link(name or "", change)  # noqa: E731
            what = _describe(change)
        elif action in ("down", "up"):
            parse_empty(body)
            call = (lambda: steering.link_down(name or "")) if action == "down" else (
                lambda: steering.link_up(name or ""))
            what = f"taken {action}"
        elif action == "reopen":
            name = parse_optional_link(body)
            call = lambda: steering.reopen_paths(name)  # noqa: E731
            what = "paths re-opened"
        else:
            parse_empty(body)
            call = steering.reload_config
            what = "configuration reloaded"
        if name is not None:
            sample = await self.sampler.sample_now()
            if sample.link(name) is None:
                raise NotFound(f"no link {name!r}; links: {_names(sample)}")
        result = await call()
        self.sampler.log("api", name or "", f"{name + ': ' if name else ''}{what} (API)")
        sample = await self.sampler.sample_now()
        answer: dict[str, Any] = {"ok": True, "seq": sample.seq}
        if action == "reopen" and result is not None:
            answer["reopened"] = list(result)
        if name is not None:
            link = sample.link(name)
            answer["link"] = None if link is None else sample.link_json(link)
        return json_reply(200, answer)


class _MethodNotAllowed(ControlError):
    status = 405


def _describe(change: LinkChange) -> str:
    parts = []
    if change.role is not None:
        parts.append(f"role {change.role}")
    if change.weight is not None:
        parts.append(f"weight {change.weight:g}")
    if change.cap is not None:
        parts.append(f"cap {change.cap}")
    if change.clear_cap:
        parts.append("no cap")
    return "set " + ", ".join(parts)


def _names(sample: Any) -> str:
    names = [link.name for link in sample.links]
    return ", ".join(names) if names else "(none)"


def _literal_host(host: str) -> bool:
    """``127.0.0.1:9180``, ``[::1]:9180``, ``localhost:9180``: an address, not a DNS name."""
    import ipaddress

    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _cookie(header: str | None, name: str) -> str | None:
    if not header:
        return None
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


_LOGIN_PAGE = b"""<!doctype html><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>tquic: token needed</title>
<body style="font:16px system-ui,sans-serif;margin:2em;max-width:40em">
<h1>Token needed</h1><p>This control listener is on TCP and needs its token. Open
<code>/?token=YOUR_TOKEN</code> (the daemon's <code>--control-token</code>) once; the
browser keeps it in a cookie for this site.</p>"""
