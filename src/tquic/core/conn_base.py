"""The connection's lifecycle states (RFC 9000 §10) and the Epoch names the engine's
components share (wire/epochs.py)."""

from __future__ import annotations

from enum import IntEnum

from tquic.wire.epochs import Epoch as Epoch  # encryption levels (RFC 9001 §4)


class ConnState(IntEnum):
    HANDSHAKE = 0
    CONNECTED = 1
    CLOSING = 2  # RFC 9000 §10.2.1
    DRAINING = 3  # RFC 9000 §10.2.2
    TERMINATED = 4
