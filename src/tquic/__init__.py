"""tquic: QUIC with multipath, HTTP/3 and DATAGRAM, built for WAN bonding.

The asyncio API is ``tquic.connect`` / ``tquic.serve``; the blocking,
socket-like API is ``tquic.socket()``.  They are imported on first use so that
``import tquic`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tquic.io.api import connect, serve
    from tquic.io.blocking import create_connection, socket

__version__ = "0.1.0"

__all__ = ["__version__", "connect", "create_connection", "serve", "socket"]

_LAZY = {
    "connect": ("tquic.io.api", "connect"),
    "serve": ("tquic.io.api", "serve"),
    "socket": ("tquic.io.blocking", "socket"),
    "create_connection": ("tquic.io.blocking", "create_connection"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tquic' has no attribute {name!r}")
