"""Session tickets for the ``tquic`` command: a client keeps the server's ticket in a
file between runs (``tquic client --session-ticket FILE``) to resume the session
and send its requests in 0-RTT (RFC 9001 §4.6); a server seals tickets with a key
that may come from a file (``tquic server --ticket-key FILE``) so they survive a
restart or are shared by several server processes.

A ticket file holds a secret (the resumption PSK): it is written with mode 0600.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from tquic.cli.common import CliError

TICKET_KEY_SIZE = 32  # AES-256-GCM (tquic.crypto.tls.tickets.TicketStore)
_TICKET_WAIT = 1.0  # seconds to wait for a NewSessionTicket after the transfers


def load_ticket(path: str) -> Any:
    """The ticket stored in ``path``, or None when the file does not exist yet."""
    from tquic.crypto.tls.config import SessionTicket

    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CliError(f"cannot read session ticket {path}: {exc.strerror or exc}") from None
    try:
        return SessionTicket.from_bytes(data)
    except ValueError as exc:
        raise CliError(f"{path} is not a session ticket file ({exc})") from None


def save_ticket(path: str, ticket: Any) -> None:
    """Write ``ticket`` to ``path`` (mode 0600, replaced atomically)."""
    temp = f"{path}.tmp"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(ticket.to_bytes())
        os.replace(temp, path)
    except OSError as exc:
        raise CliError(f"cannot write session ticket {path}: {exc.strerror or exc}") from None


async def wait_for_ticket(conn: Any, timeout: float = _TICKET_WAIT) -> Any:
    """The newest ticket the server sent on ``conn`` (a QuicConnectionProtocol),
    waiting briefly if it has not arrived yet; None if none came."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while conn.session_ticket is None and not conn.is_closed and loop.time() < deadline:
        await asyncio.sleep(0.01)
    return conn.session_ticket


def load_ticket_key(path: str) -> bytes:
    """A server ticket key: 32 raw bytes or 64 hex digits (e.g. ``openssl rand -hex 32``)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read ticket key {path}: {exc.strerror or exc}") from None
    if len(data) == TICKET_KEY_SIZE:
        return data
    try:
        key = bytes.fromhex(data.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        key = b""
    if len(key) != TICKET_KEY_SIZE:
        raise CliError(f"ticket key {path}: expected {TICKET_KEY_SIZE} bytes or "
                       f"{2 * TICKET_KEY_SIZE} hex digits")
    return key
