"""CONNECT-UDP (RFC 9298) as far as the lane needs it: the request target and the
HTTP Datagram payload.

This is the lane's seam to a shared CONNECT-UDP module: when ``tquic.h3``
grows one (client and server sessions), :mod:`udp_client` and
:mod:`udp_server` switch to it and this file goes.

- Request (§3.4): extended CONNECT, ``:protocol connect-udp``, ``:path`` from
  the default URI template ``/.well-known/masque/udp/{target_host}/{target_port}/``
  (§2, with ``:`` of an IPv6 literal percent-encoded), ``capsule-protocol: ?1``.
- Datagrams (§5): the HTTP Datagram payload is a Context ID (a varint) and,
  for Context ID 0, one whole UDP payload.  Datagrams with another Context ID
  are dropped (no extension negotiated them).
"""

from __future__ import annotations

from urllib.parse import quote, unquote

from tquic.bond.tcp_lane.targets import Target, TargetError, parse_authority
from tquic.h3.frames import pull_varint

CONNECT_UDP = "connect-udp"
WELL_KNOWN = "/.well-known/masque/udp/"


def udp_path(host: str, port: int) -> str:
    """The ``:path`` for ``host:port`` (RFC 9298 §2: every reserved character of the
    host, such as an IPv6 literal's colons, percent-encoded)."""
    return f"{WELL_KNOWN}{quote(host, safe='')}/{port}/"


def parse_udp_path(path: str) -> Target:
    """``:path`` → the target; TargetError 400 when it is not the default template."""
    if not path.startswith(WELL_KNOWN):
        raise TargetError(400, "http_request_error", f"CONNECT-UDP path {path!r} is not "
                          f"{WELL_KNOWN}{{host}}/{{port}}/")
    parts = path[len(WELL_KNOWN):].split("?", 1)[0].split("/")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2]):
        raise TargetError(400, "http_request_error", f"CONNECT-UDP path {path!r}: expected "
                          "{host}/{port}/")
    host = unquote(parts[0], errors="strict") if parts[0] else ""
    authority = f"[{host}]:{parts[1]}" if ":" in host else f"{host}:{parts[1]}"
    return parse_authority(authority)


def encode_payload(data: bytes) -> bytes:
    """The HTTP Datagram payload for one UDP payload: Context ID 0, then the bytes."""
    return b"\x00" + data


def decode_payload(datagram: bytes) -> bytes | None:
    """The UDP payload of an HTTP Datagram, or None (unknown Context ID, truncated)."""
    context, pos = pull_varint(datagram, 0)
    if context != 0:
        return None
    return datagram[pos:]
