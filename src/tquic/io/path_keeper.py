"""Keep a multipath client's paths: re-open the path of a link that comes back.

The engine declares a path failed (PTOs with no ACK on it while another path is
fine, or a failed validation) and abandons it (draft-ietf-quic-multipath §"Path
Close"); path IDs are never reused, so using the link again means opening a
*new* path from the same local address (§"Path Initiation and Validation").
This module is the policy for that, in one place: for every local path the
user asked for (a ``--path`` spec, or a :class:`LocalPath` given to the API) it
keeps the socket and, while the spec has no open path,

- waits with exponential backoff (:class:`ReopenPolicy`: 0.5 s doubling to 5 s
  by default) between attempts that cost packets: an attempt whose validation
  fails counts as a failure, a path that was validated and later failed starts
  the backoff afresh;
- before each attempt checks the link locally, which costs nothing on the
  wire: the interface's ``operstate`` (``/sys/class/net/IFACE/operstate``), and
  a throw-away UDP socket bound like the path's (address, interface) and
  connected to the server, i.e. the kernel's route lookup.  A link that is down,
  an address that is gone (EADDRNOTAVAIL) or no route (ENETUNREACH) is checked
  again every ``check_interval`` and the attempt made at once when it is back;
  this is logged once per outage at info level, never as a traceback;
- needs a path ID with connection IDs from both sides (``can_open_path``): the
  engine gives the peer one more path ID (MAX_PATH_ID) for each path it
  forgets after the 3-PTO retention, and the peer does the same, so a link may
  rejoin any number of times; while none is free it says so once with
  PATHS_BLOCKED / PATH_CIDS_BLOCKED (what ``add_path`` sends on refusal).

Every path a keeper opened or adopted has a :class:`PathRecord` (its spec, path
ID, times, and the last figures of its path), so per-path statistics cover
paths that are gone as well as the re-opened ones (:meth:`PathKeeper.rows`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import ipaddress
import logging
import socket
from collections.abc import Sequence
from typing import Any

from tquic.core import events as ev
from tquic.core.multipath import PathError
from tquic.io.multipath_client import LocalPath
from tquic.io.protocol import QuicConnectionProtocol
from tquic.io.udp import SO_BINDTODEVICE, UdpSocket
from tquic.paths.network_path import Address, NetworkPath
from tquic.wire.errors import PathAbandonCode

__all__ = ["PathKeeper", "PathRecord", "ReopenPolicy", "link_ready"]

logger = logging.getLogger("tquic.io.paths")

# operstate values (Documentation/networking/operstates.rst) of a link that cannot carry
# packets; "unknown" (loopback, many virtual devices) and "up" (and "dormant") may.
_DOWN_STATES = frozenset({"down", "lowerlayerdown", "notpresent"})


@dataclasses.dataclass(frozen=True, slots=True)
class ReopenPolicy:
    """When to re-open a failed path (``enabled=False``: never; paths stay gone)."""

    enabled: bool = True
    initial_delay: float = 0.5  # seconds after a failure before the first attempt
    max_delay: float = 5.0  # the backoff doubles up to this
    factor: float = 2.0
    check_interval: float = 0.25  # how often a down link is checked (locally, no packets)

    def __post_init__(self) -> None:
        if not self.initial_delay > 0:
            raise ValueError(f"initial_delay: must be > 0 seconds, got {self.initial_delay}")
        if not self.max_delay >= self.initial_delay:
            raise ValueError(f"max_delay: must be >= initial_delay ({self.initial_delay}), "
                             f"got {self.max_delay}")
        if not self.factor >= 1:
            raise ValueError(f"factor: must be >= 1, got {self.factor}")
        if not self.check_interval > 0:
            raise ValueError(f"check_interval: must be > 0 seconds, got {self.check_interval}")

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` attempts in a row failed (0: the first)."""
        return min(self.initial_delay * self.factor ** min(failures, 64), self.max_delay)


@dataclasses.dataclass(slots=True)
class PathRecord:
    """One path ID a keeper opened (or adopted): which local path it belongs to and how it
    went.  ``stats`` is the last :class:`~tquic.paths.manager.PathStats` seen of it."""

    path_id: int
    spec: LocalPath
    local: Address
    opened_at: float
    reopened: bool  # opened by the keeper after an earlier path of this spec was lost
    validated_at: float | None = None
    closed_at: float | None = None
    reason: str | None = None
    stats: Any = None


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET


def _operstate(device: str) -> str | None:
    try:
        with open(f"/sys/class/net/{device}/operstate", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return None  # not Linux, or no such interface (the bind below says which)


def link_ready(spec: LocalPath, remote: Address) -> str | None:
    """None when a path from ``spec`` to ``remote`` may work now, else why not.

    Local checks only, no packet is sent: the interface's operstate, then a UDP
    socket bound like the path's and connected to ``remote`` (bind fails with
    EADDRNOTAVAIL when the address is gone, connect with ENETUNREACH when the
    kernel has no route, e.g. the link went down and took its routes along).
    """
    if spec.device is not None:
        state = _operstate(spec.device)
        if state in _DOWN_STATES:
            return f"interface {spec.device} is {state}"
    try:
        sock = socket.socket(_family(spec.host), socket.SOCK_DGRAM)
    except OSError as exc:
        return f"no socket: {exc.strerror or exc}"
    try:
        if spec.device is not None:
            # Without the privilege the route check is the global one (the path's own
            # socket could not be pinned either).
            with contextlib.suppress(PermissionError):
                sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, spec.device.encode())
        sock.bind((spec.host, 0))
        sock.connect(remote)
    except OSError as exc:
        name = errno.errorcode.get(exc.errno or 0, "")
        return f"{exc.strerror or exc}{f' ({name})' if name else ''}"
    finally:
        sock.close()
    return None


@dataclasses.dataclass(slots=True)
class _Slot:
    """One local path the user asked for, and the path ID currently serving it."""

    spec: LocalPath
    sock: UdpSocket
    path_id: int | None = None
    failures: int = 0  # re-open attempts in a row that failed (the backoff exponent)
    validated: bool = False  # the current path ID was validated
    ever_opened: bool = False
    kept: bool = True  # False once the application abandoned it itself
    timer: asyncio.TimerHandle | None = None
    down_logged: bool = False
    blocked_signalled: bool = False


class PathKeeper:
    """Re-opens the paths of ``slots`` (one ``(LocalPath, socket)`` per link) whenever the
    engine loses one; ``path_ids[i]`` is the path already open for slot ``i`` (path 0 for
    the handshake's socket; None, or a shorter list, for a slot to open when possible).

    Attach it right after :func:`~tquic.io.multipath_client.open_extra_paths`; it stops
    by itself when the connection closes (or call :meth:`close`).
    """

    def __init__(self, proto: QuicConnectionProtocol,
                 slots: Sequence[tuple[LocalPath, UdpSocket]],
                 path_ids: Sequence[int | None] = (0,), *,
                 policy: ReopenPolicy | None = None) -> None:
        self.proto = proto
        self.policy = policy if policy is not None else ReopenPolicy()
        self.records: dict[int, PathRecord] = {}
        self.reopened = 0  # paths the keeper opened after a loss and saw validated
        self._loop = asyncio.get_running_loop()
        self._slots = [_Slot(spec, sock) for spec, sock in slots]
        self._closed = False
        now = self._loop.time()
        engine = proto.quic
        stats = {s.path_id: s for s in engine.path_stats(now)}
        for slot, path_id in zip(self._slots, path_ids, strict=False):
            if path_id is None:
                continue
            slot.path_id = path_id
            slot.ever_opened = True
            current = stats.get(path_id)
            slot.validated = current is not None and current.state == "validated"
            self.records[path_id] = PathRecord(path_id, slot.spec, slot.sock.local_address,
                                               now, False, now if slot.validated else None,
                                               stats=current)
        proto.add_path_listener(self._on_event)
        if getattr(engine, "multipath_enabled", False):
            for slot in self._slots:
                if slot.path_id is None:
                    self._schedule(slot, self.policy.initial_delay)

    # -- public ---------------------------------------------------------------------------

    @property
    def paths_open(self) -> int:
        """How many of the local paths have a validated path now."""
        return sum(1 for slot in self._slots if slot.path_id is not None and slot.validated)

    @property
    def paths_wanted(self) -> int:
        return len(self._slots)

    def close(self) -> None:
        """Stop re-opening (the connection's paths stay as they are)."""
        if self._closed:
            return
        self._closed = True
        self.proto.remove_path_listener(self._on_event)
        for slot in self._slots:
            if slot.timer is not None:
                slot.timer.cancel()
                slot.timer = None

    def rows(self) -> list[dict[str, Any]]:
        """One dict per path ID ever used (path order): the path's spec, interface, local
        address, state and counters (the last seen for a path the engine forgot)."""
        self._refresh_stats()
        out: list[dict[str, Any]] = []
        for path_id in sorted(self.records):
            rec = self.records[path_id]
            st = rec.stats
            state = st.state if st is not None else ("abandoned" if rec.closed_at else "?")
            row: dict[str, Any] = {
                "path_id": path_id, "path": str(rec.spec), "interface": rec.spec.device,
                "local": f"{rec.local[0]}:{rec.local[1]}", "state": state,
                "reopened": rec.reopened,
                "opened_at": round(rec.opened_at - self.proto.started_at, 3),
                "validated_at": (None if rec.validated_at is None
                                 else round(rec.validated_at - self.proto.started_at, 3)),
                "closed_at": (None if rec.closed_at is None
                              else round(rec.closed_at - self.proto.started_at, 3)),
                "reason": rec.reason,
                "bytes_sent": 0 if st is None else st.bytes_sent,
                "bytes_received": 0 if st is None else st.bytes_received,
                "srtt_ms": 0.0 if st is None else round(st.srtt * 1000, 3),
                "packets_lost": 0 if st is None else st.packets_lost,
            }
            out.append(row)
        return out

    # -- engine events --------------------------------------------------------------------

    def _slot_of(self, path_id: int) -> _Slot | None:
        for slot in self._slots:
            if slot.path_id == path_id:
                return slot
        return None

    def _refresh_stats(self) -> None:
        try:
            stats = self.proto.quic.path_stats(self._loop.time())
        except Exception:  # statistics must never break the transfer
            return
        for st in stats:
            rec = self.records.get(st.path_id)
            if rec is not None:
                rec.stats = st

    def _on_event(self, event: ev.Event) -> None:
        if self._closed:
            return
        now = self._loop.time()
        if isinstance(event, ev.PathValidated):
            slot = self._slot_of(event.path_id)
            rec = self.records.get(event.path_id)
            if slot is None or rec is None:
                return
            slot.validated = True
            slot.failures = 0
            if rec.validated_at is None:
                rec.validated_at = now
            if rec.reopened:
                self.reopened += 1
                logger.info("path %d from %s validated: the link is back", event.path_id,
                            slot.spec)
        elif isinstance(event, ev.PathFailed):
            rec = self.records.get(event.path_id)
            if rec is not None and rec.reason is None:
                rec.reason = event.reason
        elif isinstance(event, ev.PathAbandoned):
            self._on_abandoned(event, now)

    def _on_abandoned(self, event: ev.PathAbandoned, now: float) -> None:
        self._refresh_stats()
        rec = self.records.get(event.path_id)
        if rec is not None:
            rec.closed_at = now
            if rec.reason is None:
                try:
                    code = PathAbandonCode(event.error_code).name
                except ValueError:
                    code = f"error 0x{event.error_code:x}"
                rec.reason = (f"abandoned {'by the peer' if event.by_peer else 'locally'} "
                              f"({code})")
        slot = self._slot_of(event.path_id)
        if slot is None:
            return
        slot.path_id = None
        if (not event.by_peer and event.error_code == PathAbandonCode.APPLICATION_ABANDON_PATH):
            slot.kept = False  # the application closed it on purpose: leave it closed
            return
        if not self.policy.enabled or self.proto.is_closed:
            return
        if slot.validated:
            slot.failures = 0  # a path that worked: start the backoff afresh
        else:
            slot.failures += 1  # the re-opened path never validated: back off further
        slot.validated = False
        delay = self.policy.delay(slot.failures)
        logger.info("path %d from %s lost (%s); re-opening it in %.1f s", event.path_id,
                    slot.spec, rec.reason if rec is not None else "abandoned", delay)
        self._schedule(slot, delay)

    # -- re-opening -----------------------------------------------------------------------

    def _schedule(self, slot: _Slot, delay: float) -> None:
        if slot.timer is not None:
            slot.timer.cancel()
        slot.timer = self._loop.call_later(delay, self._attempt, slot)

    def _attempt(self, slot: _Slot) -> None:
        slot.timer = None
        proto = self.proto
        if self._closed or proto.is_closed or not slot.kept or slot.path_id is not None:
            return
        policy = self.policy
        remote = proto.network_path.remote
        why = link_ready(slot.spec, remote)
        if why is not None:
            if not slot.down_logged:
                slot.down_logged = True
                logger.info("path from %s: link not usable (%s); checking every %g s",
                            slot.spec, why, policy.check_interval)
            self._schedule(slot, policy.check_interval)
            return
        if slot.down_logged:
            slot.down_logged = False
            logger.info("path from %s: link is back; re-opening", slot.spec)
        engine = proto.quic
        if not engine.can_open_path:
            # No path ID with CIDs from both sides yet (they come as the peer forgets
            # the old path: MAX_PATH_ID).  Say so once (PATHS_BLOCKED/PATH_CIDS_BLOCKED).
            if not slot.blocked_signalled:
                slot.blocked_signalled = True
                try:
                    engine.add_path(NetworkPath(slot.sock.local_address, remote), None,
                                    self._loop.time())
                except PathError as exc:
                    logger.debug("path from %s: waiting for a path ID (%s)", slot.spec, exc)
                else:  # pragma: no cover - can_open_path said no; opened after all
                    proto.flush()
                    return
                proto.flush()
            self._schedule(slot, policy.check_interval)
            return
        slot.blocked_signalled = False
        now = self._loop.time()
        try:
            path_id: int = engine.add_path(NetworkPath(slot.sock.local_address, remote), None,
                                           now)
        except PathError as exc:  # the connection is closing, or no path ID after all
            logger.debug("path from %s: not opened (%s)", slot.spec, exc)
            proto.flush()
            self._schedule(slot, policy.check_interval)
            return
        slot.path_id = path_id
        slot.validated = False
        reopened = slot.ever_opened
        slot.ever_opened = True
        self.records[path_id] = PathRecord(path_id, slot.spec, slot.sock.local_address, now,
                                           reopened)
        logger.info("path %d from %s: %s (attempt %d)", path_id, slot.spec,
                    "re-opening" if reopened else "opening", slot.failures + 1)
        proto.flush()  # the PATH_CHALLENGE
