"""How a part refers back to the object that owns it: weakly, so the two make no
reference cycle.

An owner that holds its parts and parts that hold their owner make a cycle: when the
owner is dropped nothing of it is freed until the cyclic garbage collector runs, and a
server that ends hundreds of connections a second then spends a large share of its CPU
in the collector tracing them (issue 19: ~14 % with every connection, its components,
its protocol and its timer in cycles).  Without the cycles a connection is freed by
reference counting the moment its last user drops it.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TypeVar, cast

T = TypeVar("T")


def owner_proxy(owner: T) -> T:
    """A weak proxy of ``owner`` for its parts to keep instead of ``owner`` itself.

    The parts reach their owner through it as before (an attribute costs a few
    nanoseconds more); calling a part after its owner is gone raises ReferenceError, so
    a part must not be kept apart from its owner.  CPython shares one proxy per object
    (without a callback), so this allocates once per owner."""
    return cast(T, weakref.proxy(owner))


def weak_callback(method: Callable[[], None]) -> Callable[[], None]:
    """A callback that calls the bound ``method`` while its object lives and does
    nothing after: for a timer or hook that an object keeps for calling itself back."""
    ref = weakref.WeakMethod(method)

    def call() -> None:
        bound = ref()
        if bound is not None:
            bound()

    return call
