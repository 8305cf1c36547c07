"""The server's way to a CONNECT target: parse, resolve, check, connect — and the
errors, as HTTP statuses with a Proxy-Status (RFC 9209) that the client turns
back into SOCKS replies.

Proxy-Status error types used (RFC 9209 §2.3): ``destination_ip_prohibited``
(403), ``http_request_error`` (400, a bad authority), ``dns_error`` (502),
``dns_timeout`` (504), ``connection_refused`` (502), ``destination_ip_unroutable``
(502, no route to the network), ``destination_unavailable`` (502, host
unreachable), ``connection_timeout`` (504).
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from dataclasses import dataclass

from tquic.bond.tcp_lane.policy import IPAddress, TargetPolicy

PROXY_NAME = "tquic-bond"  # the proxy's name in Proxy-Status (RFC 9209 §2)


class TargetError(Exception):
    """The target cannot be reached: the HTTP status and RFC 9209 error type to answer."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail

    def proxy_status(self) -> bytes:
        return proxy_status_value(self.error, self.detail)


def proxy_status_value(error: str, detail: str) -> bytes:
    """``tquic-bond; error=connection_refused; details="..."`` (RFC 9209 §2, an
    sf-string: printable ASCII, with backslash and quote escaped)."""
    clean = "".join(c if " " <= c <= "~" else "?" for c in detail)[:200]
    quoted = clean.replace("\\", "\\\\").replace('"', '\\"')
    return f'{PROXY_NAME}; error={error}; details="{quoted}"'.encode("ascii")


def proxy_status_error(value: bytes) -> str | None:
    """The ``error`` parameter of a Proxy-Status value, or None."""
    text = value.decode("latin-1")
    for part in text.split(";")[1:]:
        key, sep, param = part.strip().partition("=")
        if sep and key == "error":
            return param.strip()
    return None


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed authority: a host name or IP literal, and a port."""

    host: str
    port: int

    @property
    def ip(self) -> IPAddress | None:
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None


def parse_authority(authority: str) -> Target:
    """``host:port`` / ``[v6]:port`` (RFC 9110 §7.2, authority-form); TargetError 400."""
    def bad(why: str) -> TargetError:
        return TargetError(400, "http_request_error", f"bad CONNECT authority {authority!r}: {why}")

    if authority.startswith("["):
        host, sep, rest = authority[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise bad("expected [IPv6]:port")
        port_text = rest[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise bad("not an IPv6 address in brackets") from None
    else:
        host, sep, port_text = authority.rpartition(":")
        if not sep or not host:
            raise bad("expected host:port")
        if ":" in host:
            raise bad("an IPv6 address must be in brackets")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise bad("the port must be 1..65535")
    if len(host) > 253 or any(c <= " " or c > "~" or c in "/?#@\\%" for c in host):
        raise bad("not a host name")
    return Target(host.rstrip(".").lower(), int(port_text))


async def resolve_checked(target: Target, policy: TargetPolicy, *,
                          kind: int = socket.SOCK_STREAM) -> list[IPAddress]:
    """Every address of ``target`` (its IP, or its name's addresses), each checked.

    One refused address refuses the whole name: a name that also points into a
    private network is not one to connect to (and no rebinding trick can pick
    which of its addresses is used later).
    """
    refusal = policy.port_refusal(target.port)
    if refusal is not None:
        raise TargetError(403, "destination_ip_prohibited", refusal)
    ip = target.ip
    if ip is not None:
        addresses: list[IPAddress] = [ip]
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(target.host, target.port, type=kind), policy.resolve_timeout)
        except TimeoutError:
            raise TargetError(504, "dns_timeout", f"resolving {target.host} timed out") from None
        except (OSError, UnicodeError) as exc:
            raise TargetError(502, "dns_error", f"cannot resolve {target.host}: {exc}") from None
        addresses = []
        for info in infos:
            found = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            if found not in addresses:
                addresses.append(found)
        if not addresses:
            raise TargetError(502, "dns_error", f"{target.host} has no address")
    for address in addresses:
        refusal = policy.address_refusal(address)
        if refusal is not None:
            raise TargetError(403, "destination_ip_prohibited", refusal)
    return addresses


def _classify(exc: BaseException, where: str) -> TargetError:
    if isinstance(exc, TimeoutError):
        return TargetError(504, "connection_timeout", f"connecting to {where} timed out")
    if isinstance(exc, ConnectionRefusedError):
        return TargetError(502, "connection_refused", f"{where} refused the connection")
    code = getattr(exc, "errno", None)
    if code == errno.ENETUNREACH:
        return TargetError(502, "destination_ip_unroutable", f"no route to {where}")
    return TargetError(502, "destination_unavailable", f"{where} is unreachable: {exc}")


async def open_checked(target: Target, policy: TargetPolicy
                       ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, IPAddress]:
    """Resolve, check, then connect to the checked addresses in turn (within the
    policy's connect timeout in all).  Raises TargetError."""
    addresses = await resolve_checked(target, policy)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + policy.connect_timeout
    errors: list[TargetError] = []
    for address in addresses:
        left = deadline - loop.time()
        if left <= 0:
            errors.append(_classify(TimeoutError(), target.host))
            break
        where = f"{address}:{target.port}"
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(str(address), target.port, limit=1 << 20), left)
        except (OSError, TimeoutError) as exc:
            errors.append(_classify(exc, where))
            continue
        return reader, writer, address
    # The most telling failure: a refusal means the host is there; then a timeout.
    for wanted in ("connection_refused", "connection_timeout"):
        for error in errors:
            if error.error == wanted:
                raise error
    raise errors[0]
