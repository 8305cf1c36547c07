"""``tquic server``'s access log: one line per request on stdout, silenced by ``--quiet``.

    2026-12-07T01:02:03.456Z 127.0.0.1:50412 h3 GET /index.html 200 1234 0.8ms

Fields: time (UTC), peer address, ALPN, method, path, status, body bytes sent,
duration (from the request's arrival to its last byte handed to QUIC).  For
hq-interop (HTTP/0.9, no status line) the status is the one HTTP/3 would have
sent; a refused request is also the application error code of its RESET_STREAM.
Paths are logged with control characters, spaces and non-ASCII percent-encoded
and cut at 256 characters, so a request cannot forge or flood log lines.
"""

from __future__ import annotations

import datetime
import sys
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import quote

_MAX_LOGGED_PATH = 256
_SAFE = "/?&=;:@!$'()*+,-._~%#[]"


@dataclass(frozen=True, slots=True)
class AccessEntry:
    peer: str
    alpn: str
    method: str
    path: str
    status: int
    bytes: int
    seconds: float


def peer_text(address: Any) -> str:
    """``HOST:PORT`` (``[v6]:PORT``); an IPv4 peer of a dual-stack socket as plain IPv4."""
    try:
        host, port = str(address[0]), int(address[1])
    except (TypeError, ValueError, IndexError):
        return "-"
    host = host.removeprefix("::ffff:") if host.startswith("::ffff:") and "." in host else host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def format_entry(entry: AccessEntry, now: datetime.datetime | None = None) -> str:
    when = (now or datetime.datetime.now(datetime.UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")
    path = quote(entry.path, safe=_SAFE) or "-"
    if len(path) > _MAX_LOGGED_PATH:
        path = path[:_MAX_LOGGED_PATH] + "..."
    method = quote(entry.method, safe="") or "-"
    return (f"{when[:-3]}Z {entry.peer} {entry.alpn} {method} {path} {entry.status} "
            f"{entry.bytes} {entry.seconds * 1000:.1f}ms")


class AccessLog:
    """Writes :class:`AccessEntry` lines to ``stream`` (None: ``--quiet``, nothing)."""

    def __init__(self, stream: TextIO | None = sys.stdout) -> None:
        self._stream = stream

    @property
    def enabled(self) -> bool:
        return self._stream is not None

    def write(self, entry: AccessEntry) -> None:
        if self._stream is None:
            return
        try:
            self._stream.write(format_entry(entry) + "\n")
            self._stream.flush()
        except (OSError, ValueError):
            self._stream = None  # stdout went away (closed pipe): stop logging, keep serving
