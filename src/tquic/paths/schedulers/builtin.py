"""The built-in schedulers by name: a literal table, nothing registered at import.

``create_scheduler("blest")`` and ``--scheduler blest`` look names up here
(docs/schedulers.md).  Schedulers that take parameters (``weighted`` weights,
``deadline`` budget, ``blest`` lambda) are listed with their defaults; build an
instance yourself to choose them and hand it to ``PathManager(scheduler=...)``.
"""

from __future__ import annotations

from collections.abc import Mapping

from tquic.paths.schedulers.blest import BlestScheduler
from tquic.paths.schedulers.deadline import DeadlineScheduler
from tquic.paths.schedulers.ecf import EcfScheduler
from tquic.paths.schedulers.interface import SchedulerFactory
from tquic.paths.schedulers.minrtt import MinRttScheduler
from tquic.paths.schedulers.redundant import RedundantScheduler
from tquic.paths.schedulers.roundrobin import RoundRobinScheduler
from tquic.paths.schedulers.weighted import WeightedScheduler

BUILTIN_SCHEDULERS: Mapping[str, SchedulerFactory] = {
    "minrtt": MinRttScheduler,
    "roundrobin": RoundRobinScheduler,
    "weighted": WeightedScheduler,
    "blest": BlestScheduler,
    "ecf": EcfScheduler,
    "redundant": RedundantScheduler,
    "deadline": DeadlineScheduler,
}

__all__ = [
    "BUILTIN_SCHEDULERS",
    "BlestScheduler",
    "DeadlineScheduler",
    "EcfScheduler",
    "MinRttScheduler",
    "RedundantScheduler",
    "RoundRobinScheduler",
    "WeightedScheduler",
]
