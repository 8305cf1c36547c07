"""A shared, always-empty deque that lazily created queues start as.

An empty ``collections.deque`` costs ~760 bytes (its first block is allocated up
front), and an idle server connection held four of them (events, DATAGRAM frames
in each direction, the 1-RTT CRYPTO stream's read queue): ~3 KB of the memory per
idle connection (issue 19).  A queue attribute starts as ``EMPTY``; readers use it
unchanged (truthiness, ``len``, ``clear``); the one place that appends first swaps
in a real deque with ``writable``.  Appending to ``EMPTY`` itself raises, so a
missed swap is a loud bug, not lost data.
"""

from __future__ import annotations

from collections import deque
from typing import Any, NoReturn, TypeVar

T = TypeVar("T")


class _AlwaysEmpty(deque[Any]):
    __slots__ = ()

    def _refuse(self, *_: object) -> NoReturn:
        raise RuntimeError("EMPTY is shared: swap in a deque with writable() first")

    append = appendleft = extend = extendleft = insert = _refuse


EMPTY: deque[Any] = _AlwaysEmpty()


def writable(queue: deque[T]) -> deque[T]:
    """``queue`` itself, or a new deque if it is still the shared ``EMPTY``."""
    return deque() if queue is EMPTY else queue
