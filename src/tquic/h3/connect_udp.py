"""CONNECT-UDP (RFC 9298): proxying UDP in HTTP — the URI template, the datagram payload,
and the client side.

Client::

    client = await connect_h3(proxy_host, proxy_port, config,
                              h3_config=H3Config(enable_datagrams=True))
    udp = await open_udp(client, "https://proxy:4433/.well-known/masque/udp/"
                                 "{target_host}/{target_port}/", "192.0.2.6", 53,
                         headers={"proxy-authorization": "Bearer T"})
    udp.send(query); answer = await udp.receive(); udp.close()

The server side (the relay and its target policy) is :mod:`tquic.h3.connect_udp_server`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from tquic.h3.api import ConnectRefused, H3Client
from tquic.h3.errors import H3UsageError
from tquic.h3.frames import pull_varint
from tquic.h3.messages import HeadersLike
from tquic.h3.tunnel import Tunnel, TunnelClosed

CONNECT_UDP = "connect-udp"  # the upgrade token (§3)
DEFAULT_PATH_TEMPLATE = "/.well-known/masque/udp/{target_host}/{target_port}/"  # §2
MAX_UDP_PAYLOAD = 65527  # §5: the largest UDP payload


class TemplateError(ValueError):
    """A URI template that breaks RFC 9298 §2 (the request is never sent)."""


class TargetError(ValueError):
    """A request's target the proxy refuses: ``status`` is the HTTP answer and
    ``error`` the Proxy-Status error type (RFC 9209 §2.3)."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail

    def proxy_status(self, proxy: str = "tquic") -> bytes:
        """The Proxy-Status field value (RFC 9209 §2)."""
        detail = self.detail.replace("\\", "\\\\").replace('"', '\\"')
        return f'{proxy}; error={self.error}; details="{detail}"'.encode("ascii", "replace")


# -- §2 URI templates ---------------------------------------------------------------------

_EXPRESSION = re.compile(r"\{([^{}]*)\}")
_VARNAME = re.compile(r"^[A-Za-z0-9_]+$")


def _check_template(template: str) -> None:
    """RFC 9298 §2's requirements on a template (the subset of RFC 6570 we expand)."""
    if not all(0x21 <= ord(ch) <= 0x7E for ch in template):
        raise TemplateError("the template must be printable ASCII without spaces (§2)")
    start = len("https://")
    authority_end = template.find("/", start)
    if not template.startswith("https://") or authority_end <= start:
        raise TemplateError("the template must be an absolute https:// URI with an "
                            "authority and a path starting with '/' (§2)")
    if "{" in template[:authority_end]:
        raise TemplateError("template variables must be in the path or query (§2)")
    names: set[str] = set()
    for expr in _EXPRESSION.findall(template):
        operator = expr[:1]
        if operator in "+#./;":
            raise TemplateError(f"operator {operator!r} is not allowed in {{{expr}}} (§2)")
        body = expr[1:] if operator in "?&" else expr
        for name in body.split(","):
            if not _VARNAME.match(name):
                raise TemplateError(f"unsupported template expression {{{expr}}}")
            names.add(name)
    if not {"target_host", "target_port"} <= names:
        raise TemplateError("the template must contain {target_host} and {target_port} (§2)")


def expand_template(template: str, host: str, port: int) -> str:
    """The request URL for ``host:port`` (RFC 6570 levels 1-3 as RFC 9298 §2 allows:
    ``{var}``, ``{?var,...}`` and ``{&var,...}``; an IPv6 literal's colons are
    percent-encoded, §3)."""
    _check_template(template)
    if not host or not 1 <= port <= 65535:
        raise TemplateError(f"bad target {host!r}:{port}: host must not be empty, port 1-65535")
    values = {"target_host": quote(host.strip("[]"), safe=""), "target_port": str(port)}

    def expand(match: re.Match[str]) -> str:
        expr = match.group(1)
        if expr[:1] in "?&":
            pairs = [f"{n}={values[n]}" for n in expr[1:].split(",") if n in values]
            return (expr[0] + "&".join(pairs)) if pairs else ""
        return values.get(expr, "")

    return _EXPRESSION.sub(expand, template)


def parse_default_path(path: str) -> tuple[str, int]:
    """The target of a request with the default template's ``:path`` (§2, §3):
    (host, port), host percent-decoded.  TargetError 400 for anything else."""
    prefix = DEFAULT_PATH_TEMPLATE.split("{", 1)[0]
    if not path.startswith(prefix):
        raise TargetError(400, "http_request_error",
                          f"path is not {DEFAULT_PATH_TEMPLATE}")
    parts = path[len(prefix):].split("?", 1)[0].split("/")
    if len(parts) != 3 or parts[2] or not parts[0] or not parts[1]:
        raise TargetError(400, "http_request_error", "expected {target_host}/{target_port}/")
    try:
        host = unquote(parts[0], errors="strict")
    except UnicodeDecodeError:
        raise TargetError(400, "http_request_error", "target_host is not UTF-8") from None
    if not parts[1].isdigit() or not 1 <= int(parts[1]) <= 65535:
        raise TargetError(400, "http_request_error", f"target_port {parts[1]!r} is not 1-65535")
    if "%" in host or not host.isascii() or any(c in host for c in "/?#[]@ "):
        raise TargetError(400, "http_request_error", f"target_host {host!r} is malformed")
    return host, int(parts[1])


# -- §5 datagrams -------------------------------------------------------------------------

def encode_udp_payload(data: bytes) -> bytes:
    """An HTTP Datagram payload carrying one UDP payload: Context ID 0, then the bytes."""
    return b"\x00" + data


def decode_udp_payload(datagram: bytes) -> bytes | None:
    """The UDP payload of an HTTP Datagram; None for another (unnegotiated) Context ID or
    a datagram too short to hold one (§4: dropped)."""
    context, pos = pull_varint(datagram, 0)
    if context != 0:
        return None
    return datagram[pos:]


# -- the client ---------------------------------------------------------------------------

class UdpProxyRefused(ConnectionError):
    """The proxy answered a non-2xx status (``proxy_status``: its Proxy-Status field)."""

    def __init__(self, status: int, proxy_status: str | None) -> None:
        detail = f" ({proxy_status})" if proxy_status else ""
        super().__init__(f"UDP proxy refused the request with status {status}{detail}")
        self.status = status
        self.proxy_status = proxy_status


@dataclass(slots=True)
class UdpCounters:
    sent: int = 0
    received: int = 0
    dropped: int = 0  # too large to send, foreign Context IDs


class UdpProxySession:
    """One CONNECT-UDP tunnel: ``send()`` UDP payloads to the target, ``await receive()``
    what it sends back.  Reusable by any UDP relay (SOCKS5 UDP ASSOCIATE, proxy-client)."""

    def __init__(self, tunnel: Tunnel, target: tuple[str, int]) -> None:
        self._tunnel = tunnel
        self.target = target
        self.counters = UdpCounters()
        self._reader = asyncio.ensure_future(self._drain_capsules())

    @property
    def closed(self) -> bool:
        return self._reader.done()

    def send(self, payload: bytes) -> bool:
        """Send one UDP payload now; False when it was dropped (too large for a QUIC
        DATAGRAM frame — UDP is unreliable, §5 — or the tunnel is gone)."""
        if len(payload) > MAX_UDP_PAYLOAD:
            self.counters.dropped += 1
            return False
        try:
            self._tunnel.send_datagram(encode_udp_payload(payload))
        except (H3UsageError, ValueError):
            self.counters.dropped += 1
            return False
        except TunnelClosed as exc:
            raise ConnectionError(f"CONNECT-UDP tunnel closed: {exc}") from None
        self.counters.sent += 1
        return True

    async def receive(self) -> bytes:
        """The next UDP payload from the target; ConnectionError once the tunnel closed."""
        while True:
            try:
                datagram = await self._tunnel.receive_datagram()
            except TunnelClosed as exc:
                raise ConnectionError(f"CONNECT-UDP tunnel closed: {exc}") from None
            payload = decode_udp_payload(datagram)
            if payload is None:
                self.counters.dropped += 1
                continue
            self.counters.received += 1
            return payload

    def close(self) -> None:
        """End the tunnel (FIN on the request stream; the proxy closes its socket)."""
        if not self._reader.done():
            self._reader.cancel()
        with contextlib.suppress(TunnelClosed, H3UsageError):
            self._tunnel.close()
        self._tunnel.on_terminated(0)  # wake receivers

    async def wait_closed(self) -> None:
        """Until the proxy ends the tunnel (FIN or reset of the request stream)."""
        await asyncio.shield(self._reader)

    async def _drain_capsules(self) -> None:
        # No capsule is defined for CONNECT-UDP; read them so the stream's end (the
        # proxy closing its socket, §3) is noticed, and skip them (RFC 9297 §3.2).
        try:
            while await self._tunnel.receive_capsule() is not None:
                pass
        except Exception:  # a reset or malformed stream ends the tunnel
            pass
        self._tunnel.on_terminated(0)


def proxy_template(proxy: str) -> str:
    """``proxy`` as a URI template: a full template is kept, ``https://host:port`` alone
    gets the default path (§2)."""
    if "{" in proxy:
        return proxy
    parts = urlsplit(proxy)
    if parts.scheme != "https" or not parts.netloc:
        raise TemplateError(f"proxy {proxy!r}: expected https://HOST:PORT[/template]")
    return f"https://{parts.netloc}{DEFAULT_PATH_TEMPLATE}"


async def open_udp(client: H3Client, proxy: str, host: str, port: int,
                   headers: HeadersLike | None = None) -> UdpProxySession:
    """Open a CONNECT-UDP tunnel to ``host:port`` through ``client``'s proxy.

    ``proxy``: a URI template (§2) or ``https://HOST:PORT`` for the default one.
    Raises TemplateError (nothing sent), UdpProxyRefused (non-2xx), ConnectionError.
    """
    url = expand_template(proxy_template(proxy), host, port)
    if not client.h3.config.enable_datagrams:
        raise H3UsageError("CONNECT-UDP needs HTTP Datagrams: H3Config(enable_datagrams=True)")
    try:
        tunnel = await client.connect(url, protocol=CONNECT_UDP, headers=headers)
    except ConnectRefused as exc:
        raise UdpProxyRefused(exc.response.status,
                              _header(exc.response.headers, b"proxy-status")) from None
    return UdpProxySession(tunnel, (host, port))


def _header(headers: Any, name: bytes) -> str | None:
    for key, value in headers:
        if key == name:
            return bytes(value).decode("latin-1")
    return None
