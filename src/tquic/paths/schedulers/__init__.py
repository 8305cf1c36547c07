"""Schedulers: which path sends the next packet, looked up by name.

A scheduler is a small object with ``select(paths, now) -> Path | None``; the
built-ins are a literal table (``builtin.py``) and users add their own with
``register_scheduler`` (DESIGN.md "Multipath is the normal case").
"""

from __future__ import annotations

from tquic.paths.schedulers.interface import Scheduler, SchedulerFactory
from tquic.paths.schedulers.minrtt import MinRttScheduler
from tquic.paths.schedulers.registry import (
    available_schedulers,
    create_scheduler,
    register_scheduler,
)

__all__ = ["MinRttScheduler", "Scheduler", "SchedulerFactory", "available_schedulers",
           "create_scheduler", "register_scheduler"]
