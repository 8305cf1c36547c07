"""Two asyncio chores every driver needs: a future whose result nobody awaits, and
tasks to cancel when their connection is gone."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any


def consume_result(future: asyncio.Future[Any]) -> None:
    """A done-callback: read the outcome, so an exception nobody awaited is not logged
    as "never retrieved" when the future is collected."""
    if not future.cancelled():
        future.exception()


def cancel_all(tasks: Iterable[asyncio.Task[Any]]) -> None:
    for task in tasks:
        if not task.done():
            task.cancel()
