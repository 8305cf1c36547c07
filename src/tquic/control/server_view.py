"""``tquic server --control``: the control plane's view of a QUIC server's live connections.

Each connection is a client (``c1``, ``c2``, … in the order they were first
seen); each of its paths is a link named ``c1.p0``, ``c1.p1``, … with the
engine's own per-path numbers (``QuicConnection.path_stats``).  Steering maps
to what a server can do to a path (draft-ietf-quic-multipath): ``role
backup``/``primary`` sends PATH_STATUS_BACKUP/AVAILABLE (and the server's
scheduler follows its own signal: a backup path carries data only when no
available path is left); ``down`` abandons the path with PATH_ABANDON.
Opening paths is the client's job, so ``up``, ``reopen`` and the bond-only
settings (weight, cap) are refused with 409.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import weakref
from collections.abc import Sequence
from typing import Any

from tquic import __version__
from tquic.control.model import (
    ClientInfo,
    Conflict,
    EndpointInfo,
    LinkChange,
    LinkInfo,
    NotFound,
    Setting,
    StatusInfo,
    TunnelInfo,
)

__all__ = ["ServerView"]

_STATES = {"validated": "up", "validating": "validating", "failed": "failed",
           "abandoned": "abandoned"}


def _address(addr: Any) -> str | None:
    if not addr:
        return None
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


class ServerView:
    """DaemonView and Steering over a running ``tquic.io.api.QuicServer``."""

    def __init__(self, server: Any, settings: Sequence[Setting] = ()) -> None:
        self._server = server
        self._settings = tuple(settings)
        self._started = time.time()
        self._ids: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
        self._counter = itertools.count(1)

    # -- the connections -------------------------------------------------------------------

    def _name(self, proto: Any) -> str:
        name = self._ids.get(proto)
        if name is None:
            name = f"c{next(self._counter)}"
            self._ids[proto] = name
        return name

    def _live(self) -> list[tuple[str, Any]]:
        conns = [p for p in self._server.connections if not p.is_closed]
        # Name new connections in the order they started, so c1 is the oldest.
        for proto in sorted(conns, key=lambda p: p.started_at):
            self._name(proto)
        return sorted(((self._name(p), p) for p in conns), key=lambda item: int(item[0][1:]))

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    def _paths(self, proto: Any) -> list[Any]:
        try:
            return list(proto.quic.path_stats(self._now()))
        except RuntimeError:  # no running loop (never inside the daemon)
            return list(proto.quic.path_stats(time.monotonic()))

    # -- DaemonView ------------------------------------------------------------------------

    def status(self) -> StatusInfo:
        live = self._live()
        return StatusInfo("server", __version__, self._started,
                          peers=tuple(_address(p.remote_address) or "" for _, p in live),
                          detail={"listen": _address(self._server.local_address)})

    def links(self) -> list[LinkInfo]:
        out: list[LinkInfo] = []
        for client, proto in self._live():
            for s in self._paths(proto):
                out.append(LinkInfo(
                    name=f"{client}.p{s.path_id}", state=_STATES.get(s.state, s.state),
                    role="backup" if s.status == "backup" else "primary", client=client,
                    local=_address(s.network_path.local),
                    remote=_address(s.network_path.remote), path_id=s.path_id,
                    srtt=s.srtt if s.state != "validating" else None,
                    min_rtt=s.min_rtt if s.min_rtt and s.min_rtt != float("inf") else None,
                    cwnd=s.cwnd, bytes_in_flight=s.bytes_in_flight, bytes_sent=s.bytes_sent,
                    bytes_received=s.bytes_received, packets_sent=s.packets_sent,
                    packets_lost=s.packets_lost, packets_retransmitted=s.packets_retransmitted,
                    ecn=s.ecn,
                    data_used=s.bytes_sent + s.bytes_received))
        return out

    def tunnel(self) -> TunnelInfo | None:
        return None

    def clients(self) -> list[ClientInfo]:
        out = []
        wall = time.time()
        for client, proto in self._live():
            paths = self._paths(proto)
            age = max(0.0, self._loop_now(proto) - proto.started_at)
            out.append(ClientInfo(
                name=client, remote=_address(proto.remote_address) or "",
                connected_at=wall - age,
                paths=sum(1 for s in paths if s.state in ("validated", "validating")),
                bytes_sent=sum(s.bytes_sent for s in paths),
                bytes_received=sum(s.bytes_received for s in paths),
                detail={"alpn": proto.alpn_protocol}))
        return out

    def endpoint(self) -> EndpointInfo:
        """The listener's defence counters and state (Retry, handshakes, blocked peers)."""
        return EndpointInfo.of_endpoint(self._server.endpoint)

    @staticmethod
    def _loop_now(proto: Any) -> float:
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:
            return float(proto.started_at)

    def config(self) -> list[Setting]:
        return list(self._settings)

    # -- Steering --------------------------------------------------------------------------

    def _find(self, name: str) -> tuple[Any, Any]:
        client, sep, path = name.partition(".p")
        if sep and path.isdigit():
            for cname, proto in self._live():
                if cname == client:
                    for s in self._paths(proto):
                        if s.path_id == int(path):
                            return proto, s
        raise NotFound(f"no path {name!r} (names are CLIENT.pPATH_ID, e.g. c1.p0)")

    async def set_link(self, name: str, change: LinkChange) -> None:
        proto, stats = self._find(name)
        if change.weight is not None or change.cap is not None or change.clear_cap:
            raise Conflict("tquic server has no per-path weight or data cap: those are link "
                           "settings of a bond client ('tquic bond link')")
        if change.role == "never":
            raise Conflict("a server cannot forbid a client's path; take it down instead")
        if change.role is None:
            return
        if stats.state != "validated":
            raise Conflict(f"path {name} is {_STATES.get(stats.state, stats.state)}: only an "
                           f"open path takes a role")
        from tquic.core.multipath import PathError

        try:
            proto.quic.set_path_status(stats.path_id, change.role == "backup", self._now())
        except PathError as exc:
            raise Conflict(f"cannot set the role of {name}: {exc}") from None
        proto.flush()  # send PATH_STATUS_* now

    async def link_down(self, name: str) -> None:
        proto, stats = self._find(name)
        if stats.state in ("abandoned", "failed"):
            raise Conflict(f"path {name} is already {stats.state}")
        open_paths = [s for s in self._paths(proto) if s.state in ("validated", "validating")]
        if len(open_paths) <= 1:
            raise Conflict(f"{name} is the connection's last open path: abandoning it would "
                           f"close the connection")
        from tquic.core.multipath import PathError

        try:
            proto.quic.abandon_path(stats.path_id, now=self._now())
        except PathError as exc:
            raise Conflict(f"cannot abandon {name}: {exc}") from None
        proto.flush()  # send PATH_ABANDON now

    async def link_up(self, name: str) -> None:
        self._find(name)
        raise Conflict("a server cannot open a path: the client re-opens its links")

    async def reopen_paths(self, name: str | None = None) -> None:
        if name is not None:
            self._find(name)
        raise Conflict("a server does not open paths: its clients re-open them")

    async def reload_config(self) -> None:
        raise Conflict("tquic server has no configuration file to reload; restart it")
