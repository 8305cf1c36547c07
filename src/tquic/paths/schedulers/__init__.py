"""Schedulers: which path sends the next packet, registered by name.

A scheduler is a small object with ``select(paths, now) -> Path | None``; users
register their own with ``register_scheduler`` (DESIGN.md "Multipath is the
normal case").
"""

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
_REGISTRY: dict[str, SchedulerFactory] = {}


def register_scheduler(name: str, factory: SchedulerFactory) -> None:
    _REGISTRY[name.lower()] = factory


def available_schedulers() -> list[str]:
    return sorted(_REGISTRY)


def create_scheduler(name: str) -> Scheduler:
    try:
        return _REGISTRY[name.lower()]()
    except KeyError:
        raise ValueError(
            f"unknown scheduler {name!r}; choose one of: {', '.join(available_schedulers())}"
        ) from None


from tquic.paths.schedulers.minrtt import MinRttScheduler  # noqa: E402

register_scheduler("minrtt", MinRttScheduler)
import tquic.paths.schedulers.builtin  # noqa: E402, F401  (roundrobin, weighted, blest, ecf, redundant, deadline)

__all__ = ["MinRttScheduler", "Scheduler", "available_schedulers", "create_scheduler",
           "register_scheduler"]
