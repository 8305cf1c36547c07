"""What a scheduler is: the protocol every scheduler meets and the factory type
the registry stores (docs/schedulers.md)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from tquic.paths.path import Path


class Scheduler(Protocol):
    name: str

    def select(self, paths: Sequence[Path], now: float) -> Path | None:
        """The path for the next packet among ``paths`` (all usable), or None."""
        ...


SchedulerFactory = Callable[[], Scheduler]
"""A zero-argument callable building a fresh scheduler (one per connection)."""

__all__ = ["Scheduler", "SchedulerFactory"]
