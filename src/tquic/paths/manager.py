"""PathManager: the paths of one connection (one today; shaped for multipath).

It owns the Path objects by path ID, says which ones are usable for sending
and asks the scheduler which one sends next.  Opening and abandoning extra
paths (draft-ietf-quic-multipath) will land here.
"""

from __future__ import annotations

from collections.abc import Iterator

from tquic.core.network_path import NetworkPath
from tquic.paths.path import Path
from tquic.paths.schedulers import Scheduler, create_scheduler


class PathManager:
    """Paths by ID plus the scheduler choosing among them."""

    __slots__ = ("_paths", "scheduler")

    def __init__(self, scheduler: str | Scheduler = "minrtt") -> None:
        self._paths: dict[int, Path] = {}
        self.scheduler = create_scheduler(scheduler) if isinstance(scheduler, str) else scheduler

    def add(self, path: Path) -> None:
        if path.path_id in self._paths:
            raise ValueError(f"path {path.path_id} exists")
        self._paths[path.path_id] = path

    def get(self, path_id: int) -> Path | None:
        return self._paths.get(path_id)

    @property
    def primary(self) -> Path:
        """Path 0 (carries Initial and Handshake; the only path without multipath)."""
        return self._paths[0]

    def __iter__(self) -> Iterator[Path]:
        return iter(self._paths.values())

    def __len__(self) -> int:
        return len(self._paths)

    def by_network_path(self, network_path: NetworkPath) -> Path | None:
        for path in self._paths.values():
            if path.network_path == network_path:
                return path
        return None

    def usable(self) -> list[Path]:
        return [p for p in self._paths.values() if p.usable]

    def select(self, now: float) -> Path | None:
        """The path the next packet should go on (the scheduler's choice)."""
        if len(self._paths) == 1:
            only = self._paths.get(0)
            if only is not None and only.usable:
                return only
        return self.scheduler.select(self.usable(), now)
