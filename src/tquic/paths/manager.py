"""PathManager: the paths of one connection and the policy that runs them.

Everything that is *policy* lives here (DESIGN.md "Multipath is the normal
case"): which paths the scheduler may use (validated, not abandoned, not
failed, not suspect of being silent; backup paths only when no available path is
left, draft-ietf-quic-multipath §"Path Status Management"), when a path counts as
failed (PTO expiries with no ACK while another path is fine; paths/silence.py says
when one is suspect before that), and the frozen
``PathPolicy`` built from QuicConfiguration.  The protocol side (frames, CIDs,
PATH_ABANDON, retention) is in core/multipath.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tquic.paths.network_path import NetworkPath
from tquic.paths.path import Path, PathState
from tquic.paths.schedulers import Scheduler, create_scheduler
from tquic.paths.schedulers.extended import SchedulerHooks

if TYPE_CHECKING:
    from tquic.core.config import QuicConfiguration


@dataclass(frozen=True, slots=True)
class PathPolicy:
    """How a connection opens, uses and gives up paths.

    - ``max_path_id``: our initial_max_path_id (None: multipath not offered).
    - ``scheduler``: registered scheduler name (paths/schedulers).
    - ``failover_pto_count``: PTO expiries in a row without an ACK after which a
      path is declared failed while another path is fine (its data is reinjected
      at once and the path abandoned with PATH_UNSTABLE_OR_POOR).
    - ``suspect_silent_paths``: suspect a path before any PTO when its ACKs stop while
      another path's keep coming (paths/silence.py).
    - ``accept_paths``: server: accept paths the client opens.
    - ``backup_keepalive``: seconds between PINGs on an idle backup path, so it
      stays validated and its middlebox state warm (None: no keep-alive).
    - ``path_congestion_control``: per path ID overrides of the controller name.
    """

    max_path_id: int | None = None
    scheduler: str = "minrtt"
    failover_pto_count: int = 2
    suspect_silent_paths: bool = True
    accept_paths: bool = True
    backup_keepalive: float | None = 5.0
    path_congestion_control: tuple[tuple[int, str], ...] = ()

    @classmethod
    def from_config(cls, config: QuicConfiguration) -> PathPolicy:
        return cls(
            max_path_id=config.max_path_id,
            scheduler=config.scheduler,
            failover_pto_count=config.failover_pto_count,
            suspect_silent_paths=config.suspect_silent_paths,
            accept_paths=config.accept_paths,
            backup_keepalive=config.backup_keepalive,
            path_congestion_control=config.path_congestion_control,
        )

    def congestion_control_for(self, path_id: int, default: str) -> str:
        for pid, name in self.path_congestion_control:
            if pid == path_id:
                return name
        return default


@dataclass(frozen=True, slots=True)
class PathStats:
    """A snapshot of one path (``QuicConnection.path_stats``)."""

    path_id: int
    network_path: NetworkPath
    state: str  # validating, validated, failed, abandoned
    status: str  # available or backup (ours, as signalled to the peer)
    peer_status: str | None  # the peer's PATH_STATUS_* signal, None if none received
    srtt: float
    min_rtt: float
    cwnd: int
    bytes_in_flight: int
    packets_sent: int
    packets_lost: int
    packets_retransmitted: int
    bytes_sent: int
    bytes_received: int
    goodput: float  # bytes/s acknowledged since the path was opened
    # RFC 9000 §13.4.2 / Appendix A.4 validation state of our ECN marks on this path
    # (testing, unknown, capable, failed; disabled when ECN is off).
    ecn: str = "disabled"
    # Silent while other paths are acknowledged (paths/silence.py): no new data goes on
    # it and its data in flight was sent again elsewhere, until an ACK comes for it.
    suspect: bool = False


class PathManager:
    """Paths by ID, the scheduler choosing among them, and the path policy."""

    __slots__ = ("_all", "_paths", "hooks", "policy", "scheduler")

    def __init__(self, scheduler: str | Scheduler = "minrtt",
                 policy: PathPolicy | None = None) -> None:
        self._paths: dict[int, Path] = {}
        # The paths as a tuple for iteration (the engine iterates several times per
        # datagram; a snapshot, so paths may be added or removed meanwhile): rebuilt
        # on add and remove only.
        self._all: tuple[Path, ...] = ()
        self.policy = policy or PathPolicy()
        self.scheduler = create_scheduler(scheduler) if isinstance(scheduler, str) else scheduler
        self.hooks = SchedulerHooks(self.scheduler)

    def add(self, path: Path) -> None:
        if path.path_id in self._paths:
            raise ValueError(f"path {path.path_id} exists")
        self._paths[path.path_id] = path
        self._all = tuple(self._paths.values())

    def remove(self, path_id: int) -> Path | None:
        path = self._paths.pop(path_id, None)
        self._all = tuple(self._paths.values())
        return path

    def get(self, path_id: int) -> Path | None:
        return self._paths.get(path_id)

    @property
    def primary(self) -> Path:
        """Path 0 (Initial and Handshake; the only path without multipath); once path 0
        is abandoned, the lowest open path (for connection-level sends such as CLOSE)."""
        first = self._paths.get(0)
        if first is not None and first.state != PathState.ABANDONED:
            return first
        for path_id in sorted(self._paths):
            path = self._paths[path_id]
            if path.state != PathState.ABANDONED:
                return path
        if first is not None:
            return first
        return self._paths[min(self._paths)]

    def __iter__(self) -> Iterator[Path]:
        return iter(self._all)

    def __len__(self) -> int:
        return len(self._paths)

    def __bool__(self) -> bool:
        return bool(self._paths)

    def ids(self) -> list[int]:
        return sorted(self._paths)

    def by_network_path(self, network_path: NetworkPath) -> Path | None:
        for path in self._paths.values():
            if path.network_path == network_path:
                return path
        return None

    def ecn_codepoint(self, network_path: NetworkPath) -> int:
        """The ECN codepoint for datagrams sent on ``network_path``: its path's ECN
        validation state (RFC 9000 §13.4.2); 0 (Not-ECT) for an address that is not
        a path's.  The very object a path holds is looked for first (the usual case)."""
        for path in self._all:
            if path.network_path is network_path:
                return int(path.recovery.ecn.codepoint)
        found = self.by_network_path(network_path)
        return int(found.recovery.ecn.codepoint) if found is not None else 0

    def usable(self) -> list[Path]:
        """Paths that may send at all (not abandoned, not failed)."""
        return [p for p in self._paths.values() if p.usable]

    def open_paths(self) -> list[Path]:
        return [p for p in self._paths.values() if p.state != PathState.ABANDONED]

    def schedulable(self) -> list[Path]:
        """Paths the scheduler may put new data on: validated and usable; the available
        ones, or the backup ones when no available path is left (multipath §"Path Status
        Management": backup means "only if no other path is usable")."""
        ready = [p for p in self._paths.values() if p.usable and p.validated]
        if len(ready) <= 1:
            return ready
        if any(p.suspect_since is not None for p in ready):
            # A silent path (paths/silence.py) gets no new data while another is live.
            ready = [p for p in ready if p.suspect_since is None] or ready
            if len(ready) == 1:
                return ready
        available = [p for p in ready if not p.is_backup]
        if any(p.recovery.pto_count == 0 for p in available):
            return available
        # Every available path is in PTO (suspect): the backups may carry data now, so
        # the takeover does not wait for the failure verdict.
        return ready

    def select(self, now: float) -> Path | None:
        """The path the next packet should go on (the scheduler's choice)."""
        paths = self._paths
        if len(paths) == 1:
            only = paths.get(0)
            if only is not None and only.usable:
                return only
        candidates = self.schedulable()
        if not candidates:
            usable = self.usable()
            return usable[0] if len(usable) == 1 else None
        if len(candidates) == 1:
            return candidates[0]
        return self.scheduler.select(candidates, now)

    def select_many(self, now: float, exclude: frozenset[int] = frozenset(),
                    schedulable: list[Path] | None = None) -> list[Path]:
        """The scheduler's paths for the next packet (``exclude``: path IDs held back by
        their pacer for now, so that the scheduler chooses among the others;
        ``schedulable``: what ``schedulable()`` returned, when the caller knows it has
        not changed -- the send loop asks once per round, not once per packet)."""
        candidates = self.schedulable() if schedulable is None else schedulable
        if exclude:
            candidates = [p for p in candidates if p.path_id not in exclude]
            if not candidates:
                return []
        if len(candidates) <= 1:
            if not exclude:
                one = self.select(now)
                return [] if one is None else [one]
            return candidates
        hooks = self.hooks
        if hooks.picks_one:
            chosen = hooks.select(candidates, now)
            return [] if chosen is None else [chosen]
        return list(hooks.select_many(candidates, now))

    def select_next(self, now: float, exclude: frozenset[int], schedulable: list[Path],
                    last: Path) -> list[Path]:
        """``select_many`` right after one packet on ``last``, the previous answer for the
        same arguments with nothing else changed (a stream train): the scheduler may
        confirm ``last`` without choosing again (``still_selects``)."""
        if not exclude and len(schedulable) > 1 and self.hooks.still_selects(
                schedulable, now, last):
            return [last]
        return self.select_many(now, exclude, schedulable)

    def failed_path(self, path: Path) -> bool:
        """Failure rule: ``failover_pto_count`` PTOs in a row on ``path`` while another
        validated path is fine: no PTO pending on it, and it was acknowledged more
        recently than ``path`` (so a path that merely shares the cause, e.g. its ACKs
        riding the broken path, is not the one blamed)."""
        if path.state != PathState.VALIDATED:
            return False
        if path.recovery.pto_count < self.policy.failover_pto_count:
            return False
        last = path.last_ack_time
        return any(p is not path and p.usable and p.validated and p.recovery.pto_count == 0
                   and p.last_ack_time is not None and (last is None or p.last_ack_time > last)
                   for p in self._paths.values())

    def stats(self, now: float) -> list[PathStats]:
        out: list[PathStats] = []
        for path_id in sorted(self._paths):
            p = self._paths[path_id]
            r: Any = p.recovery
            elapsed = max(now - p.opened_at, 1e-9)
            out.append(PathStats(
                path_id=path_id, network_path=p.network_path,
                state=p.state_name, status="backup" if p.local_backup else "available",
                peer_status=None if p.peer_backup is None else (
                    "backup" if p.peer_backup else "available"),
                srtt=r.rtt.smoothed_rtt, min_rtt=r.rtt.min_rtt,
                cwnd=r.controller.congestion_window, bytes_in_flight=r.bytes_in_flight,
                packets_sent=r.packets_sent, packets_lost=r.packets_lost,
                packets_retransmitted=p.packets_retransmitted,
                bytes_sent=p.bytes_sent, bytes_received=p.bytes_received,
                goodput=(p.bytes_acked_total + r.bytes_acked) / elapsed,
                ecn=r.ecn.state.value, suspect=p.suspect_since is not None))
        return out
