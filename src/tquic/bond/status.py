"""What a bond daemon shows and what it can be told: the interface of the control plane.

``tquic.control`` (JSON API, Prometheus, dashboard, ``tquic bond status``)
reads a :class:`BondStatus` snapshot from :meth:`BondControl.status` and
steers through the other methods of :class:`BondControl`; both daemons
(``BondClient``, ``BondServer``) implement it.  Snapshots are frozen values,
safe to hand to another task or serialise (``as_dict``); nothing here exposes
the daemon's live objects.  docs/bond.md documents every field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Protocol

from tquic.bond.fec.stats import FecStats
from tquic.bond.reorder import ReorderStats
from tquic.io.endpoint_stats import EndpointStats

LINK_STATES = ("down", "opening", "up", "standby", "disabled")


@dataclass(frozen=True, slots=True)
class LinkStatus:
    """One WAN link of a client (or one path of a client connection, on the server)."""

    name: str
    spec: str  # ADDR%IFACE as configured
    state: str  # one of LINK_STATES
    role: str  # configured role: primary | backup | never
    effective_role: str  # after policy: primary | backup | never
    reason: str  # why effective_role differs from role, or why the link is down ("" if none)
    weight: float
    path_id: int | None
    local: str | None  # ADDR:PORT of the socket
    srtt_ms: float
    min_rtt_ms: float
    cwnd: int
    bytes_sent: int
    bytes_received: int
    packets_lost: int
    loss: float  # recent loss fraction
    goodput_bps: float  # recent acknowledged bits/s
    cap_bytes: int | None  # the data cap of the current period
    cap_used: int  # bytes sent + received in the current period
    cap_period: str | None
    packets_sent: int = 0
    # Packets whose frames were sent again after a loss (PathStats.packets_retransmitted).
    packets_retransmitted: int = 0
    # The path's ECN validation state (RFC 9000 §13.4.2, Appendix A.4): testing, unknown,
    # capable, failed; disabled when ECN is off or before the path exists.
    ecn: str = "disabled"


@dataclass(frozen=True, slots=True)
class TunnelStatus:
    """One CONNECT-IP tunnel's counters."""

    addresses: tuple[str, ...]  # assigned to the client
    routes: tuple[str, ...]
    extensions: tuple[str, ...]  # negotiated (e.g. "seq")
    mtu: int
    packets_out: int
    bytes_out: int
    packets_in: int
    bytes_in: int
    datagrams_dropped: int  # did not fit, or the tunnel's receive queue overflowed
    too_big: int  # answered with ICMP Packet Too Big
    spoofed: int  # server: dropped, inner source not assigned to the client
    isolated: int  # server: dropped, to another client it may not reach
    reorder: ReorderStats
    # FEC counters (tquic.bond.fec, docs/fec.md) when the "fec" extension was negotiated
    fec: FecStats | None = None


@dataclass(frozen=True, slots=True)
class ClientSessionStatus:
    """Server side: one connected client."""

    name: str
    remote: str  # the client's address of its first path
    connected_for: float  # seconds
    paths: tuple[LinkStatus, ...]
    tunnel: TunnelStatus


@dataclass(frozen=True, slots=True)
class EndpointStatus:
    """Server side: the QUIC endpoint that accepts the clients, and its defences."""

    stats: EndpointStats  # a copy of the endpoint's counters
    retry_active: bool  # new clients are answered with a Retry right now
    handshakes_in_progress: int
    connections: int
    kernel_filter: bool = False  # flooding peers are dropped in the kernel (tquic.io.peer_filter)

    @classmethod
    def of(cls, endpoint: Any) -> EndpointStatus:
        """A snapshot of a live ``tquic.io.endpoint.QuicEndpoint``."""
        return cls(endpoint.stats_snapshot(), bool(endpoint.retry_active),
                   int(endpoint.handshakes_in_progress), len(endpoint.connections),
                   bool(endpoint.kernel_filter_active))


@dataclass(frozen=True, slots=True)
class BondStatus:
    """A daemon's whole state at one instant."""

    role: str  # "client" or "server"
    uptime: float
    connected: bool
    links: tuple[LinkStatus, ...] = ()  # client
    tunnel: TunnelStatus | None = None  # client
    clients: tuple[ClientSessionStatus, ...] = ()  # server
    auth_failures: int = 0  # server: refused requests (401/403/429)
    log: tuple[str, ...] = ()  # the last change lines (newest last)
    # The TCP lane's counters (tquic.bond.tcp_lane): client, per listener ("socks",
    # "redirect"); server, ConnectRelayHandler.snapshot(); None when the lane is off.
    lane: dict[str, Any] | None = None
    # server: its listener's endpoint (with --workers N, one per worker that reported).
    endpoints: tuple[EndpointStatus, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        plain: dict[str, Any] = _plain(dataclasses.asdict(self))
        return plain


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class SteeringError(ValueError):
    """A steering call named a link that does not exist, or a bad value."""


class BondControl(Protocol):
    """Read and steer a running daemon (implemented by BondClient and BondServer).

    Link steering applies to a client's links (a server has none and raises
    SteeringError); ``reopen`` opens now the paths of links that are down (skipping
    their backoff) and returns their names; ``reload`` re-reads the config file as SIGHUP does.
    """

    def status(self) -> BondStatus: ...

    def set_role(self, link: str, role: str) -> None: ...

    def set_weight(self, link: str, weight: float) -> None: ...

    def set_cap(self, link: str, cap: str | None) -> None: ...

    def link_down(self, link: str) -> None: ...

    def link_up(self, link: str) -> None: ...

    def reopen(self, link: str | None = None) -> list[str]: ...

    def reload(self) -> None: ...
