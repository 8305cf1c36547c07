"""Registers the built-in schedulers beyond ``minrtt`` by name.

Imported by ``tquic.paths.schedulers`` so that ``create_scheduler("blest")`` and
``--scheduler blest`` work (docs/schedulers.md).  Schedulers that take
parameters (``weighted`` weights, ``deadline`` budget, ``blest`` lambda) are
registered with their defaults; build an instance yourself to choose them and
hand it to ``PathManager(scheduler=...)``.
"""

from __future__ import annotations

from tquic.paths.schedulers import register_scheduler
from tquic.paths.schedulers.blest import BlestScheduler
from tquic.paths.schedulers.deadline import DeadlineScheduler
from tquic.paths.schedulers.ecf import EcfScheduler
from tquic.paths.schedulers.redundant import RedundantScheduler
from tquic.paths.schedulers.roundrobin import RoundRobinScheduler
from tquic.paths.schedulers.weighted import WeightedScheduler

BUILTIN_SCHEDULERS = {
    "roundrobin": RoundRobinScheduler,
    "weighted": WeightedScheduler,
    "blest": BlestScheduler,
    "ecf": EcfScheduler,
    "redundant": RedundantScheduler,
    "deadline": DeadlineScheduler,
}

for _name, _factory in BUILTIN_SCHEDULERS.items():
    register_scheduler(_name, _factory)

__all__ = [
    "BUILTIN_SCHEDULERS",
    "BlestScheduler",
    "DeadlineScheduler",
    "EcfScheduler",
    "RedundantScheduler",
    "RoundRobinScheduler",
    "WeightedScheduler",
]
