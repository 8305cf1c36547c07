"""Encryption levels and packet-number spaces: the two enums and the one mapping.

RFC 9001 §4 has four encryption levels (epochs) for CRYPTO data and keys; RFC
9000 §12.3 has three packet-number spaces.  They differ only in that 0-RTT and
1-RTT packets share the application data space, so one table maps the first
onto the second.  Every layer uses these two enums (crypto/tls for keys and
CRYPTO data, paths/ for loss recovery per space, core/ for both).
"""

from __future__ import annotations

from enum import IntEnum


class Epoch(IntEnum):
    """QUIC encryption levels (RFC 9001 §4)."""

    INITIAL = 0
    ZERO_RTT = 1
    HANDSHAKE = 2
    ONE_RTT = 3


class SpaceId(IntEnum):
    """Packet-number spaces (RFC 9000 §12.3)."""

    INITIAL = 0
    HANDSHAKE = 1
    APPLICATION = 2


# The mapping, indexed by Epoch: 0-RTT and 1-RTT packets share the application
# data space (RFC 9000 §12.3).  Hot paths index it directly (no call).
SPACE_OF_EPOCH: tuple[SpaceId, ...] = (SpaceId.INITIAL, SpaceId.APPLICATION,
                                       SpaceId.HANDSHAKE, SpaceId.APPLICATION)


def space_of(epoch: int) -> SpaceId:
    """The packet-number space of packets sent at ``epoch``."""
    return SPACE_OF_EPOCH[epoch]


__all__ = ["SPACE_OF_EPOCH", "Epoch", "SpaceId", "space_of"]
