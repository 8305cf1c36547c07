"""A daemon stand-in for the control-plane tests: three links whose counters move on
every read, a tunnel, and steering that obeys (or refuses, as a bond would)."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

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

INF = float("inf")


@dataclass
class _Link:
    info: LinkInfo
    rate_up: float  # bytes per read
    rate_down: float


class FakeDaemon:
    """DaemonView and Steering at once.  Every ``links()`` call moves the counters of the
    links that carry traffic (up and primary, or backup when no primary is up)."""

    def __init__(self, daemon: str = "bond client", clients: int = 0) -> None:
        self.started = time.time() - 3725.0
        self.reads = 0
        self.reloads = 0
        self.reopened: list[str | None] = []
        self._links = {
            "lte": _Link(LinkInfo("lte", "up", "primary", interface="wwan0", local="10.64.0.2",
                                  remote="203.0.113.1:443", path_id=0, srtt=0.048,
                                  min_rtt=0.041, cwnd=120_000, ecn="capable",
                                  data_cap=DataCap(10 * 10**9)), 40_000, 400_000),
            "dsl": _Link(LinkInfo("dsl", "up", "primary", interface="eth1", local="192.0.2.10",
                                  remote="203.0.113.1:443", path_id=1, srtt=0.021,
                                  min_rtt=0.018, cwnd=240_000), 80_000, 900_000),
            "sat": _Link(LinkInfo("sat", "up", "backup", interface="eth2", local="198.51.100.7",
                                  remote="203.0.113.1:443", path_id=2, srtt=0.61,
                                  min_rtt=0.55, cwnd=60_000), 2_000, 20_000),
        }
        self._daemon = daemon
        self._clients = [ClientInfo(f"site{i}", f"192.0.2.{20 + i}:50000", self.started + i,
                                    (f"10.8.0.{i + 2}",), paths=2) for i in range(clients)]

    # -- DaemonView ------------------------------------------------------------------------

    def status(self) -> StatusInfo:
        return StatusInfo(self._daemon, "0.1.0", self.started, ("10.8.0.2",),
                          ("203.0.113.1:443",))

    def links(self) -> list[LinkInfo]:
        self.reads += 1
        carriers = [n for n, lk in self._links.items()
                    if lk.info.state == "up" and lk.info.role == "primary"]
        if not carriers:
            carriers = [n for n, lk in self._links.items()
                        if lk.info.state == "up" and lk.info.role == "backup"]
        for name in carriers:
            link = self._links[name]
            info = link.info
            wobble = 1 + 0.1 * ((self.reads % 7) - 3) / 3
            link.info = replace(
                info, bytes_sent=info.bytes_sent + int(link.rate_up * wobble),
                bytes_received=info.bytes_received + int(link.rate_down * wobble),
                packets_sent=info.packets_sent + int(link.rate_up / 1200) + 1,
                packets_lost=info.packets_lost + (1 if self.reads % 5 == 0 else 0),
                data_used=info.data_used + int((link.rate_up + link.rate_down) * wobble),
                srtt=(info.min_rtt or 0.02) * (1.1 + 0.2 * ((self.reads % 5) / 5)))
        return [lk.info for lk in self._links.values()]

    def tunnel(self) -> TunnelInfo | None:
        n = self.reads
        return TunnelInfo(packets_in=900 * n, packets_out=120 * n, bytes_in=1_200_000 * n,
                          bytes_out=120_000 * n, drops={"no_route": 3, "spoofed_source": n // 10},
                          reorder_held=40 * n, reorder_late=n // 20, reorder_lost=n // 30,
                          reorder_bound=0.012,
                          reorder_delay=Histogram(((0.001, 20 * n), (0.005, 35 * n),
                                                   (0.02, 39 * n), (INF, 40 * n)),
                                                  0.004 * 40 * n, 40 * n),
                          fec={"sources": 300 * n, "repairs_sent": 30 * n, "recovered": n})

    def clients(self) -> list[ClientInfo]:
        return list(self._clients)

    def endpoint(self) -> EndpointInfo | None:
        """A server's listener, Retry on, some peers blocked; a bond client has none."""
        if not self._daemon.endswith("server"):
            return None
        return EndpointInfo({"datagrams_received": 5000, "datagrams_dropped": 1200,
                             "retries_sent": 340, "peers_blocked": 7}, retry_active=True,
                            handshakes_in_progress=3, connections=len(self._clients),
                            kernel_filter=True)

    def config(self) -> list[Setting]:
        return [Setting("scheduler", "minrtt", "multipath scheduler", runtime=True),
                Setting("reorder.max_delay", 0.05, "longest hold (s)", runtime=True),
                Setting("listen", "0.0.0.0:443", "server address", runtime=False)]

    # -- Steering --------------------------------------------------------------------------

    def _get(self, name: str) -> _Link:
        if name not in self._links:
            raise NotFound(f"no link {name!r}")
        return self._links[name]

    async def set_link(self, name: str, change: LinkChange) -> None:
        link = self._get(name)
        info = link.info
        link.info = replace(
            info, role=change.role or info.role,
            weight=change.weight if change.weight is not None else info.weight,
            data_cap=None if change.clear_cap else (change.cap or info.data_cap))

    async def link_down(self, name: str) -> None:
        link = self._get(name)
        if link.info.state == "down":
            raise Conflict(f"link {name} is already down")
        link.info = replace(link.info, state="down", srtt=None)

    async def link_up(self, name: str) -> None:
        link = self._get(name)
        if link.info.state != "down":
            raise Conflict(f"link {name} is not down")
        link.info = replace(link.info, state="up", srtt=link.info.min_rtt)

    async def reopen_paths(self, name: str | None = None) -> None:
        if name is not None:
            self._get(name)
        self.reopened.append(name)

    async def reload_config(self) -> None:
        self.reloads += 1

    # -- test helpers ------------------------------------------------------------------------

    def demote(self, name: str, reason: str) -> None:
        link = self._get(name)
        link.info = replace(link.info, role="backup", demoted=reason)
