"""Closing a connection (RFC 9000 §10.2): CONNECTION_CLOSE queued and the closing
period, the draining period when the peer closed, and INTERNAL_ERROR for what
should never happen.  The state (``_state``, ``_close_frame``, ``_close_pending``,
``_close_deadline``) stays on the connection: the packet builder sends the frame,
the timers end the periods (core/timers.py).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from tquic.core.conn_base import ConnState
from tquic.core.events import ConnectionTerminated
from tquic.wire.errors import QuicError, TransportErrorCode
from tquic.wire.frames import ConnectionCloseFrame

if TYPE_CHECKING:
    from tquic.core.connection import QuicConnection

logger = logging.getLogger("tquic.connection")


def internal_error(c: QuicConnection, exc: BaseException, now: float) -> None:
    """An unexpected exception while processing input: log it, close with
    INTERNAL_ERROR (RFC 9000 §20.1)."""
    logger.exception("internal error in QUIC connection: %r", exc)
    if c._state < ConnState.CLOSING:
        try:
            close_on_error(c, QuicError(TransportErrorCode.INTERNAL_ERROR, "internal error"),
                           now)
        except Exception:  # pragma: no cover - last resort
            c._state = ConnState.TERMINATED


def close(c: QuicConnection, error_code: int, reason: str, application: bool) -> None:
    """Close the connection (RFC 9000 §10.2): CONNECTION_CLOSE, then the closing period."""
    if c._state >= ConnState.CLOSING:
        return
    if not c._paths:
        c._state = ConnState.TERMINATED
        return
    c._close_frame = ConnectionCloseFrame(
        error_code, None if application else 0, reason.encode()[:256], application)
    c._state = ConnState.CLOSING
    c._close_pending = True
    c._close_deadline = None
    c._queue_event(ConnectionTerminated(error_code, None, reason, by_peer=False,
                                        application=application))


def close_on_error(c: QuicConnection, exc: QuicError, now: float) -> None:
    """A connection error of ours (RFC 9000 §11.1): CONNECTION_CLOSE with its code,
    then the closing period of 3 PTOs (§10.2.1)."""
    if c._state >= ConnState.CLOSING:
        return
    if not c._paths:
        c._state = ConnState.TERMINATED
        return
    logger.debug("closing with %r", exc)
    c._close_frame = ConnectionCloseFrame(
        int(exc.error_code), exc.frame_type or 0, exc.reason.encode()[:256], False)
    c._state = ConnState.CLOSING
    c._close_pending = True
    c._close_deadline = now + 3 * c._timers.pto()
    c._queue_event(ConnectionTerminated(int(exc.error_code), exc.frame_type, exc.reason,
                                        by_peer=False))


def enter_draining(c: QuicConnection, error_code: int, frame_type: int | None, reason: str,
                   application: bool, now: float) -> None:
    """The peer closed (CONNECTION_CLOSE received, RFC 9000 §10.2.2): drain for 3 PTOs."""
    if c._state >= ConnState.DRAINING:
        return
    by_peer = c._state < ConnState.CLOSING
    c._state = ConnState.DRAINING
    c._close_deadline = now + 3 * c._timers.pto()  # RFC 9000 §10.2.2
    if by_peer:
        c._queue_event(ConnectionTerminated(error_code, frame_type, reason, by_peer=True,
                                            application=application))
