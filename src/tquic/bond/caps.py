"""Data caps per link, counted per calendar period and kept across restarts.

Each link with a cap counts the bytes it sent and received (the QUIC paths'
own counters, so tunnel overhead and retransmissions count, as the carrier
counts them).  Periods are UTC calendar days, ISO weeks or months; a new period
starts from zero.  The counts are written to ``STATE_DIR/caps.json`` (atomic
rename) every few seconds and at exit, and read back at start, so a restart
does not reset a month's usage.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
from pathlib import Path

from tquic.bond.links_config import DataCap

logger = logging.getLogger("tquic.bond")


def period_key(period: str, now: datetime.datetime | None = None) -> str:
    """``2026-12-07`` (day), ``2026-W49`` (ISO week) or ``2026-12`` (month), UTC."""
    t = now or datetime.datetime.now(datetime.UTC)
    if period == "day":
        return t.strftime("%Y-%m-%d")
    if period == "week":
        year, week, _ = t.isocalendar()
        return f"{year}-W{week:02d}"
    return t.strftime("%Y-%m")


class CapStore:
    """Bytes used per link in its current period; ``path`` None keeps them in memory only."""

    def __init__(self, path: str | None) -> None:
        self._path = Path(path) if path else None
        self._used: dict[str, tuple[str, int]] = {}  # link -> (period key, bytes)
        self._dirty = False
        if self._path is not None and self._path.exists():
            try:
                data = json.loads(self._path.read_text())
                for name, entry in data.get("links", {}).items():
                    self._used[str(name)] = (str(entry["period"]), int(entry["bytes"]))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                logger.warning("caps: ignoring unreadable %s (%s); counting from zero",
                               self._path, exc)

    def used(self, link: str, cap: DataCap, now: datetime.datetime | None = None) -> int:
        key = period_key(cap.period, now)
        period, used = self._used.get(link, (key, 0))
        return used if period == key else 0

    def add(self, link: str, cap: DataCap, nbytes: int,
            now: datetime.datetime | None = None) -> int:
        """Count ``nbytes`` more; returns the period's total."""
        key = period_key(cap.period, now)
        period, used = self._used.get(link, (key, 0))
        if period != key:
            used = 0
        used += nbytes
        self._used[link] = (key, used)
        self._dirty = True
        return used

    def set_used(self, link: str, cap: DataCap, nbytes: int) -> None:
        self._used[link] = (period_key(cap.period), nbytes)
        self._dirty = True

    def save(self) -> None:
        if self._path is None or not self._dirty:
            return
        data = {"links": {name: {"period": p, "bytes": b} for name, (p, b) in self._used.items()}}
        tmp = self._path.with_suffix(".tmp")
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(data, indent=1))
            os.replace(tmp, self._path)
            self._dirty = False
        except OSError as exc:
            logger.warning("caps: cannot save %s (%s)", self._path, exc.strerror)
            with contextlib.suppress(OSError):
                tmp.unlink()
