"""The 4-tuple a datagram travels on, as the sans-I/O engine sees it."""

from __future__ import annotations

from dataclasses import dataclass

Address = tuple[str, int]
"""(host, port) as asyncio and the socket module give it; IPv6 hosts without brackets."""


@dataclass(frozen=True, slots=True)
class NetworkPath:
    """Local and remote address of one datagram (RFC 9000 §9: a "path" is this 4-tuple).

    ``local`` may be ``("", 0)`` when the endpoint does not know or care which
    local address it used (a single unbound socket).
    """

    local: Address
    remote: Address
