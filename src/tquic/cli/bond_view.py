"""The control plane over a bond daemon: ``tquic.bond.status.BondControl`` (what
``BondClient`` and ``BondServer`` implement, docs/bond.md) adapted to
``DaemonView`` and ``Steering``.

A bond client's links keep their names; a bond server shows each client's
paths as links named ``CLIENT.pathN`` (steering them is refused: steer the
client).  The daemon's own change lines (``BondStatus.log``) become events of
kind ``daemon`` in the event log.

It lives in cli/, the layer that uses both: control/ knows nothing of bond/, and
bond/ only exposes its ``BondControl`` interface.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

from tquic import __version__
from tquic.control.model import (
    ClientInfo,
    Conflict,
    DataCap,
    EndpointInfo,
    Histogram,
    LinkChange,
    LinkInfo,
    NotFound,
    Setting,
    StatusInfo,
    TunnelInfo,
)

__all__ = ["CONTROL_KEYS", "BondView", "bond_settings", "take_control_keys"]

# The control plane's keys of a bond config file (the flags --control, --control-token,
# --control-interval); the daemons' own config knows nothing of them.
CONTROL_KEYS = ("control", "control_token", "control_interval")

# Settings a SIGHUP (or POST /reload) applies in place; the rest need a restart
# (docs/bond.md, "reload").
RESTART_ONLY = frozenset({"server", "tun", "ca", "insecure", "token", "userspace", "listen",
                          "cert", "key", "pool", "clients", "nat", "max_clients", "socks",
                          "redirect", "state_dir", "workers"})
_SECRET = ("token", "key", "password")
_RANK = {"primary": 0, "backup": 1, "never": 2}


def _setting_value(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _setting_value(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_setting_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _setting_value(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def bond_settings(config: Any) -> list[Setting]:
    """Every field of a bond ``ClientConfig``/``ServerConfig`` with its current value
    (secrets as "(set)"), runtime-changeable unless a restart is needed to apply it."""
    out = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.name == "key" and isinstance(value, str):
            shown: Any = value  # a file name, not the key itself
        elif any(word in f.name for word in _SECRET):
            shown = None if value is None else "(set)"
        elif f.name == "clients":
            shown = [getattr(c, "name", "?") for c in value]
        else:
            shown = _setting_value(value)
        out.append(Setting(f.name, shown, "", f.name not in RESTART_ONLY))
    return out


def _interface(spec: str) -> str | None:
    _, sep, iface = spec.partition("%")
    return iface.split(",", 1)[0] or None if sep else None


def _link(row: Any, name: str, client: str = "") -> LinkInfo:
    cap = (DataCap(int(row.cap_bytes), row.cap_period or "month")
           if row.cap_bytes is not None else None)
    # Demoted: the policy uses the link less than its role says (not the moment after an
    # operator lowered the role, before the policy's next tick caught up).
    demoted = (row.reason or "demoted by policy") if _RANK.get(row.effective_role, 0) > _RANK.get(
        row.role, 0) else None
    return LinkInfo(
        name=name, state=row.state, role=row.role, weight=row.weight, client=client,
        interface=_interface(row.spec) if not client else None, local=row.local,
        remote=row.spec if client else None, path_id=row.path_id,
        srtt=row.srtt_ms / 1000 if row.srtt_ms else None,
        min_rtt=row.min_rtt_ms / 1000 if row.min_rtt_ms else None,
        cwnd=row.cwnd, bytes_sent=row.bytes_sent, bytes_received=row.bytes_received,
        packets_sent=row.packets_sent, packets_lost=row.packets_lost,
        packets_retransmitted=row.packets_retransmitted, ecn=row.ecn, data_used=row.cap_used if cap else (
            row.bytes_sent + row.bytes_received),
        data_cap=cap, demoted=demoted, reason=row.reason or None, recent_loss=row.loss)


def _histogram(reorder: Any) -> Histogram:
    from tquic.bond.reorder import DELAY_BUCKETS

    counts = list(reorder.delay_histogram)
    bounds = [*DELAY_BUCKETS, float("inf")]
    buckets = []
    cumulative = 0
    total = 0.0
    lower = 0.0
    for bound, count in zip(bounds, counts, strict=False):
        cumulative += count
        buckets.append((bound, cumulative))
        # The buffer keeps counts per bucket only: the sum is estimated at each bucket's
        # middle (the open bucket at its lower edge).
        total += count * (lower if bound == float("inf") else (lower + bound) / 2)
        lower = bound
    return Histogram(tuple(buckets), total, cumulative)


def _tunnel(tunnels: Sequence[Any]) -> TunnelInfo | None:
    if not tunnels:
        return None
    sums: dict[str, int] = {}
    for name in ("packets_in", "packets_out", "bytes_in", "bytes_out", "datagrams_dropped",
                 "too_big", "spoofed", "isolated"):
        sums[name] = sum(int(getattr(t, name)) for t in tunnels)
    reorders = [t.reorder for t in tunnels]
    histograms = [_histogram(r) for r in reorders]
    buckets = tuple((bound, sum(h.buckets[i][1] for h in histograms))
                    for i, (bound, _) in enumerate(histograms[0].buckets))
    fec_stats = [t.fec for t in tunnels if getattr(t, "fec", None) is not None]
    fec: dict[str, int] = {}
    if fec_stats:  # the FEC packet counters (tquic.bond.fec.stats; bytes stay out)
        total = sum(fec_stats[1:], fec_stats[0])
        fec = {k: int(v) for k, v in dataclasses.asdict(total).items()
               if not k.endswith("_bytes")}
    return TunnelInfo(
        packets_in=sums["packets_in"], packets_out=sums["packets_out"],
        bytes_in=sums["bytes_in"], bytes_out=sums["bytes_out"],
        drops={"queue_or_size": sums["datagrams_dropped"], "too_big": sums["too_big"],
               "spoofed_source": sums["spoofed"], "isolated": sums["isolated"]},
        reorder_held=sum(r.held for r in reorders), reorder_late=sum(r.late for r in reorders),
        reorder_lost=sum(r.lost for r in reorders),
        reorder_bound=max(r.bound for r in reorders),
        reorder_delay=Histogram(buckets, sum(h.total for h in histograms),
                                sum(h.count for h in histograms)), fec=fec)


class BondView:
    """DaemonView and Steering over a ``BondControl`` (``BondClient`` or ``BondServer``);
    ``config`` returns the daemon's current configuration object for ``GET /config``."""

    def __init__(self, daemon: Any, config: Callable[[], Any] | None = None) -> None:
        self._daemon = daemon
        self._config = config
        self._started: float | None = None

    # -- DaemonView ------------------------------------------------------------------------

    def _status(self) -> Any:
        return self._daemon.status()

    def status(self) -> StatusInfo:
        st = self._status()
        if self._started is None:
            self._started = time.time() - float(st.uptime)
        tunnel = st.tunnel
        detail: dict[str, Any] = {"connected": st.connected}
        if st.role == "server":
            detail["auth_failures"] = st.auth_failures
            workers = getattr(self._daemon, "workers", None)
            if callable(workers):  # --workers N (tquic.bond.server_workers.WorkerGroup)
                detail["workers"] = workers()
        lane = getattr(st, "lane", None)
        if lane is not None:  # the TCP lane's counters (tquic.bond.tcp_lane)
            detail["lane"] = _setting_value(lane)
        if tunnel is not None:
            detail.update(extensions=list(tunnel.extensions), mtu=tunnel.mtu,
                          routes=list(tunnel.routes))
        return StatusInfo(
            f"bond {st.role}", __version__, self._started,
            tunnel_address=tuple(tunnel.addresses) if tunnel is not None else (),
            peers=tuple(c.remote for c in st.clients), detail=detail, log=tuple(st.log))

    def links(self) -> list[LinkInfo]:
        st = self._status()
        if st.role != "server":
            return [_link(row, row.name) for row in st.links]
        return [_link(row, f"{c.name}.{row.name}", c.name) for c in st.clients
                for row in c.paths]

    def tunnel(self) -> TunnelInfo | None:
        st = self._status()
        if st.role == "server":
            return _tunnel([c.tunnel for c in st.clients])
        return _tunnel([st.tunnel] if st.tunnel is not None else [])

    def clients(self) -> list[ClientInfo]:
        st = self._status()
        now = time.time()
        return [ClientInfo(
            name=c.name, remote=c.remote, connected_at=now - float(c.connected_for),
            addresses=tuple(c.tunnel.addresses),
            paths=sum(1 for p in c.paths if p.state == "up"),
            bytes_sent=sum(p.bytes_sent for p in c.paths),
            bytes_received=sum(p.bytes_received for p in c.paths)) for c in st.clients]

    def endpoint(self) -> EndpointInfo | None:
        """A bond server's listener (its workers' added up); a bond client has none."""
        return EndpointInfo.total([
            EndpointInfo.of(e.stats, retry_active=e.retry_active,
                            handshakes_in_progress=e.handshakes_in_progress,
                            connections=e.connections, kernel_filter=e.kernel_filter)
            for e in self._status().endpoints])

    def config(self) -> list[Setting]:
        if self._config is None:
            return []
        return bond_settings(self._config())

    # -- Steering --------------------------------------------------------------------------

    def _call(self, method: Callable[..., None], *args: Any) -> None:
        from tquic.bond.status import SteeringError

        try:
            method(*args)
        except SteeringError as exc:
            message = str(exc)
            raise (NotFound if message.startswith("no link") else Conflict)(message) from None

    async def set_link(self, name: str, change: LinkChange) -> None:
        # Values arrive validated (tquic.control.values), so each call below succeeds or
        # fails on the first, before anything changed.
        if change.role is not None:
            self._call(self._daemon.set_role, name, change.role)
        if change.weight is not None:
            self._call(self._daemon.set_weight, name, change.weight)
        if change.cap is not None:
            self._call(self._daemon.set_cap, name, f"{change.cap.limit}B/{change.cap.period}")
        elif change.clear_cap:
            self._call(self._daemon.set_cap, name, None)

    async def link_down(self, name: str) -> None:
        self._call(self._daemon.link_down, name)

    async def link_up(self, name: str) -> None:
        self._call(self._daemon.link_up, name)

    async def reopen_paths(self, name: str | None = None) -> list[str]:
        """A bond client re-opens a failed link by itself, after a backoff; this opens
        every link that is down (or ``name``) now.  A server has nothing to re-open."""
        reopened: list[str] = []

        def reopen(link: str | None) -> None:
            reopened.extend(self._daemon.reopen(link))

        self._call(reopen, name)
        return reopened

    async def reload_config(self) -> None:
        from tquic.control.sampler import new_lines

        before = self._status().log
        self._call(self._daemon.reload)
        lines = new_lines(before, self._status().log)
        refused = [line for line in lines if line.startswith(("reload refused",
                                                              "reload: no config"))]
        if refused:
            raise Conflict(refused[-1])


def take_control_keys(values: dict[str, Any], args: Any) -> dict[str, Any]:
    """Move the control keys of a merged config (file + flags) into ``args`` (a flag given
    on the command line wins) and return the rest for the daemon's own validation."""
    from tquic.bond.links_config import BondConfigError

    for key in CONTROL_KEYS:
        if key not in values:
            continue
        value = values.pop(key)
        if key == "control_interval":
            if isinstance(value, bool) or not isinstance(value, int | float) or not (
                    0.05 <= value <= 60):
                raise BondConfigError(key, "seconds between samples, 0.05..60 (default 1)")
        elif not isinstance(value, str) or not value:
            raise BondConfigError(key, "a socket path or ADDR:PORT ('none': off)"
                                  if key == "control" else "the token, or @FILE")
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    return values
