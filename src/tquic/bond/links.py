"""The client's WAN links: sockets pinned to them, their paths, and the policy applied.

No link is the master.  :meth:`LinkManager.race` binds a socket on every link
that can be used now and starts one handshake from each at once; the first
to complete carries the tunnel, the others are closed (a dead first link
costs nothing).  Afterwards :meth:`LinkManager.tick` (twice a second, and at
once on any netlink change) keeps every link's path:

- a link written ``%IFACE`` follows the interface's address (DHCP): a new
  address gets a new socket and path;
- a link without a path that may carry traffic is opened (``add_path``) as
  soon as it is usable (operstate up, address present, route to the server:
  :func:`tquic.io.path_keeper.link_ready`), with exponential backoff after
  failed attempts; a dead link that comes back is re-opened this way;
- the policy's verdict (:mod:`tquic.bond.policy`) is applied with
  PATH_STATUS_BACKUP / _AVAILABLE and the weighted scheduler's weights; role
  ``never`` (or switched off) abandons the path.

Sockets are pinned with SO_BINDTODEVICE and a source address
(:class:`tquic.io.udp.UdpSocket`), so a default route into the tunnel never
captures the tunnel's own packets.  Every change is one log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tquic.bond.caps import CapStore
from tquic.bond.links_config import LinkConfig
from tquic.bond.policy import Decision, LinkPolicy, LinkView
from tquic.bond.status import LinkStatus
from tquic.io.multipath_client import LocalPath
from tquic.io.path_keeper import link_ready
from tquic.io.udp import UdpSocket
from tquic.paths.network_path import Address, NetworkPath

logger = logging.getLogger("tquic.bond")

_BACKOFF = (0.5, 1.0, 2.0, 4.0, 5.0)


@dataclass(slots=True)
class Link:
    """One link's live state (owned by the LinkManager)."""

    config: LinkConfig
    address: str | None = None
    sock: UdpSocket | None = None
    path_id: int | None = None
    validated: bool = False
    state: str = "down"
    reason: str = ""
    decision: Decision = field(default_factory=lambda: Decision("primary"))
    admin_down: bool = False
    failures: int = 0
    retry_at: float = 0.0
    stats: Any = None
    counted: int = 0  # bytes of the current path already counted against the cap
    loss: float = 0.0
    goodput: float = 0.0
    busy: bool = False
    prev: tuple[int, int, int, float] | None = None  # sent, lost, acked bytes, time


class LinkManager:
    def __init__(self, links: tuple[LinkConfig, ...], *, caps: CapStore, policy: LinkPolicy,
                 family: int, note: Callable[[str], None]) -> None:
        self.links = [Link(c) for c in links]
        self.caps = caps
        self.policy = policy
        self.family = family  # the server's IP version: links of the other are skipped
        self.note = note
        self.proto: Any = None
        self.endpoint: Any = None
        self.remote: Address | None = None
        self._loop = asyncio.get_running_loop()

    def find(self, name: str) -> Link:
        for link in self.links:
            if link.config.name == name:
                return link
        raise KeyError(name)

    # -- addresses and sockets ------------------------------------------------------------

    def resolve(self) -> None:
        """Fill each link's current address (interface-only links ask netlink; blocking)."""
        from tquic.bond import netlink

        for link in self.links:
            config = link.config
            if config.address is not None:
                link.address = config.address
                continue
            if config.interface is None:  # unreachable: a link has an address or interface
                continue
            try:
                found = netlink.interface_addresses(config.interface, self.family)
            except Exception:  # pyroute2 errors: treat as "no address yet"
                found = []
            link.address = found[0] if found else None

    def _bind(self, link: Link) -> UdpSocket | None:
        if link.address is None:
            return None
        if link.sock is not None and link.sock.local_address[0] == link.address:
            return link.sock
        try:
            return UdpSocket.bind(link.address, 0, device=link.config.interface)
        except OSError as exc:
            self._set(link, "down", f"cannot bind {link.config.spec}: {exc.strerror or exc}")
            return None

    def usable(self, link: Link) -> str | None:
        """None when ``link`` may carry a path now, else why not."""
        if link.decision.role == "never" or link.admin_down:
            return link.decision.reason or "role never"
        if link.address is None:
            return f"no IPv{self.family} address on {link.config.interface}"
        if ipaddress.ip_address(link.address).version != self.family:
            return f"address {link.address} is not IPv{self.family} like the server"
        if self.remote is None:
            return None
        return link_ready(LocalPath(link.address, link.config.interface), self.remote)

    # -- the handshake race ----------------------------------------------------------------

    def race_sockets(self, remote: Address) -> list[tuple[Link, UdpSocket]]:
        self.remote = remote
        out = []
        for link in self.links:
            why = self.usable(link)
            if why is not None:
                self._set(link, "disabled" if link.decision.role == "never" else "down", why)
                continue
            sock = self._bind(link)
            if sock is not None:
                out.append((link, sock))
        return out

    def attach(self, proto: Any, endpoint: Any, winner: Link,
               sockets: list[tuple[Link, UdpSocket]]) -> None:
        """The race is won: ``winner`` carries path 0; keep the others' sockets."""
        self.proto = proto
        self.endpoint = endpoint
        for link, sock in sockets:
            link.sock = sock
            link.path_id = None
            link.validated = False
        winner.path_id = 0
        winner.validated = True
        winner.failures = 0
        winner.counted = 0
        winner.prev = None
        self._set(winner, "up", "")
        proto.add_path_listener(self._on_event)

    def detach(self) -> None:
        if self.proto is not None:
            self.proto.remove_path_listener(self._on_event)
        self.proto = None
        self.endpoint = None
        for link in self.links:
            link.sock = None  # the endpoint closed them
            link.path_id = None
            link.validated = False
            self._set(link, "down", "tunnel down")

    # -- events and ticks -----------------------------------------------------------------

    def _set(self, link: Link, state: str, reason: str) -> None:
        if (link.state, link.reason) != (state, reason):
            link.state, link.reason = state, reason
            self.note(f"link {link.config.name} ({link.config.spec}): {state}"
                      f"{' - ' + reason if reason else ''}")

    def _by_path(self, path_id: int) -> Link | None:
        for link in self.links:
            if link.path_id == path_id:
                return link
        return None

    def _on_event(self, event: Any) -> None:
        from tquic.core import events as ev

        now = self._loop.time()
        link = self._by_path(getattr(event, "path_id", -1))
        if link is None:
            return
        if isinstance(event, ev.PathValidated):
            link.validated = True
            link.failures = 0
            self._set(link, "standby" if link.decision.role == "backup" else "up",
                      link.decision.reason)
        elif isinstance(event, ev.PathFailed):
            link.reason = event.reason
        elif isinstance(event, ev.PathAbandoned):
            link.path_id = None
            link.failures = link.failures + 1 if not link.validated else 0
            link.validated = False
            delay = _BACKOFF[min(link.failures, len(_BACKOFF) - 1)]
            link.retry_at = now + delay
            link.prev = None
            if link.decision.role != "never" and not link.admin_down:
                self._set(link, "down", f"path lost ({link.reason or 'abandoned'}); "
                                        f"re-opening when usable")

    def tick(self) -> None:
        """Measure, decide, and bring every link's path in line (called every 0.5 s)."""
        proto = self.proto
        if proto is None or proto.is_closed:
            return
        now = self._loop.time()
        engine = proto.quic
        stats = {st.path_id: st for st in engine.path_stats(now)}
        for link in self.links:
            link.stats = stats.get(link.path_id) if link.path_id is not None else None
            self._measure(link, now)
        views = [LinkView(lk.config.name, lk.validated and lk.stats is not None,
                          lk.stats.srtt if lk.stats is not None else 0.0, lk.loss, lk.goodput,
                          lk.busy, self._cap_reached(lk), lk.admin_down) for lk in self.links]
        decisions = self.policy.decide(views, {lk.config.name: lk.config for lk in self.links},
                                       now)
        for link in self.links:
            self._apply(link, decisions[link.config.name], now)

    def _measure(self, link: Link, now: float) -> None:
        st = link.stats
        if st is None:
            link.goodput = 0.0
            link.busy = False
            return
        total = st.bytes_sent + st.bytes_received
        self._count(link, total)
        acked = st.bytes_sent  # counted when sent; loss corrects below
        sample = (st.packets_sent, st.packets_lost, acked, now)
        if link.prev is not None:
            sent, lost, prev_bytes, then = link.prev
            dt = max(now - then, 1e-3)
            sent_delta = max(st.packets_sent - sent, 0)
            lost_delta = max(st.packets_lost - lost, 0)
            if sent_delta > 0:
                link.loss = 0.7 * link.loss + 0.3 * (lost_delta / sent_delta)
            link.goodput = 0.5 * link.goodput + 0.5 * max(acked - prev_bytes, 0) / dt
        link.prev = sample
        link.busy = st.bytes_in_flight >= 0.8 * st.cwnd

    def _count(self, link: Link, total: int) -> None:
        """Count the path's bytes since the last tick against the link's cap."""
        cap = link.config.cap
        delta = total - link.counted
        if delta > 0 and cap is not None:
            self.caps.add(link.config.name, cap, delta)
        link.counted = total

    def _cap_reached(self, link: Link) -> bool:
        cap = link.config.cap
        return cap is not None and self.caps.used(link.config.name, cap) >= cap.limit

    def _apply(self, link: Link, decision: Decision, now: float) -> None:
        engine = self.proto.quic
        previous = link.decision
        link.decision = decision
        changed = decision != previous
        if link.path_id is not None and decision.role == "never":
            if sum(1 for lk in self.links if lk.path_id is not None) > 1:
                with contextlib.suppress(Exception):
                    engine.abandon_path(link.path_id, now=now)
                    self.proto.flush()
                link.path_id = None
                link.validated = False
            self._set(link, "disabled", decision.reason or "role never")
            return
        if link.path_id is None:
            self._open(link, now)
            return
        if changed and link.validated:
            with contextlib.suppress(Exception):
                engine.set_path_status(link.path_id, decision.role == "backup", now)
                self.proto.flush()
            self._set(link, "standby" if decision.role == "backup" else "up", decision.reason)
        self._weight(link)

    def _weight(self, link: Link) -> None:
        scheduler = getattr(getattr(self.proto.quic, "paths", None), "scheduler", None)
        setter = getattr(scheduler, "set_weight", None)
        if setter is not None and link.path_id is not None:
            with contextlib.suppress(ValueError):
                setter(link.path_id, link.config.weight)

    def _open(self, link: Link, now: float) -> None:
        if now < link.retry_at:
            return
        why = self.usable(link)
        if why is not None:
            self._set(link, "disabled" if link.decision.role == "never" else "down", why)
            link.retry_at = now + 1.0
            return
        engine = self.proto.quic
        if not engine.can_open_path:
            link.retry_at = now + 0.25
            return
        sock = self._bind(link)
        if sock is None or self.remote is None:
            link.retry_at = now + 1.0
            return
        if sock is not link.sock:
            if link.sock is not None:
                with contextlib.suppress(Exception):
                    self.endpoint.remove_socket(link.sock)
            self.endpoint.add_socket(sock)
            link.sock = sock
        try:
            link.path_id = engine.add_path(NetworkPath(sock.local_address, self.remote), None,
                                           now, backup=link.decision.role == "backup")
        except Exception as exc:  # PathError: no path ID / CIDs yet, or closing
            logger.debug("link %s: add_path refused (%s)", link.config.name, exc)
            link.retry_at = now + 0.5
            return
        link.validated = False
        link.counted = 0
        link.prev = None
        self.proto.flush()
        self._set(link, "opening", f"path {link.path_id} from {sock.local_address[0]}")
        self._weight(link)

    def reopen(self, name: str | None = None) -> list[str]:
        """Open now the path of every link that is down (or of ``name`` only), without
        waiting out its backoff (the operator's ``POST /reopen``); the names re-opened.
        A link still unusable (no address, no route) stays down with its reason."""
        if self.proto is None or self.proto.is_closed:
            raise LookupError("the bond is not connected; it reconnects by itself")
        now = self._loop.time()
        chosen = [lk for lk in self.links if name is None or lk.config.name == name]
        if name is not None and chosen[0].path_id is not None:
            raise ValueError(f"link {name} is {chosen[0].state}: it has a path")
        if name is not None and chosen[0].admin_down:
            raise ValueError(f"link {name} is switched off by the operator; switch it on "
                             f"instead (tquic bond link {name} up)")
        if name is not None and chosen[0].decision.role == "never":
            raise ValueError(f"link {name} has role never; give it another role first")
        reopened = []
        for link in chosen:
            if link.path_id is not None or link.admin_down or link.decision.role == "never":
                continue
            link.failures = 0  # a fresh start: a new failure waits the shortest backoff
            link.retry_at = 0.0
            self._open(link, now)
            if link.state == "opening":  # _open gave it a path
                reopened.append(link.config.name)
        return reopened

    # -- status ---------------------------------------------------------------------------

    def rows(self) -> tuple[LinkStatus, ...]:
        out = []
        for link in self.links:
            st = link.stats
            cap = link.config.cap
            out.append(LinkStatus(
                name=link.config.name, spec=link.config.spec, state=link.state,
                role=link.config.role, effective_role=link.decision.role,
                reason=link.decision.reason or link.reason, weight=link.config.weight,
                path_id=link.path_id,
                local=(f"{link.sock.local_address[0]}:{link.sock.local_address[1]}"
                       if link.sock is not None else None),
                srtt_ms=round(st.srtt * 1000, 3) if st else 0.0,
                min_rtt_ms=round(st.min_rtt * 1000, 3) if st else 0.0,
                cwnd=st.cwnd if st else 0, bytes_sent=st.bytes_sent if st else 0,
                bytes_received=st.bytes_received if st else 0,
                packets_lost=st.packets_lost if st else 0, loss=round(link.loss, 5),
                goodput_bps=round(link.goodput * 8, 1),
                cap_bytes=cap.limit if cap else None,
                cap_used=self.caps.used(link.config.name, cap) if cap else 0,
                cap_period=cap.period if cap else None,
                packets_sent=st.packets_sent if st else 0,
                packets_retransmitted=st.packets_retransmitted if st else 0,
                ecn=st.ecn if st else "disabled"))
        return tuple(out)
