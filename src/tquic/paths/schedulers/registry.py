"""Scheduler look-up by name: the built-in table plus the schedulers users add.

Built-ins come from the literal table in ``builtin.py``; ``register_scheduler``
is the documented plugin call (docs/schedulers.md).  A plugin registered under
a built-in's name takes its place, as it always has.
"""

from __future__ import annotations

from tquic.paths.schedulers.builtin import BUILTIN_SCHEDULERS
from tquic.paths.schedulers.interface import Scheduler, SchedulerFactory

_PLUGINS: dict[str, SchedulerFactory] = {}


def register_scheduler(name: str, factory: SchedulerFactory) -> None:
    """Make ``factory`` available as ``name`` (e.g. for ``--scheduler NAME``)."""
    _PLUGINS[name.lower()] = factory


def available_schedulers() -> list[str]:
    """Every name ``create_scheduler`` accepts, sorted."""
    return sorted({*BUILTIN_SCHEDULERS, *_PLUGINS})


def create_scheduler(name: str) -> Scheduler:
    """A new scheduler by name; ValueError naming the choices when unknown."""
    key = name.lower()
    factory = _PLUGINS.get(key) or BUILTIN_SCHEDULERS.get(key)
    if factory is None:
        raise ValueError(
            f"unknown scheduler {name!r}; choose one of: {', '.join(available_schedulers())}"
        )
    return factory()


__all__ = ["available_schedulers", "create_scheduler", "register_scheduler"]
