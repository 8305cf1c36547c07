"""What a daemon shows to its control plane and what the control plane may ask of it.

The control plane (JSON API, /metrics, dashboard, ``tquic bond status``) is
written against two small Protocols so that any daemon can be plugged in with
a thin adapter: ``DaemonView`` (read-only snapshots, cheap, called at most a
few times per second) and ``Steering`` (the writes: link role/weight/cap,
link down/up, re-open paths, reload the config).  The values are frozen
dataclasses; their ``to_json()`` is the API's wire form, so the field names
below are the JSON keys documented in docs/control.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

__all__ = [
    "ROLES",
    "ClientInfo",
    "Conflict",
    "ControlError",
    "DaemonView",
    "DataCap",
    "EndpointInfo",
    "Histogram",
    "Invalid",
    "LinkChange",
    "LinkInfo",
    "NotFound",
    "Setting",
    "StatusInfo",
    "Steering",
    "TunnelInfo",
]

# A link's role (docs/bond.md): primary links carry traffic; backup links only
# when no primary one works; never = kept closed.
ROLES = ("primary", "backup", "never")


class ControlError(Exception):
    """A write the daemon refuses; ``status`` is the HTTP status the API answers with."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ControlError):
    """No such link (or client)."""

    status = 404


class Conflict(ControlError):
    """The request is well formed but cannot be done in the daemon's current state
    (the link is already down, this daemon does not re-open paths, …)."""

    status = 409


class Invalid(ControlError):
    """A value is of the right type but not acceptable (role 'sometimes', weight -1)."""

    status = 422


@dataclass(frozen=True, slots=True)
class DataCap:
    """A data cap: ``limit`` bytes per ``period`` (day, week or month)."""

    limit: int
    period: str = "month"

    def __str__(self) -> str:
        return f"{_human_bytes(self.limit)}/{self.period}"


def _human_bytes(n: int) -> str:
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if n >= size and n % (size // 1000 or 1) == 0:
            value = n / size
            return f"{value:g}{unit}"
    return f"{n}B"


@dataclass(frozen=True, slots=True)
class LinkChange:
    """One write to a link: each field None = leave as it is; ``clear_cap`` removes the cap."""

    role: str | None = None
    weight: float | None = None
    cap: DataCap | None = None
    clear_cap: bool = False

    def is_empty(self) -> bool:
        return self.role is None and self.weight is None and self.cap is None and (
            not self.clear_cap)


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """One link (a bond client's WAN link) or one path (a server's view of a client's link).

    Counters are cumulative since the daemon started; RTTs in seconds (None before
    the first sample); ``state`` is one of up, validating, down, failed, disabled.
    """

    name: str
    state: str
    role: str = "primary"
    weight: float = 1.0
    client: str = ""  # on a server: the client this path belongs to
    interface: str | None = None
    local: str | None = None
    remote: str | None = None
    path_id: int | None = None
    srtt: float | None = None
    min_rtt: float | None = None
    cwnd: int = 0
    bytes_in_flight: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    packets_sent: int = 0
    packets_lost: int = 0
    packets_retransmitted: int = 0
    ecn: str = "disabled"
    data_used: int = 0
    data_cap: DataCap | None = None
    demoted: str | None = None  # why the daemon demoted it (cut-off, cap reached, …)
    reason: str | None = None  # why it is in its state (down: why; demoted: why)
    # The daemon's own loss estimate, used when packets_sent is not counted.
    recent_loss: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "state": self.state, "role": self.role, "weight": self.weight,
            "client": self.client, "interface": self.interface, "local": self.local,
            "remote": self.remote, "path_id": self.path_id, "srtt": self.srtt,
            "min_rtt": self.min_rtt, "cwnd": self.cwnd, "bytes_in_flight": self.bytes_in_flight,
            "bytes_sent": self.bytes_sent, "bytes_received": self.bytes_received,
            "packets_sent": self.packets_sent, "packets_lost": self.packets_lost,
            "packets_retransmitted": self.packets_retransmitted, "ecn": self.ecn,
            "data_used": self.data_used,
            "data_cap": None if self.data_cap is None else {
                "limit": self.data_cap.limit, "period": self.data_cap.period,
                "text": str(self.data_cap)},
            "demoted": self.demoted, "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Histogram:
    """A cumulative histogram: ``buckets`` are (upper bound, count of values <= it)
    pairs in increasing order, the last bound being +inf."""

    buckets: tuple[tuple[float, int], ...] = ()
    total: float = 0.0  # sum of the observed values
    count: int = 0

    def quantile(self, q: float) -> float | None:
        """Upper bound of the bucket holding the q-quantile (None when empty)."""
        if self.count == 0:
            return None
        rank = q * self.count
        for bound, cumulative in self.buckets:
            if cumulative >= rank:
                return bound
        return self.buckets[-1][0] if self.buckets else None


@dataclass(frozen=True, slots=True)
class TunnelInfo:
    """The tunnel's counters: packets and bytes each way, drops by cause, the reorder
    buffer (packets held, the delay it added) and FEC when it exists."""

    packets_in: int = 0  # from the tunnel's peer, written to the TUN device
    packets_out: int = 0  # read from the TUN device, sent to the peer
    bytes_in: int = 0
    bytes_out: int = 0
    drops: Mapping[str, int] = field(default_factory=dict)
    reorder_held: int = 0  # packets the reorder buffer held back
    reorder_late: int = 0  # arrived after their gap was given up (released at once)
    reorder_lost: int = 0  # gaps given up after the wait bound
    reorder_bound: float | None = None  # the current wait bound (s); None = no buffer
    reorder_delay: Histogram = field(default_factory=Histogram)
    fec: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        delay = self.reorder_delay
        return {
            "packets_in": self.packets_in, "packets_out": self.packets_out,
            "bytes_in": self.bytes_in, "bytes_out": self.bytes_out,
            "drops": dict(self.drops),
            "reorder": {
                "held": self.reorder_held, "late": self.reorder_late,
                "lost": self.reorder_lost, "bound": self.reorder_bound,
                "delay_count": delay.count, "delay_sum": delay.total,
                "delay_p50": delay.quantile(0.5), "delay_p99": delay.quantile(0.99),
                "delay_buckets": [[_bound_json(b), c] for b, c in delay.buckets],
            },
            "fec": dict(self.fec),
        }


def _bound_json(bound: float) -> float | str:
    return "+Inf" if bound == float("inf") else bound


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """One client of a server daemon."""

    name: str
    remote: str
    connected_at: float  # seconds since the epoch
    addresses: tuple[str, ...] = ()  # tunnel addresses assigned to it
    paths: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    detail: Mapping[str, Any] = field(default_factory=dict)  # alpn, version, …

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "remote": self.remote, "connected_at": self.connected_at,
                "addresses": list(self.addresses), "paths": self.paths,
                "bytes_sent": self.bytes_sent, "bytes_received": self.bytes_received,
                **dict(self.detail)}


@dataclass(frozen=True, slots=True)
class EndpointInfo:
    """A server's QUIC endpoint: what it did outside its connections and its defences
    (RFC 9000 §8.1 address validation, §21 security considerations).

    ``events`` are the ``tquic.io.endpoint_stats.EndpointStats`` counters by field name
    (datagrams_received, retries_sent, peers_blocked, …), cumulative since the endpoint
    started; the rest is its state now.
    """

    events: Mapping[str, int] = field(default_factory=dict)
    retry_active: bool = False  # new clients are answered with a Retry right now
    handshakes_in_progress: int = 0
    connections: int = 0
    kernel_filter: bool = False  # flooding peers are dropped in the kernel (eBPF), not by us

    @classmethod
    def of(cls, stats: Any, *, retry_active: bool, handshakes_in_progress: int,
           connections: int, kernel_filter: bool = False) -> EndpointInfo:
        """From an ``EndpointStats`` (any dataclass of int counters) and the endpoint's
        state; a new counter added to EndpointStats shows up without a change here."""
        return cls({f.name: int(getattr(stats, f.name)) for f in fields(stats)},
                   bool(retry_active), int(handshakes_in_progress), int(connections),
                   bool(kernel_filter))

    @classmethod
    def of_endpoint(cls, endpoint: Any) -> EndpointInfo:
        """From a live ``tquic.io.endpoint.QuicEndpoint`` (its public attributes only)."""
        return cls.of(endpoint.stats_snapshot(), retry_active=endpoint.retry_active,
                      handshakes_in_progress=endpoint.handshakes_in_progress,
                      connections=len(endpoint.connections),
                      kernel_filter=endpoint.kernel_filter_active)

    @classmethod
    def total(cls, parts: Sequence[EndpointInfo]) -> EndpointInfo | None:
        """Several endpoints as one (the workers of ``--workers N``): counters and
        gauges added up, Retry on when any of them has it on, the kernel filter on when
        all of them have it; None for none."""
        if not parts:
            return None
        events: dict[str, int] = {}
        for part in parts:
            for name, count in part.events.items():
                events[name] = events.get(name, 0) + count
        return cls(events, any(p.retry_active for p in parts),
                   sum(p.handshakes_in_progress for p in parts),
                   sum(p.connections for p in parts), all(p.kernel_filter for p in parts))

    def to_json(self) -> dict[str, Any]:
        return {"retry_active": self.retry_active,
                "handshakes_in_progress": self.handshakes_in_progress,
                "connections": self.connections, "kernel_filter": self.kernel_filter,
                "events": dict(self.events)}


@dataclass(frozen=True, slots=True)
class StatusInfo:
    """What the daemon is and how long it has been up."""

    daemon: str  # "bond client", "bond server", "server"
    version: str
    started_at: float  # seconds since the epoch
    tunnel_address: tuple[str, ...] = ()
    peers: tuple[str, ...] = ()
    detail: Mapping[str, Any] = field(default_factory=dict)
    log: tuple[str, ...] = ()  # the daemon's own recent change lines, newest last


@dataclass(frozen=True, slots=True)
class Setting:
    """One runtime setting (the sysctl analogue): its current value and whether a
    reload or a write can change it without a restart."""

    name: str
    value: Any
    description: str = ""
    runtime: bool = False  # changeable without a restart

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "description": self.description,
                "runtime": self.runtime}


class DaemonView(Protocol):
    """Read-only snapshots of a running daemon (each call returns fresh values)."""

    def status(self) -> StatusInfo: ...

    def links(self) -> Sequence[LinkInfo]: ...

    def tunnel(self) -> TunnelInfo | None: ...  # None: this daemon has no tunnel

    def clients(self) -> Sequence[ClientInfo]: ...

    def endpoint(self) -> EndpointInfo | None: ...  # None: this daemon serves no QUIC endpoint

    def config(self) -> Sequence[Setting]: ...


class Steering(Protocol):
    """The writes.  Each raises NotFound, Conflict or Invalid (never anything else for
    a request it refuses) and changes nothing when it raises."""

    async def set_link(self, name: str, change: LinkChange) -> None: ...

    async def link_down(self, name: str) -> None: ...

    async def link_up(self, name: str) -> None: ...

    # The links whose paths it re-opened (None: the daemon does not say).
    async def reopen_paths(self, name: str | None = None) -> Sequence[str] | None: ...

    async def reload_config(self) -> None: ...
